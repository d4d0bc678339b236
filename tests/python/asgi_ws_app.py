"""A raw ASGI 3.0 WebSocket application for ferrocorn's black-box tests: every point of the
`websocket` scope the server must honour, one path each. What no frame can show (the
disconnect code the application saw, the exception a late send raised, how far a flood of
sends got) is appended to $FIXTURE_RECORD through fixture_support.record.

`/` (and any path not listed) echoes every message, accepting the first subprotocol offered,
so that tests/python/websockets_client.py and autobahn_cases.py run against it; `/status/403`
refuses the handshake as the built-in echo's does.
"""

import asyncio
import json

from fixture_support import record


def _text(value):
    return value.decode("latin-1") if isinstance(value, bytes) else value


async def lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "from lifespan"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def accept(receive, send, **extra):
    message = await receive()
    assert message["type"] == "websocket.connect", message
    await send({"type": "websocket.accept", **extra})


async def until_disconnect(receive):
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return message


async def echo(scope, receive, send):
    offered = scope["subprotocols"]
    await accept(receive, send, subprotocol=offered[0] if offered else None)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record(f"echo disconnect {message['code']}")
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def scope_as_json(scope):
    shown = {k: v for k, v in scope.items() if k not in ("headers", "state", "extensions")}
    for key in ("raw_path", "query_string"):
        shown[key] = _text(shown[key])
    shown["headers"] = [[_text(n), _text(v)] for n, v in scope["headers"]]
    shown["state"] = dict(scope["state"])
    shown["extensions"] = sorted(scope.get("extensions", {}))
    return json.dumps(shown)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    assert scope["type"] == "websocket", scope["type"]
    path = scope["path"]
    root = scope["root_path"]
    if root and path.startswith(root):
        path = path[len(root) :]

    if path.startswith("/scope"):
        await accept(
            receive,
            send,
            subprotocol="second" if "second" in scope["subprotocols"] else None,
            headers=[(b"x-accepted", b"yes"), (b"set-cookie", b"a=1")],
        )
        await send({"type": "websocket.send", "text": scope_as_json(scope)})
        await until_disconnect(receive)
    elif path == "/status/403":
        # Refused before accept: 403, the reason dropped.
        await receive()
        await send({"type": "websocket.close", "code": 1008, "reason": "not you"})
    elif path == "/deny":
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Token")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"who ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"are you?"})
    elif path.startswith("/close/"):
        await accept(receive, send)
        await send({"type": "websocket.send", "text": "closing"})
        await send({"type": "websocket.close", "code": int(path[7:]), "reason": "bye"})
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except RuntimeError as exc:
            record(f"send after close: RuntimeError {exc}")
        message = await until_disconnect(receive)
        record(f"after close disconnect {message['code']}")
    elif path == "/raise-before":
        await receive()
        raise ValueError("raised before accept")
    elif path == "/return-before":
        await receive()
    elif path == "/raise-after":
        await accept(receive, send)
        await send({"type": "websocket.send", "text": "about to fail"})
        raise ValueError("raised after accept")
    elif path == "/return-after":
        await accept(receive, send)
        await send({"type": "websocket.send", "bytes": b"bye"})
    elif path == "/disconnect":
        await accept(receive, send)
        message = await until_disconnect(receive)
        record(f"disconnect {message['code']} {message.get('reason', '')!r}")
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
        except OSError as exc:
            record(f"send after disconnect: {type(exc).__name__} OSError")
    elif path == "/flood":
        # 512 sends of 64 KiB (32 MiB) to a client that reads late: sends must wait.
        await accept(receive, send)
        chunk = b"x" * 65536
        for i in range(512):
            await send({"type": "websocket.send", "bytes": chunk})
            if i % 16 == 15:
                record(f"flood sent {i + 1}")
        await send({"type": "websocket.send", "text": "done"})
        await until_disconnect(receive)
    elif path == "/slow-accept":
        # The client may go away while the application deliberates.
        await receive()
        message = await receive()
        record(f"before accept {message['type']} {message.get('code')}")
    else:
        await echo(scope, receive, send)
