"""A WSGI application that leaks memory: each request keeps `LEAK_KIB` KiB (256 unless the
variable says otherwise) more alive in its worker, written so that the pages are resident.
For the tests of `max_worker_memory`. The body is the worker's pid and its requests so far."""

import os

LEAK = int(os.environ.get("LEAK_KIB", "256")) * 1024
_kept = []


def application(environ, start_response):
    _kept.append(b"\x01" * LEAK)
    body = f"{os.getpid()} {len(_kept)}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
