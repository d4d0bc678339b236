"""`ferrocorn fixture_pkg.wsgi:app`: a callable of another name, in a package's module."""


def app(environ, start_response):
    body = b"Hello from fixture_pkg.wsgi:app"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
