"""A raw ASGI 3.0 application for ferrocorn's black-box tests: every point of the HTTP and
lifespan protocols the server must honour, one path each. What no response can show (the
lifespan's startup and shutdown, a disconnect the application saw, a cancellation) is
appended to $FIXTURE_RECORD through fixture_support.record.
"""

import asyncio
import json
import os
import time

from fixture_support import record


def _text(value):
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _query(scope):
    pairs = (p.partition("=") for p in scope["query_string"].decode().split("&") if p)
    return {k: v for k, _, v in pairs}


async def lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["started_by"] = os.getpid()
            record(f"startup {os.getpid()}")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            record(f"shutdown {os.getpid()}")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive):
    body, messages = b"", 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message.get("body", b"")
        messages += 1
        if not message.get("more_body", False):
            return body, messages


async def respond(send, status, body, headers=()):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")] + list(headers),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    assert scope["type"] == "http"
    path = scope["path"][len(scope["root_path"]):]
    query = _query(scope)
    if path.startswith("/scope"):
        shown = {
            key: scope[key]
            for key in ("type", "asgi", "http_version", "method", "scheme", "path", "root_path")
        }
        shown["raw_path"] = _text(scope["raw_path"])
        shown["query_string"] = _text(scope["query_string"])
        shown["headers"] = [[_text(n), _text(v)] for n, v in scope["headers"]]
        shown["client"] = list(scope["client"]) if scope["client"] else None
        shown["server"] = list(scope["server"]) if scope["server"] else None
        shown["state"] = scope.get("state")
        shown["extensions"] = sorted(scope.get("extensions", {}))
        body = json.dumps(shown, sort_keys=True).encode()
        return await respond(send, 200, body, [(b"content-length", str(len(body)).encode())])
    if path == "/echo":
        body, messages = await read_body(receive)
        return await respond(send, 200, body, [(b"x-messages", str(messages).encode())])
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(int(query.get("n", "3"))):
            await send({"type": "http.response.body", "body": b"part %d\n" % i, "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/big":
        # Streamed with backpressure: `send` waits while the socket is full.
        piece = b"x" * 65536
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(int(query.get("mib", "1")) * 16):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/trailers":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"trailer", b"x-checksum")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"with ", "more_body": True})
        await send({"type": "http.response.body", "body": b"trailers"})
        await send(
            {"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]}
        )
        return
    if path == "/pathsend":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": os.path.abspath(__file__)})
        return
    if path == "/latin1":
        return await respond(send, 299, b"ok", [(b"x-name", "café".encode("latin-1"))])
    if path == "/boom":
        raise ValueError("boom before the response")
    if path == "/boom-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom after the response started")
    if path == "/no-response":
        return
    if path == "/wait-disconnect":
        # Waits for the client to go away (the body is empty, so the next receive blocks).
        await read_body(receive)
        message = await receive()
        record(f"saw {message['type']}")
        return
    if path == "/endless":
        # Ignores disconnects: the grace period ends it.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            record("endless cancelled")
            raise
    if path == "/block":
        time.sleep(float(query.get("s", "1")))
        return await respond(send, 200, b"unblocked")
    if path == "/sleep":
        await asyncio.sleep(float(query.get("s", "1")))
        return await respond(send, 200, b"slept")
    return await respond(send, 404, b"not found")


async def failing_startup(scope, receive, send):
    """An application whose lifespan startup fails: the worker must not serve."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the database is unreachable"})
        return
    await respond(send, 200, b"never")


async def no_lifespan(scope, receive, send):
    """An application that does not speak lifespan (raises on it, as many do)."""
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope {scope['type']}")
    await respond(send, 200, b"fine without lifespan")


class AsgiObject:
    """An ASGI application that is an object whose __call__ is a coroutine function."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        await respond(send, 200, b"object")


instance = AsgiObject()
