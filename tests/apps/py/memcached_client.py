"""A memcached text-protocol client on one TCP connection: waits for a line
on stdin (so that weft can attach first), sends each command, reads its
whole reply, prints the replies' first lines, then waits for stdin to close.
Usage: memcached_client.py PORT"""
import socket
import sys

COMMANDS = [
    b"set user:42 0 0 6\r\nsecret\r\n",
    b"get user:42\r\n",
    b"get missing\r\n",
    b"incr user:42 1\r\n",
    b"delete user:42\r\n",
    b"touch\r\n",
]


def reply(sock, retrieval):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("memcached closed the connection")
        data += chunk
        if not data.endswith(b"\r\n"):
            continue
        if not retrieval or data.endswith(b"END\r\n") or data.split(b" ")[0].endswith(b"ERROR\r\n") \
                or data.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
            return data


def main():
    port = int(sys.argv[1])
    sys.stdin.readline()
    with socket.create_connection(("127.0.0.1", port)) as s:
        for cmd in COMMANDS:
            s.sendall(cmd)
            r = reply(s, cmd.startswith(b"get"))
            print(r.split(b"\r\n")[0].decode(), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
