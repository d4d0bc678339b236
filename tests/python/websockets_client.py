"""Talks to a WebSocket echo server with the `websockets` client library (asyncio):
text, binary, a 1 MiB message, a subprotocol, a refused handshake, and 100 connections at
once. Prints `ok NAME` for each check; a failed check raises (exit status 1).

    python websockets_client.py HOST PORT
"""

import asyncio
import os
import sys

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def checks(url):
    async with connect(url) as ws:
        await ws.send("héllo, wörld")
        assert await ws.recv() == "héllo, wörld"
        print("ok text", flush=True)
        await ws.send(b"\x00\x01\xfe\xff")
        assert await ws.recv() == b"\x00\x01\xfe\xff"
        print("ok binary", flush=True)

    big = os.urandom(1 << 20)
    async with connect(url, max_size=2 << 20) as ws:
        await ws.send(big)
        assert await ws.recv() == big
        text = "ü" * (1 << 19)  # 1 MiB of UTF-8
        await ws.send(text)
        assert await ws.recv() == text
    print("ok 1MiB", flush=True)

    async with connect(url, subprotocols=["chat", "superchat"]) as ws:
        assert ws.subprotocol == "chat", ws.subprotocol
        await ws.send("hi")
        assert await ws.recv() == "hi"
    print("ok subprotocol", flush=True)

    try:
        async with connect(url + "status/403"):
            raise AssertionError("a refused handshake connected")
    except InvalidStatus as e:
        assert e.response.status_code == 403, e.response.status_code
    print("ok rejection", flush=True)

    async def one(i):
        async with connect(url) as ws:
            for k in range(20):
                message = f"connection {i} message {k}"
                await ws.send(message)
                assert await ws.recv() == message
            await ws.close()
            assert ws.close_code == 1000, ws.close_code

    await asyncio.gather(*(one(i) for i in range(100)))
    print("ok concurrent100", flush=True)


def main():
    host, port = sys.argv[1], sys.argv[2]
    print(f"websockets {websockets.__version__}", flush=True)
    asyncio.run(asyncio.wait_for(checks(f"ws://{host}:{port}/"), 120))


if __name__ == "__main__":
    main()
