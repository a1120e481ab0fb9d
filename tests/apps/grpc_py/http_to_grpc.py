"""An HTTP/1 server whose handler makes a gRPC call (grpcio) on each GET:
  http_to_grpc.py HTTP_PORT GRPC_PORT   serves "/" with demo.Echo/Ping's answer."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

channel = grpc.insecure_channel(f"127.0.0.1:{sys.argv[2]}")
ping = channel.unary_unary("/demo.Echo/Ping", lambda x: x, lambda x: x)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ping(b"from-http")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
