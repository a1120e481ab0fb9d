"""A scripted HTTP/1.1 client: waits for a line on stdin, then sends the
requests given as arguments (METHOD URL) over one keep-alive connection per
host, and prints one JSON line per response: status and the local port."""
import http.client
import json
import sys
import urllib.parse


def main():
    sys.stdin.readline()
    conns = {}
    for spec in sys.argv[1:]:
        method, url = spec.split(" ", 1)
        u = urllib.parse.urlsplit(url)
        c = conns.get(u.netloc)
        if c is None:
            c = conns[u.netloc] = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request(method, u.path + ("?" + u.query if u.query else ""))
        r = c.getresponse()
        r.read()
        print(json.dumps({"status": r.status, "local_port": c.sock.getsockname()[1]}), flush=True)
    for c in conns.values():
        c.close()


if __name__ == "__main__":
    main()
