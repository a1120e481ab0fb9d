"""Serves HTTP on PORT until it has answered GET /exec, then execs ARGV...
(same PID) with OTEL_SERVICE_NAME set to $EXEC_SERVICE_NAME.
Usage: exec_after.py PORT ARGV..."""
import http.server
import os
import sys

port, argv = int(sys.argv[1]), sys.argv[2:]
done = False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        global done
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok\n")
        done = self.path == "/exec"


srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
while not done:
    srv.handle_request()
srv.server_close()
env = dict(os.environ, OTEL_SERVICE_NAME=os.environ.get("EXEC_SERVICE_NAME", "after-exec"))
os.execve(argv[0], argv, env)
