"""Helpers shared by the fixture applications of ferrocorn's black-box tests.

record() appends a line to the file named by $FIXTURE_RECORD (set by the test), which is
how an application tells the test what happened where a response cannot: close() being
called after the client went away, an import running in a given process.
"""

import json
import os


def record(line):
    """Appends `line` to $FIXTURE_RECORD (nothing when it is not set)."""
    path = os.environ.get("FIXTURE_RECORD")
    if path:
        # One write in append mode: lines from several processes do not interleave.
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def query(environ):
    """The query string as a dict (last value wins); values are not percent-decoded."""
    pairs = (item.partition("=") for item in environ.get("QUERY_STRING", "").split("&") if item)
    return {key: value for key, _, value in pairs}


def text(start_response, body, status="200 OK", headers=()):
    body = body.encode("utf-8") if isinstance(body, str) else body
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        + list(headers),
    )
    return [body]


def as_json(start_response, value, status="200 OK", headers=()):
    body = json.dumps(value, sort_keys=True).encode("utf-8")
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        + list(headers),
    )
    return [body]
