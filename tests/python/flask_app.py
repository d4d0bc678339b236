"""A Flask application as users write them (`ferrocorn flask_app:app`), served from the
test virtualenv.

    POST /form        form fields, as JSON
    POST /json        JSON in: {"numbers": [...]}; JSON out: their sum and the input
    POST /upload      multipart: the file's name, size, and whether byte i is i % 251
    GET  /stream?n=N  N lines from a generator (a streamed response)
    GET  /redirect    302 to /target
    GET  /target      "redirected here"
    GET  /cookies     two Set-Cookie headers
    GET  /boom        raises (Flask answers 500 and logs the traceback to wsgi.errors)
    GET  /where       where Flask was imported from, sys.prefix and sys.path
    anything else     404
"""

import importlib.metadata
import sys

import flask
from flask import Flask, Response, jsonify, redirect, request, url_for

app = Flask(__name__)


@app.post("/form")
def form():
    return jsonify(name=request.form.get("name"), tags=request.form.getlist("tag"))


@app.post("/json")
def json_in_out():
    data = request.get_json()
    return jsonify(sum=sum(data["numbers"]), received=data)


@app.post("/upload")
def upload():
    upload = request.files["file"]
    content = upload.read()
    expected = bytes(i % 251 for i in range(len(content)))
    return jsonify(
        filename=upload.filename,
        size=len(content),
        pattern_ok=content == expected,
        note=request.form.get("note"),
    )


@app.get("/stream")
def stream():
    n = request.args.get("n", 5, type=int)

    def lines():
        for i in range(n):
            yield "line %d\n" % i

    return Response(lines(), mimetype="text/plain")


@app.get("/redirect")
def go_elsewhere():
    return redirect(url_for("target"))


@app.get("/target")
def target():
    return "redirected here"


@app.get("/cookies")
def cookies():
    response = flask.make_response("two cookies")
    response.set_cookie("first", "1")
    response.set_cookie("second", "2", httponly=True)
    return response


@app.get("/boom")
def boom():
    raise RuntimeError("flask_app: boom on purpose")


@app.get("/where")
def where():
    return jsonify(
        flask_file=flask.__file__,
        flask_version=importlib.metadata.version("flask"),
        prefix=sys.prefix,
        path=sys.path,
    )
