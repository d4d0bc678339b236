"""Records each import with the pid of the process that ran it, so that the test can tell
whether the arbiter (`--preload`) or each worker imported the application. Answers the pid
of the worker that served the request."""

import os

from fixture_support import record

record("imported in %d" % os.getpid())


def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
