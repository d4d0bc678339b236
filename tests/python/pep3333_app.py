"""PEP 3333 probes, wrapped in the standard library's wsgiref.validate.validator.

The validator checks both sides of every exchange (environ keys and types, wsgi.input and
wsgi.errors, start_response's arguments, the iterable and its close()), and its warnings are
errors here: when it objects, the call raises and the server answers 500. A 200 from this
application therefore means the server's side was valid too; the bodies say what the
application saw, for the test to compare.

Routes, by PATH_INFO (`ferrocorn pep3333_app` serves `application`); any other path
answers the environ report (so that `--root-path` can be checked on any path):

    /environ        JSON: every str value of environ, the type of every other value,
                    and the wsgi.* flags
    /input/MODE     reads wsgi.input one way (MODE below) and answers what it read, with
                    a JSON report of the pieces in the X-Input-Report header
    /write          the write() callable of start_response, then a returned piece
    /exc-info       start_response again with exc_info before anything was sent
    /exc-info-late  start_response with exc_info after a piece was sent (must raise)
    /late-start     start_response called inside the iterator, after an empty piece
    /file-wrapper   wsgi.file_wrapper over this file (through the validator's iterator)
    /close?name=N   an iterable whose close() is recorded
    /errors         writes a marker line to wsgi.errors
"""

import json
import sys
import warnings
from wsgiref.validate import WSGIWarning, validator

from fixture_support import as_json, query, record

warnings.simplefilter("error", WSGIWarning)


def raw_input(environ):
    """The server's wsgi.input under the validator's wrapper, whose read() insists on a
    size and whose iteration goes through readline(): read() and iteration are PEP 3333's
    too, so they are called on the server's object itself."""
    return environ["wsgi.input"].input


def environ_report(environ, start_response):
    strings = {key: value for key, value in environ.items() if type(value) is str}
    others = {key: type(value).__name__ for key, value in environ.items() if type(value) is not str}
    report = {
        "str": strings,
        "other": others,
        "non_str_keys": [repr(key) for key in environ if type(key) is not str],
        "wsgi.version": list(environ["wsgi.version"]),
        "wsgi.multithread": environ["wsgi.multithread"],
        "wsgi.multiprocess": environ["wsgi.multiprocess"],
        "wsgi.run_once": environ["wsgi.run_once"],
        "wsgi.input_terminated": environ.get("wsgi.input_terminated"),
        "wsgi.file_wrapper": callable(environ.get("wsgi.file_wrapper")),
    }
    return as_json(start_response, report)


def read_sized(stream):
    pieces = []
    while True:
        piece = stream.read(7)
        if not piece:
            return pieces, stream.read(7)
        pieces.append(piece)


def read_all(stream):
    return [stream.read()], stream.read()


def readline(stream):
    pieces = []
    while True:
        line = stream.readline()
        if not line:
            return pieces, stream.readline()
        pieces.append(line)


def readline_limit(stream):
    pieces = []
    while True:
        line = stream.readline(5)
        if not line:
            return pieces, stream.readline(5)
        pieces.append(line)


def readlines(stream):
    return stream.readlines(), stream.read(1)


def readlines_hint(stream):
    pieces = []
    while True:
        lines = stream.readlines(10)
        if not lines:
            return pieces, stream.read(1)
        pieces.extend(lines)


def iterate(stream):
    return list(stream), stream.read(1)


def mixed(stream):
    """read(3), then readline(), then read(): what one reads, the next must not lose."""
    return [stream.read(3), stream.readline(), stream.read()], stream.read(1)


INPUT_MODES = {
    "read-sized": (read_sized, False),
    "read-all": (read_all, True),
    "readline": (readline, False),
    "readline-limit": (readline_limit, False),
    "readlines": (readlines, False),
    "readlines-hint": (readlines_hint, False),
    "iter": (iterate, True),
    "mixed": (mixed, True),
}


def read_input(environ, start_response):
    mode = environ["PATH_INFO"][len("/input/"):]
    reader, needs_raw = INPUT_MODES[mode]
    stream = raw_input(environ) if needs_raw else environ["wsgi.input"]
    pieces, after_end = reader(stream)
    assert all(type(piece) is bytes for piece in pieces), [type(p) for p in pieces]
    body = b"".join(pieces)
    report = {
        "pieces": len(pieces),
        "longest": max((len(piece) for piece in pieces), default=0),
        # Pieces holding a newline anywhere but at their end (a line-reading mode must
        # have none).
        "split_badly": sum(1 for piece in pieces if b"\n" in piece[:-1]),
        "after_end": after_end.decode("latin-1"),
        # The first pieces, each cut to 40 bytes to keep the header small.
        "first": [piece[:40].decode("latin-1") for piece in pieces[:4]],
    }
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(len(body))),
            ("X-Input-Report", json.dumps(report, sort_keys=True)),
        ],
    )
    return [body]


def write(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written, ")
    write(b"")
    return [b"then returned"]


def exc_info(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First-Try", "yes")])
    try:
        raise ValueError("pep3333_app: replaced before sending")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced by exc_info"]


def exc_info_late(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"sent before the error"
        try:
            raise ValueError("pep3333_app: too late to replace")
        except ValueError:
            try:
                start_response(
                    "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
                )
            except BaseException as error:
                record("exc_info raised " + type(error).__name__)
                raise
            record("exc_info did not raise")
        yield b"never sent"

    return body()


def late_start(environ, start_response):
    def body():
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Late", "yes")])
        yield b""
        yield b"started "
        yield b"late"

    return body()


def file_wrapper(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/x-python")])
    return environ["wsgi.file_wrapper"](open(__file__, "rb"), 1000)


class RecordedClose:
    def __init__(self, name):
        self.name = name

    def __iter__(self):
        return iter([b"closing ", self.name.encode("latin-1")])

    def close(self):
        record("closed " + self.name)


def close(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return RecordedClose(query(environ).get("name", "close"))


def errors(environ, start_response):
    errors = environ["wsgi.errors"]
    errors.write("pep3333_app: a line on wsgi.errors\n")
    errors.writelines(["pep3333_app: ", "writelines on wsgi.errors\n"])
    errors.flush()
    return as_json(start_response, {"written": True})


def route(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/input/"):
        return read_input(environ, start_response)
    return ROUTES.get(path, environ_report)(environ, start_response)


ROUTES = {
    "/write": write,
    "/exc-info": exc_info,
    "/exc-info-late": exc_info_late,
    "/late-start": late_start,
    "/file-wrapper": file_wrapper,
    "/close": close,
    "/errors": errors,
}

application = validator(route)
