"""The edges of WSGI that the server must handle (not wrapped in wsgiref.validate, which
would reject most of them before the server sees them): exceptions, bad responses, declared
lengths that lie, endless streams, huge uploads, wsgi.file_wrapper on a real file.

Routes, by PATH_INFO (`ferrocorn edge_app` serves `application`):

    /, /hello                 "Hello from Python", with Content-Length
    /pid                      this worker's pid
    /os-environ/KEY           os.environ[KEY], 404 when unset
    /sys-path                 JSON: sys.path, sys.prefix
    /echo                     "METHOD PATH_INFO BODY", the body read with read()
    /exception                raises before start_response (a 500 is due)
    /exception-after-head     yields a piece, then raises (the response must be cut short)
    /non-bytes                returns a str piece (a 500 is due)
    /bad-status               start_response("OK", ...) (a 500 is due)
    /header-injection         a header value holding CR LF (a 500 is due, never the header)
    /content-length/short     declares 10 bytes, returns 5
    /content-length/long      declares 5 bytes, returns 10
    /stream?name=N            64 KiB pieces without end; records progress and close()
    /count?read=SIZE          reads wsgi.input with read(SIZE), checks the byte pattern
                              (byte i of the body is i % 256), answers JSON counts
    /file?path=P&name=N       wsgi.file_wrapper over P (&skip=K reads K bytes first,
                              &length=1 declares the Content-Length); records close()
    /sleep?seconds=S          sleeps, then answers

create_app(greeting) is a factory for `ferrocorn 'edge_app:create_app("...")'`.
"""

import os
import sys
import time

from fixture_support import as_json, query, record, text

CHUNK = b"x" * 65536
PATTERN = memoryview(bytes(range(256)) * 257)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    route = ROUTES.get(path)
    if route is None and path.startswith("/os-environ/"):
        route = os_environ
    if route is None:
        return text(start_response, "no route " + path, status="404 Not Found")
    return route(environ, start_response)


def hello(environ, start_response):
    return text(start_response, "Hello from Python")


def latin1(environ, start_response):
    # PEP 3333: header strings are latin-1; "\xe9" must reach the wire as the byte 0xE9.
    start_response("299 Caf\xe9", [("Content-Type", "text/plain"), ("X-Name", "caf\xe9")])
    return [b"latin-1"]


def pid(environ, start_response):
    return text(start_response, str(os.getpid()))


def os_environ(environ, start_response):
    key = environ["PATH_INFO"][len("/os-environ/"):]
    if key not in os.environ:
        return text(start_response, key + " is not set", status="404 Not Found")
    return text(start_response, os.environ[key])


def sys_path(environ, start_response):
    return as_json(start_response, {"path": sys.path, "prefix": sys.prefix})


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    line = "%s %s " % (environ["REQUEST_METHOD"], environ["PATH_INFO"])
    return text(start_response, line.encode("latin-1") + body)


def exception(environ, start_response):
    raise RuntimeError("edge_app: raised on purpose")


def exception_after_head(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"partial body"
        raise RuntimeError("edge_app: raised after the head")

    return body()


def non_bytes(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]


def bad_status(environ, start_response):
    start_response("OK", [("Content-Type", "text/plain")])
    return [b"bad status"]


def header_injection(environ, start_response):
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("X-Bad", "a\r\nInjected: yes")]
    )
    return [b"injected"]


def content_length_short(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"12345"]


def content_length_long(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"12345", b"67890"]


class Endless:
    """64 KiB pieces without end. Records every MiB produced and the call to close()."""

    def __init__(self, name):
        self.name = name
        self.produced = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.produced += len(CHUNK)
        if self.produced % (1 << 20) == 0:
            record("progress %s %d" % (self.name, self.produced))
        return CHUNK

    def close(self):
        record("closed %s after %d" % (self.name, self.produced))


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Endless(query(environ).get("name", "stream"))


def count(environ, start_response):
    size = int(query(environ).get("read", "65536"))
    stream = environ["wsgi.input"]
    total = pieces = max_piece = 0
    mismatch_at = None
    while True:
        piece = stream.read(size)
        if not piece:
            break
        pieces += 1
        max_piece = max(max_piece, len(piece))
        view = memoryview(piece)
        offset = 0
        while mismatch_at is None and offset < len(piece):
            take = min(len(piece) - offset, 65536)
            start = (total + offset) % 256
            if view[offset:offset + take] != PATTERN[start:start + take]:
                mismatch_at = total + offset
            offset += take
        total += len(piece)
    return as_json(
        start_response,
        {"bytes": total, "pieces": pieces, "max_piece": max_piece, "mismatch_at": mismatch_at},
    )


class RecordingFile:
    """A file whose close() is recorded. Only close() records: the inner file closing
    itself when garbage-collected does not, so a missing close() call shows."""

    def __init__(self, path, name):
        self._file = open(path, "rb")
        self._name = name

    def read(self, size=-1):
        return self._file.read(size)

    def fileno(self):
        return self._file.fileno()

    def seek(self, offset, whence=0):
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def close(self):
        record("file closed %s" % self._name)
        self._file.close()


def file(environ, start_response):
    args = query(environ)
    f = RecordingFile(args["path"], args.get("name", "file"))
    skip = int(args.get("skip", "0"))
    if skip:
        f.read(skip)
    headers = [("Content-Type", "application/octet-stream")]
    if args.get("length") == "1":
        headers.append(("Content-Length", str(os.path.getsize(args["path"]) - skip)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 65536)


def sleep(environ, start_response):
    time.sleep(float(query(environ).get("seconds", "1")))
    return text(start_response, "slept")


def create_app(greeting="Hello from the factory"):
    def app(environ, start_response):
        return text(start_response, greeting)

    return app


ROUTES = {
    "/latin1": latin1,
    "/": hello,
    "/hello": hello,
    "/pid": pid,
    "/sys-path": sys_path,
    "/echo": echo,
    "/exception": exception,
    "/exception-after-head": exception_after_head,
    "/non-bytes": non_bytes,
    "/bad-status": bad_status,
    "/header-injection": header_injection,
    "/content-length/short": content_length_short,
    "/content-length/long": content_length_long,
    "/stream": stream,
    "/count": count,
    "/file": file,
    "/sleep": sleep,
}
