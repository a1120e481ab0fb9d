"""An HTTP/1.0 server that closes first: one connection at a time, the
response ended by the close (no Content-Length), the next connection
accepted on the fd just closed. The server's socket goes TCP_CLOSE only when
its client closes too, which a client may do long after the next
connection is served."""
import socket
import sys


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(64)
    print("listening", flush=True)
    while True:
        conn, _ = s.accept()
        with conn:
            req = b""
            while b"\r\n\r\n" not in req:
                data = conn.recv(65536)
                if not data:
                    break
                req += data
            path = req.split(b" ")[1] if req.count(b" ") >= 2 else b"/"
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nserved " + path + b"\n")


if __name__ == "__main__":
    main()
