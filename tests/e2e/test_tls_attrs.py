"""tls.protocol.name/.version and tls.cipher on the spans of TLS connections
(docs/TLS.md, "Version and cipher"): read by the capture front from the
clear-text ServerHello, no uprobe. Checked field by field against what the
endpoints themselves report: curl -v, Python's ssl, nginx's $ssl_protocol
and $ssl_cipher, openssl s_client. nginx serves TLS 1.3 on one port and
TLS 1.2 with a single cipher on another. Both capture fronts."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import PY, ROOT, free_port, stop_process, wait_port
from test_go import GO_DIR, go_versions
from test_tls import attach_args, pg_tls  # noqa: F401 (fixture)

FRONTS = ["socket", "syscall"]
TLS12_CIPHER = "ECDHE-RSA-AES128-GCM-SHA256"  # OpenSSL's name
SEMVER = {"TLSv1.2": "1.2", "TLSv1.3": "1.3"}


def iana(openssl_name):
    """IANA name of an OpenSSL cipher name, as openssl itself maps it."""
    if openssl_name.startswith("TLS_"):
        return openssl_name  # TLS 1.3 suites: OpenSSL uses the IANA names
    out = subprocess.run(["openssl", "ciphers", "-stdname", openssl_name], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():  # "IANA - OpenSSL ...", TLS 1.3's suites listed too
        std, name = line.split(" - ")[:2]
        if name.split()[0] == openssl_name:
            return std.strip()
    raise AssertionError(f"openssl does not know {openssl_name}")


class Nginx:
    """TLS 1.3 (HTTP/1.1 and HTTP/2) and TLS 1.2 with one cipher; /tls/
    answers nginx's own view of the connection."""

    def __init__(self, tmpdir, cert):
        self.p13, self.p12, self.h2 = free_port(), free_port(), free_port()
        crt, key = cert
        conf = os.path.join(tmpdir, "nginx.conf")
        temps = "\n".join(f"    {t}_temp_path {tmpdir}/{t};" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        common = f"""ssl_certificate {crt};
        ssl_certificate_key {key};
        location /tls/ {{ return 200 "$ssl_protocol $ssl_cipher\\n"; }}"""
        with open(conf, "w") as f:
            f.write(f"""
user root;
worker_processes 1;
daemon off;
pid {tmpdir}/nginx.pid;
error_log {tmpdir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temps}
    server {{
        listen 127.0.0.1:{self.p13} ssl;
        listen 127.0.0.1:{self.h2} ssl http2;
        ssl_protocols TLSv1.3;
        {common}
    }}
    server {{
        listen 127.0.0.1:{self.p12} ssl;
        ssl_protocols TLSv1.2;
        ssl_ciphers {TLS12_CIPHER};
        {common}
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmpdir], stderr=subprocess.PIPE)
        for port in (self.p13, self.p12, self.h2):
            wait_port(port, proc=self.proc)
        self.worker_pids = []
        deadline = time.time() + 5
        while not self.worker_pids and time.time() < deadline:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
            self.worker_pids = [int(p) for p in out.split()]
        assert self.worker_pids, "nginx started no worker"

    @property
    def pids(self):
        return [self.proc.pid] + self.worker_pids

    def url(self, port, path="/tls/x"):
        return f"https://127.0.0.1:{port}{path}"

    def stop(self):
        stop_process(self.proc)


@pytest.fixture(scope="module")
def ngx(tmp_path_factory, cert):
    n = Nginx(str(tmp_path_factory.mktemp("ngx")), cert)
    yield n
    n.stop()


def s_client(port):
    """(protocol, cipher) openssl s_client negotiates with port."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"], input="",
                         capture_output=True, text=True, timeout=10).stderr
    proto = re.search(r"Protocol version: (\S+)", out).group(1)
    cipher = re.search(r"Ciphersuite: (\S+)", out).group(1)
    return proto, cipher


def check_tls(span, proto, cipher):
    a = span["attributes"]
    assert a.get("tls.protocol.name") == "tls", span
    assert a.get("tls.protocol.version") == SEMVER[proto], span
    assert a.get("tls.cipher") == iana(cipher), span


def test_nginx_ports_negotiate_what_they_say(ngx):
    """The premise of the expectations below, by openssl s_client."""
    assert s_client(ngx.p12) == ("TLSv1.2", TLS12_CIPHER)
    assert s_client(ngx.p13)[0] == "TLSv1.3"


