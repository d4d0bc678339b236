"""A Python module that shares the name of the built-in `hello` application: `ferrocorn
hello` serves the built-in, `ferrocorn python:hello` this module."""


def application(environ, start_response):
    body = b"Hello from the Python module named hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
