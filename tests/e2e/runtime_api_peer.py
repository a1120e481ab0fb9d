"""A Docker-compatible API on a unix socket: GET /containers/<id>/json with
the real answer's shape (Name, Config.Image, Config.Labels). A test peer
for a protocol: container runtimes cannot start containers on these
machines (docs/DEPLOY.md, "Tests"), so no real docker or podman serves it."""
import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler


class RuntimeApiPeer:
    def __init__(self, path):
        self.path = path
        self.containers = {}
        self.requests = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def address_string(self):
                return "unix"

            def do_GET(self):
                peer.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                c = peer.containers.get(parts[1]) if len(parts) == 3 and parts[0] == "containers" else None
                body = json.dumps(c if c else {"message": "No such container"}).encode()
                self.send_response(200 if c else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        if os.path.exists(path):
            os.unlink(path)
        self.server = Server(path, Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, cid, name, image, labels=None):
        self.containers[cid] = {"Id": cid, "Name": "/" + name, "Config": {"Image": image, "Labels": labels or {}},
                                "State": {"Running": True}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        os.unlink(self.path)
