#!/usr/bin/env python3
"""The documented plugin contract in plain Python http.server: the upstream
example's approach (single-threaded, standard library only), written from the
docs as the benchmark's baseline. It checks the token, parses and checks the
request, and answers the parameter sets the benchmarked plugin answers for
the same request (read from ANSWER_FILE), serialised anew each time.

Usage: python_plugin.py PORT TOKEN_FILE ANSWER_FILE
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = int(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as token_file:
    TOKEN = token_file.read().strip()
with open(sys.argv[3], encoding="utf-8") as answer_file:
    SETS = json.load(answer_file)["output"]["parameters"]


class Plugin(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path != "/api/v1/getparams.execute":
            return self.reply(404, {"message": "not found"})
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.reply(403, {"message": "invalid bearer token"})
        length = int(self.headers.get("Content-Length", 0))
        try:
            request = json.loads(self.rfile.read(length))
            if not isinstance(request["applicationSetName"], str):
                raise TypeError("applicationSetName must be a string")
            parameters = request.get("input", {}).get("parameters") or {}
            if not isinstance(parameters, dict):
                raise TypeError("input.parameters must be a map")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            return self.reply(400, {"message": f"invalid request: {error}"})
        return self.reply(200, {"output": {"parameters": SETS}})

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Plugin).serve_forever()
