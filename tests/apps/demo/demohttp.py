"""Shared helpers of weft's demo services (standard library only).

Each service is a ThreadingHTTPServer on 127.0.0.1 that answers JSON and logs
nothing (the terminal belongs to weft's waterfall).
"""
import json
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    server_version = "weft-demo/1"
    protocol_version = "HTTP/1.1"  # keep-alive for clients that want it

    def reply(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):  # quiet
        pass


def get_json(url, timeout=5):
    """GET url; returns (status, decoded JSON or None). Never raises on HTTP errors."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body or b"null")
        except ValueError:
            return e.code, None
    except (urllib.error.URLError, OSError) as e:
        return 0, {"error": str(e)}


def port_of(env, default):
    return int(os.environ.get(env, default))


def serve(handler, port):
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
    name = os.environ.get("OTEL_SERVICE_NAME", "?")
    print(f"{name} listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
