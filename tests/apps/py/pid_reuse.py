"""Serves HTTP from a forked child whose PID is the one given (a PID just
freed by another process), without exec: the child keeps this program's
command line and environment. Uses /proc/sys/kernel/ns_last_pid (root).
Usage: pid_reuse.py PID PORT; prints "child PID" once the child listens."""
import http.server
import os
import sys

target, port = int(sys.argv[1]), int(sys.argv[2])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")


for _ in range(500):
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(target - 1))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        if os.getpid() != target:
            os._exit(0)
        srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
        os.write(w, b"x")
        os.close(w)
        srv.serve_forever()
    os.close(w)
    if pid == target:
        os.read(r, 1)
        print(f"child {pid}", flush=True)
        os.waitpid(pid, 0)
        sys.exit(0)
    os.close(r)
    os.waitpid(pid, 0)
sys.exit("could not get the PID")
