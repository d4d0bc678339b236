# The ASGI event loop thread of one ferrocorn worker: the loop, the lifespan protocol, the
# task that runs each request, the heartbeat. Everything per message is in Rust
# (python/src/asgi/): `host` takes the worker's events when `wake_fd` is readable.
import asyncio
import os

# How often the loop proves it is not blocked (`WORKER TIMEOUT` counts from the last beat).
BEAT_SECONDS = 1.0


def new_loop(kind):
    """The event loop `asgi_loop` asks for: (loop, its name)."""
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


def is_asgi(app):
    """An `async def app(scope, receive, send)`, or an object whose `__call__` is one."""
    import inspect

    if inspect.iscoroutinefunction(app):
        return True
    if inspect.isfunction(app) or inspect.ismethod(app) or isinstance(app, type):
        return False
    call = getattr(type(app), "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


async def serve(app, scope, receive, send, cycle):
    """One request: the application's coroutine, its end or failure reported to Rust."""
    try:
        await app(scope, receive, send)
    except BaseException as exc:  # noqa: B036 - CancelledError too: the cycle must end
        cycle.failed(exc)
    else:
        cycle.finished()


class Lifespan:
    """The ASGI lifespan protocol for one worker."""

    def __init__(self, app, state, mode, log):
        self.app = app
        self.state = state
        self.mode = mode  # "auto" | "on"
        self.log = log
        self.inbox = asyncio.Queue()
        self.startup = None
        self.shutdown = None
        self.sent = False
        self.task = None

    async def receive(self):
        return await self.inbox.get()

    async def send(self, message):
        self.sent = True
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            settle(self.startup, None)
        elif kind == "lifespan.startup.failed":
            settle(self.startup, message.get("message") or "lifespan.startup.failed")
        elif kind == "lifespan.shutdown.complete":
            settle(self.shutdown, None)
        elif kind == "lifespan.shutdown.failed":
            settle(self.shutdown, message.get("message") or "lifespan.shutdown.failed")
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message type {kind!r}")

    async def main(self):
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:  # noqa: B036
            if not self.sent and self.mode == "auto" and not self.startup.done():
                self.log(1, "ASGI 'lifespan' protocol appears unsupported: %s" % describe(exc))
                settle(self.startup, UNSUPPORTED)
            else:
                self.log(2, "Exception in 'lifespan' protocol", exc)
                text = "the lifespan task raised " + describe(exc)
                settle(self.startup, text)
                settle(self.shutdown, text)
        finally:
            settle(self.startup, None)
            settle(self.shutdown, None)

    async def start(self):
        """None when started, UNSUPPORTED, or the failure's text."""
        loop = asyncio.get_running_loop()
        self.startup = loop.create_future()
        self.shutdown = loop.create_future()
        self.task = loop.create_task(self.main())
        await self.inbox.put({"type": "lifespan.startup"})
        return await self.startup

    async def stop(self):
        if self.task is None or self.task.done():
            return None
        await self.inbox.put({"type": "lifespan.shutdown"})
        return await self.shutdown


UNSUPPORTED = object()


def settle(future, value):
    if future is not None and not future.done():
        future.set_result(value)


def describe(exc):
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run(host, app, wake_fd, loop_kind, lifespan_mode, state, ready, log):
    """The thread's body: starts the loop and the lifespan, reports to `ready(error)`, serves
    until `host` asks to stop, then runs the lifespan shutdown."""
    try:
        loop, name = new_loop(loop_kind)
    except BaseException as exc:  # noqa: B036
        ready(f"cannot create the {loop_kind} event loop: {describe(exc)}")
        return
    asyncio.set_event_loop(loop)
    lifespan = None
    try:
        if lifespan_mode != "off":
            lifespan = Lifespan(app, state, lifespan_mode, log)
            outcome = loop.run_until_complete(lifespan.start())
            if outcome is UNSUPPORTED:
                lifespan = None
            elif outcome is not None:
                ready(f"ASGI lifespan startup failed: {outcome}")
                return
        stopped = loop.create_future()

        def beat():
            host.beat()
            loop.call_later(BEAT_SECONDS, beat)

        def on_wake():
            if host.take(loop):
                settle(stopped, None)

        host.beat()
        loop.call_later(BEAT_SECONDS, beat)
        loop.add_reader(wake_fd, on_wake)
        log(1, f"ASGI event loop running ({name})")
        ready(None)
        loop.run_until_complete(stopped)
        loop.remove_reader(wake_fd)
        if lifespan is not None:
            outcome = loop.run_until_complete(lifespan.stop())
            if outcome is not None:
                log(2, f"ASGI lifespan shutdown failed: {outcome}")
    except BaseException as exc:  # noqa: B036
        ready(f"the ASGI event loop failed: {describe(exc)}")
        log(2, "the ASGI event loop failed", exc)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException:  # noqa: B036
            pass
        loop.close()
