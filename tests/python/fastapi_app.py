"""A FastAPI application for ferrocorn's black-box tests: path and query parameters, a
validated JSON body (and FastAPI's 422), a streamed response, lifespan state, a plain
`def` endpoint (run on anyio's thread pool), a WebSocket endpoint (a path parameter, a
token checked before accept, JSON messages, the disconnect recorded)."""

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from fixture_support import record


@asynccontextmanager
async def lifespan(app):
    record(f"fastapi startup {os.getpid()}")
    yield {"db": f"connection of {os.getpid()}"}
    record(f"fastapi shutdown {os.getpid()}")


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "double": item.price * 2, "tags": item.tags}


@app.get("/stream")
async def stream():
    async def lines():
        for i in range(5):
            yield f"line {i}\n"

    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/state")
async def state(request: Request):
    return {"db": request.state.db, "pid": os.getpid()}


@app.get("/sync")
def sync_endpoint():
    return {"ran": "in a thread"}


@app.websocket("/ws/{room}")
async def room_socket(websocket: WebSocket, room: str, token: str | None = None):
    if token != "secret":
        await websocket.close(code=1008)  # before accept: 403
        return
    await websocket.accept(subprotocol="json" if "json" in websocket.scope["subprotocols"] else None)
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"room": room, "echo": text, "db": websocket.state.db})
    except WebSocketDisconnect as exc:
        record(f"fastapi websocket disconnect {exc.code}")
