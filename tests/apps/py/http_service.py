"""A thread-per-request HTTP/1.1 test service (stdlib only).

Routes:
  /status/NNN      answers NNN
  /call?url=U      fetches U with urllib (its own HTTP client call) and answers 200
  /chain?next=P,Q  calls http://127.0.0.1:P/chain?next=Q (forwarding X-Request-Id), answers 200
  /spawn?url=U&how=thread|process|static
                   fetches U from a new thread (urllib) or a new process (curl)
  /echo (POST)     answers the sha256 of the body it received
  anything else    answers 200 "hello"
With REQUEST_LOG=FILE, appends one JSON line per request: path, the
traceparent header(s) received, X-Request-Id and every header as received.
Prints "listening PORT" once it accepts connections.
"""
import json
import os
import threading

LOG = os.environ.get("REQUEST_LOG")
LOG_LOCK = threading.Lock()
import hashlib
import http.client
import http.server
import socketserver
import sys
import urllib.parse
import urllib.request


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body):
        body = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request_seen(self, body_sha=None):
        if not LOG:
            return
        rec = {
            "path": self.path,
            "method": self.command,
            "traceparent": self.headers.get_all("traceparent") or [],
            "request_id": self.headers.get("X-Request-Id"),
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_sha256": body_sha,
        }
        with LOG_LOCK, open(LOG, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def do_GET(self):
        self.log_request_seen()
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/spawn":
            q = urllib.parse.parse_qs(url.query)
            target, how = q["url"][0], q["how"][0]
            if how == "thread":
                out = []
                th = threading.Thread(target=lambda: out.append(urllib.request.urlopen(target, timeout=10).read()))
                th.start()
                th.join()
                body = out[0]
            elif how == "static":
                # a static client connects ~1 ms after exec, before the
                # agent has looked at the new program
                import subprocess
                body = subprocess.run(["/bin/busybox", "wget", "-q", "-O", "-", target],
                                      capture_output=True, timeout=10).stdout
            else:
                import subprocess
                body = subprocess.run(["curl", "-s", target], capture_output=True, timeout=10).stdout
            return self.reply(200, b"spawned: " + body)
        if url.path == "/chain":
            hops = [h for h in urllib.parse.parse_qs(url.query).get("next", [""])[0].split(",") if h]
            if not hops:
                return self.reply(200, "leaf\n")
            nxt = f"http://127.0.0.1:{hops[0]}/chain?next={','.join(hops[1:])}"
            req = urllib.request.Request(nxt)
            if self.headers.get("X-Request-Id"):
                req.add_header("X-Request-Id", self.headers["X-Request-Id"])
            with urllib.request.urlopen(req, timeout=20) as r:
                body = r.read()
            return self.reply(200, body)
        if url.path.startswith("/status/"):
            code = int(url.path.split("/")[2])
            return self.reply(code, f"status {code}\n")
        if url.path == "/call":
            target = urllib.parse.parse_qs(url.query)["url"][0]
            with urllib.request.urlopen(target, timeout=10) as r:
                body = r.read()
            return self.reply(200, b"called: " + body)
        return self.reply(200, "hello\n")

    do_HEAD = do_GET

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.log_request_seen(hashlib.sha256(body).hexdigest())
        return self.reply(200, hashlib.sha256(body).hexdigest() + "\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    port = int(sys.argv[1])
    srv = Server(("127.0.0.1", port), Handler)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