@pytest.mark.parametrize("front", FRONTS)
def test_curl_and_nginx_tls_attributes(weft_factory, ngx, front):
    """curl (TLS 1.3, TLS 1.2, HTTP/2 over TLS 1.3; one connection each) to
    nginx, both traced: every span's tls.* is what curl -v and nginx say."""
    urls = [ngx.url(ngx.p13), ngx.url(ngx.p12), ngx.url(ngx.h2, "/tls/h2")]
    # -v: curl reports what it negotiated, on stderr, from inside SSL_read
    # (the syscall front sees those writes to a non-socket fd inside the SSL
    # call and must not take them for the call's: they once lost its read).
    args = ["curl", "-vsk", urls[0], "--next", "-vsk", urls[1], "--next", "-vsk", "--http2", urls[2]]
    p = subprocess.Popen(["bash", "-c", "read; exec " + " ".join(f"'{a}'" for a in args)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    w = weft_factory(attach_args([p.pid] + ngx.pids), env=dict(os.environ, WEFT_CAPTURE_FRONT=front))
    out, err = p.communicate("go\n", timeout=20)
    assert p.returncode == 0, err
    curl_says = re.findall(r"SSL connection using (\S+) / (\S+)", err)
    # nginx's report of the traced connections, in the bodies.
    nginx_says = [tuple(l.split()) for l in out.splitlines()]
    assert len(curl_says) == 3 and curl_says == nginx_says, (curl_says, nginx_says)
    assert [c[0] for c in curl_says] == ["TLSv1.3", "TLSv1.2", "TLSv1.3"]
    assert curl_says[1][1] == TLS12_CIPHER
    client = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=3)
    server = w.wait_spans(lambda s: s["kind"] == "SERVER", count=3)
    for side in (client, server):
        by_port = {s["attributes"]["server.port"]: s for s in side}
        assert sorted(by_port) == sorted([ngx.p13, ngx.p12, ngx.h2]), w.stderr
        for port, (proto, cipher) in zip((ngx.p13, ngx.p12, ngx.h2), curl_says):
            check_tls(by_port[port], proto, cipher)
        assert by_port[ngx.h2]["attributes"]["network.protocol.version"] == "2"


PY_CLIENT = r"""
import http.client, json, ssl, sys
sys.stdin.readline()
ctx = ssl._create_unverified_context()
for url in sys.argv[1:]:
    host, port = url.split("/")[2].split(":")
    c = http.client.HTTPSConnection(host, int(port), context=ctx)
    c.request("GET", "/" + url.split("/", 3)[3])
    body = c.getresponse().read().decode()
    print(json.dumps({"version": c.sock.version(), "cipher": c.sock.cipher()[0], "body": body}), flush=True)
    c.close()
"""


@pytest.mark.parametrize("front", FRONTS)
def test_python_client_tls_attributes(weft_factory, ngx, front):
    """Python's ssl (OpenSSL through _ssl) to both nginx ports: the client
    spans' tls.* are what Python's ssl reports for its own socket."""
    p = subprocess.Popen([PY, "-c", PY_CLIENT, ngx.url(ngx.p13), ngx.url(ngx.p12)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    w = weft_factory(["attach", "-p", str(p.pid)], env=dict(os.environ, WEFT_CAPTURE_FRONT=front))
    out, _ = p.communicate("go\n", timeout=20)
    says = [json.loads(l) for l in out.splitlines()]
    assert [s["version"] for s in says] == ["TLSv1.3", "TLSv1.2"]
    for s in says:
        assert s["body"].split() == [s["version"], s["cipher"]]  # nginx agrees
    client = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=2)
    by_port = {s["attributes"]["server.port"]: s for s in client}
    assert sorted(by_port) == sorted([ngx.p13, ngx.p12]), w.stderr
    for port, s in zip((ngx.p13, ngx.p12), says):
        check_tls(by_port[port], s["version"], s["cipher"])


@pytest.mark.parametrize("front", FRONTS)
def test_joined_connection_has_no_tls_attributes(weft_factory, ngx, front):
    """A TLS connection weft joined after its handshake (Python connected
    and talked before weft attached) gets its spans, without tls.*."""
    script = PY_CLIENT.replace("for url in sys.argv[1:]:", "for url in []:") + r"""
host, port = sys.argv[1].split("/")[2].split(":")
c = http.client.HTTPSConnection(host, int(port), context=ctx)
c.request("GET", "/tls/before"); c.getresponse().read()
print("connected", flush=True)
sys.stdin.readline()
c.request("GET", "/tls/after"); print(c.getresponse().read().decode().strip(), flush=True)
"""
    p = subprocess.Popen([PY, "-c", script, ngx.url(ngx.p13)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    p.stdin.write("go\n")
    p.stdin.flush()
    assert p.stdout.readline().strip() == "connected"
    w = weft_factory(["attach", "-p", str(p.pid)], env=dict(os.environ, WEFT_CAPTURE_FRONT=front))
    out, _ = p.communicate("go\n", timeout=20)
    assert out.split()[0] == "TLSv1.3"
    spans = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=1)
    assert [s["attributes"]["url.path"] for s in spans] == ["/tls/after"], w.stderr
    assert not [k for k in spans[0]["attributes"] if k.startswith("tls.")], spans[0]


GO_VERSION = (go_versions() or [None])[-1]


@pytest.mark.skipif(GO_VERSION is None, reason="no Go toolchain")
@pytest.mark.parametrize("front", FRONTS)
def test_go_crypto_tls_attributes(weft_factory, ngx, cert, front):
    """Go's crypto/tls (stripped httpapp of the newest Go): its server span
    has what the Python client reports; its /call client span to nginx's
    TLS 1.2 port has nginx's one cipher."""
    subprocess.run([os.path.join(ROOT, "scripts", "build_go_apps"), GO_VERSION], check=True, capture_output=True)
    crt, key = cert
    port = free_port()
    app = subprocess.Popen([os.path.join(GO_DIR, GO_VERSION, "httpapp-stripped"), "-addr", f"127.0.0.1:{port}",
                            "-tls-cert", crt, "-tls-key", key], env={**os.environ, "SSL_CERT_FILE": crt},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=app)
        w = weft_factory(attach_args([app.pid]), env=dict(os.environ, WEFT_CAPTURE_FRONT=front))
        deadline = time.time() + 10
        while "Go crypto/tls" not in w.stderr and time.time() < deadline:
            time.sleep(0.05)  # the binary's analysis runs off the event thread
        inner = ngx.url(ngx.p12, "/tls/go")
        p = subprocess.run([PY, "-c", PY_CLIENT, f"https://127.0.0.1:{port}/call?url={inner}"], input="go\n",
                           capture_output=True, text=True, timeout=20)
        says = json.loads(p.stdout)
        assert says["body"].startswith("upstream 200"), says
        server = w.wait_spans(lambda s: s["kind"] == "SERVER", count=1)
        client = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=1)
        assert len(server) == 1 and len(client) == 1, w.stderr
        check_tls(server[0], says["version"], says["cipher"])
        assert client[0]["attributes"]["server.port"] == ngx.p12
        check_tls(client[0], "TLSv1.2", TLS12_CIPHER)
    finally:
        app.kill()
        app.wait()


PG_CLIENT = r"""
import json, sys, psycopg2
sys.stdin.readline()
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("SELECT 1")
cur.fetchone()
conn.commit()
print(json.dumps({"protocol": conn.info.ssl_attribute("protocol"), "cipher": conn.info.ssl_attribute("cipher")}))
conn.close()
"""


@pytest.mark.parametrize("front", FRONTS)
def test_postgresql_sslmode_require_tls_attributes(weft_factory, pg_tls, front):
    """PostgreSQL's TLS begins inside its protocol (SSLRequest, 'S'): the
    ServerHello is the response of an exchange the sticky protocol made of
    the ClientHello. The db spans carry what libpq reports."""
    dsn = f"host=127.0.0.1 port={pg_tls.port} user=postgres dbname=postgres sslmode=require"
    p = subprocess.Popen([PY, "-c", PG_CLIENT, dsn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    w = weft_factory(["attach", "-p", str(p.pid)], env=dict(os.environ, WEFT_CAPTURE_FRONT=front))
    out, err = p.communicate("go\n", timeout=30)
    assert p.returncode == 0, err
    says = json.loads(out)
    spans = w.wait_spans(lambda s: s["attributes"].get("db.system.name") == "postgresql", count=3)
    assert [s["name"] for s in sorted(spans, key=lambda s: s["start_ns"])] == ["BEGIN", "SELECT", "COMMIT"], w.stderr
    for s in spans:
        check_tls(s, says["protocol"], says["cipher"])
