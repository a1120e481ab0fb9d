"""A thread-per-request HTTP/1.1 service backed by PostgreSQL (psycopg2).

Usage: db_service.py PORT DSN
Routes:
  /user/<id>   runs `SELECT id, name FROM users WHERE id = <id>` on the
               request's thread (connection from a shared pool, so a
               connection serves different requests over time) and answers
               200 with the name, 404 when there is no such row
  anything else  200 "hello"
The table `users` must exist. Prints "listening PORT" once it accepts.
"""
import http.server
import socketserver
import sys
import urllib.parse

import psycopg2
import psycopg2.pool

POOL = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body):
        body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == "user" and parts[2].isdigit():
            uid = int(parts[2])
            conn = POOL.getconn()
            conn.autocommit = True  # client-side flag: no BEGIN, no ROLLBACK
            try:
                with conn.cursor() as cur:
                    # The id inline (not a bind parameter) so that tests can
                    # match each database span with its request.
                    cur.execute(f"SELECT id, name FROM users WHERE id = {uid}")
                    row = cur.fetchone()
            finally:
                POOL.putconn(conn)
            if row is None:
                return self.reply(404, "no such user\n")
            return self.reply(200, f"{row[1]}\n")
        return self.reply(200, "hello\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    global POOL
    port, dsn = int(sys.argv[1]), sys.argv[2]
    POOL = psycopg2.pool.ThreadedConnectionPool(0, 150, dsn)  # connections made while traced
    srv = Server(("127.0.0.1", port), Handler)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
