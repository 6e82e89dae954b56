"""The floor under Plugboard's OCPP endpoint: the bare server's answers (bench/bare_server.py)
on the stack Plugboard's endpoint runs on, a Flask app with flask-sock (simple-websocket)
under gunicorn's gevent workers, doing none of Plugboard's own work (no validation, no
database, no batch, no events). bench/stack_floor.py serves and drives it:

    gunicorn -k gevent -w 2 --chdir bench bare_flask:app
"""

from __future__ import annotations

from bare_server import answer
from flask import Flask
from flask_sock import Sock

app = Flask(__name__)
app.config["SOCK_SERVER_OPTIONS"] = {
    "subprotocols": ["ocpp1.6"],
    "ping_interval": None,
    "max_message_size": 65536,
}
sock = Sock(app)


@sock.route("/ocpp/<identity>")
def ocpp(ws, identity):
    while True:
        reply = answer(ws.receive())
        if reply is not None:
            ws.send(reply)
