"""A scripted HTTP/1.1 client: waits for a line on stdin, then sends the
requests given as arguments (METHOD URL) over one keep-alive connection per
host, and prints one JSON line per response: status and the local port.
https URLs go over TLS (Python's ssl, imported then: OpenSSL is loaded after
the process started); method URLOPEN fetches the URL with urllib.request
on a connection of its own. Certificates are not verified (test servers)."""
import http.client
import json
import sys
import urllib.parse


def tls_context():
    import ssl

    return ssl._create_unverified_context()


def urlopen(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=10, context=tls_context()) as r:
        r.read()
        return r.status, 0  # the connection is closed by now


def main():
    sys.stdin.readline()
    conns = {}
    for spec in sys.argv[1:]:
        method, url = spec.split(" ", 1)
        if method == "URLOPEN":
            status, port = urlopen(url)
            print(json.dumps({"status": status, "local_port": port}), flush=True)
            continue
        u = urllib.parse.urlsplit(url)
        c = conns.get(u.netloc)
        if c is None:
            if u.scheme == "https":
                c = http.client.HTTPSConnection(u.hostname, u.port, timeout=10, context=tls_context())
            else:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            conns[u.netloc] = c
        c.request(method, u.path + ("?" + u.query if u.query else ""))
        r = c.getresponse()
        r.read()
        print(json.dumps({"status": r.status, "local_port": c.sock.getsockname()[1]}), flush=True)
    for c in conns.values():
        c.close()


if __name__ == "__main__":
    main()
