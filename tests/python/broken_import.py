"""Fails when imported: ferrocorn must name this module and this exception, log the
traceback, and exit non-zero without serving."""

raise RuntimeError("broken_import fails at import on purpose")


def application(environ, start_response):  # never reached
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"unreachable"]
