"""Go's crypto/tls as a byte source (docs/TLS.md): (*Conn).Write's entry and
(*Conn).Read's RETs, found by weft's disassembler in stripped binaries of
the oldest and newest Go Debian installs. A chain of real programs:
client -> A (Go HTTPS server, tests/apps/go/httpapp) -> its handler's
net/http client -> B (the same program, HTTPS), all traced."""
import json
import os
import ssl
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import APPS, PY, ROOT, Weft, cgroup2_root, free_port, in_cgroup, wait_port
from test_go import GO_DIR, go_versions, one, pid_of, query_id

VERSIONS = [v for v in go_versions() if v in ("1.19", "1.23")] or go_versions()[:1]


class GoTLSEnv:
    """A and B, HTTPS servers; A's client speaks HTTP/1.1 (GODEBUG) so that
    its requests go through persistConn.roundTrip; B's clients choose."""

    def __init__(self, binary, cert):
        self.binary, self.cert = binary, cert
        self.cgroup = os.path.join(cgroup2_root(), f"weft-gotls-{os.getpid()}-{time.monotonic_ns()}")
        os.mkdir(self.cgroup)
        self.procs = []
        self.b_port, self.a_port = free_port(), free_port()
        self.b = self._start(binary, self.b_port, {})
        self.a = self._start(binary, self.a_port, {"GODEBUG": "http2client=0"})
        self.weft = Weft(["attach", "--cgroup", self.cgroup, "--propagation", "headers,tcp",
                          "-p", str(self.a.pid), "-p", str(self.b.pid)])
        self.weft.wait_ready()
        deadline = time.time() + 10
        while "Go crypto/tls" not in self.weft.stderr and time.time() < deadline:
            time.sleep(0.05)  # the binaries' analysis runs off the event thread

    def _start(self, binary, port, env):
        crt, key = self.cert
        p = subprocess.Popen(
            in_cgroup([binary, "-addr", f"127.0.0.1:{port}", "-tls-cert", crt, "-tls-key", key], self.cgroup),
            env={**os.environ, "SSL_CERT_FILE": crt, **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_port(port, proc=p)
        return p

    def a_url(self, path):
        return f"https://127.0.0.1:{self.a_port}{path}"

    def b_url(self, path):
        return f"https://127.0.0.1:{self.b_port}{path}"

    def close(self):
        try:
            self.weft.close()
        finally:
            for p in self.procs:
                p.kill()
                p.wait()
            for _ in range(100):
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.05)


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"go{v}-stripped" for v in VERSIONS])
def gotls(request, cert):
    subprocess.run([os.path.join(ROOT, "scripts", "build_go_apps"), *VERSIONS], check=True, capture_output=True)
    env = GoTLSEnv(os.path.join(GO_DIR, request.param, "httpapp-stripped"), cert)
    env.version = request.param
    yield env
    env.close()


def https_get(url, headers=None):
    ctx = ssl.create_default_context(cafile=None)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        return r.status, r.read()


def test_probes_found_in_stripped_binary(gotls):
    for p in (gotls.a, gotls.b):
        assert f"tls: pid {p.pid}: Go crypto/tls (go{gotls.version}" in gotls.weft.stderr, gotls.weft.stderr


@pytest.mark.parametrize("mode", ["direct", "goroutine"])
def test_go_https_chain_parenting(gotls, mode):
    """An untraced client -> A (HTTPS) -> A's handler (HTTP/1.1 over TLS) ->
    B (HTTPS): A's client span is the child of A's server span, and B's
    server span the child of A's client span (the context crossed TLS in a
    TCP option)."""
    ident = f"tls-{mode}"
    inner = gotls.b_url(f"/hello?id={ident}")
    path = "/call?" + urllib.parse.urlencode({"url": inner, "mode": mode, "id": ident})
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    t0 = time.time_ns()
    assert https_get(gotls.a_url(path), {"traceparent": tp}) == (200, b"upstream 200 6 bytes\n")
    t1 = time.time_ns()
    spans = gotls.weft.wait_spans(lambda s: query_id(s) == ident, count=3)
    a_srv = one(spans, "SERVER", gotls.a.pid)
    a_cli = one(spans, "CLIENT", gotls.a.pid)
    b_srv = one(spans, "SERVER", gotls.b.pid)
    # A traceparent inside TLS is read, and the handler's call is its child.
    assert a_srv["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert a_srv["parent_span_id"] == "00f067aa0ba902b7"
    assert a_cli["trace_id"] == a_srv["trace_id"] and a_cli["parent_span_id"] == a_srv["span_id"], mode
    assert b_srv["trace_id"] == a_cli["trace_id"] and b_srv["parent_span_id"] == a_cli["span_id"], mode
    for s in (a_srv, a_cli, b_srv):
        a = s["attributes"]
        assert a["url.scheme"] == "https"
        assert a["network.protocol.version"] == "1.1"
        assert a["http.request.method"] == "GET"
        assert a["http.response.status_code"] == 200
        assert t0 <= s["start_ns"] <= s["end_ns"] <= t1
    assert a_srv["attributes"]["url.path"] == "/call" and a_srv["attributes"]["server.port"] == gotls.a_port
    assert a_cli["attributes"]["url.full"] == inner
    assert a_cli["attributes"]["server.port"] == gotls.b_port
    assert b_srv["attributes"]["url.path"] == "/hello"
    assert a_srv["start_ns"] <= a_cli["start_ns"] <= a_cli["end_ns"] <= a_srv["end_ns"]
    assert a_cli["start_ns"] <= b_srv["start_ns"] <= b_srv["end_ns"] <= a_cli["end_ns"]


def test_go_http2_client_and_server_over_tls(gotls):
    """A Go client left to its default (HTTP/2 by ALPN) -> B: the plaintext
    of crypto/tls reaches the HTTP/2 stream path on both sides."""
    ident = "h2go"
    crt, _ = gotls.cert
    # The client waits for a line on stdin (-wait) while weft learns about
    # it: its crypto/tls probes are attached before "ready", so before its
    # first request. (A shell that exec'd it after "ready" raced the
    # analysis of the new executable: its first writes could go unprobed.)
    cli = subprocess.Popen(
        [gotls.binary, "-wait", "-get", gotls.b_url(f"/status/201?id={ident}"), "-n", "3"],
        env={**os.environ, "SSL_CERT_FILE": crt}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    w = Weft(["attach", "-p", str(cli.pid), "-p", str(gotls.b.pid)])
    try:
        w.wait_ready()
        out, _ = cli.communicate("go\n", timeout=20)
        assert out.split() == ["201"] * 3
        server = w.wait_spans(lambda s: s["kind"] == "SERVER" and pid_of(s) == gotls.b.pid, count=3)
        client = w.wait_spans(lambda s: s["kind"] == "CLIENT" and pid_of(s) == cli.pid, count=3)
        assert len(server) == 3 and len(client) == 3, (len(server), len(client), w.stderr)
        for s in server + client:
            a = s["attributes"]
            assert a["network.protocol.version"] == "2", w.stderr
            assert a["url.scheme"] == "https"
            assert a["url.path"] == "/status/201"
            assert a["http.response.status_code"] == 201
            assert a["server.port"] == gotls.b_port
    finally:
        w.close()


def test_python_https_client_joins_go_server_across_tls(gotls, cert):
    """Python (OpenSSL) -> a Go crypto/tls server, both traced, in a cgroup
    of their own with --propagation headers,tcp: the server span joins the
    client's trace across TLS (TCP option), for each request of a
    keep-alive connection; and a connection whose client weft does not
    trace carries nothing (its server span starts a trace)."""
    crt, key = cert
    cg = os.path.join(cgroup2_root(), f"weft-gotls-py-{os.getpid()}-{time.monotonic_ns()}")
    os.mkdir(cg)
    port = free_port()
    srv = subprocess.Popen(in_cgroup([gotls.binary, "-addr", f"127.0.0.1:{port}", "-tls-cert", crt, "-tls-key", key], cg),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    urls = [f"GET https://127.0.0.1:{port}/status/{code}?id=pygo{i}" for i, code in enumerate((200, 404, 200))]
    cli = subprocess.Popen(in_cgroup([PY, os.path.join(APPS, "py", "http_client.py"), *urls], cg),
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    w = None
    try:
        wait_port(port, proc=srv)
        w = Weft(["attach", "--cgroup", cg, "--propagation", "headers,tcp", "-p", str(cli.pid), "-p", str(srv.pid)])
        w.wait_ready()
        deadline = time.time() + 10
        while "Go crypto/tls" not in w.stderr and time.time() < deadline:
            time.sleep(0.05)
        out, _ = cli.communicate("go\n", timeout=20)
        assert [json.loads(l)["status"] for l in out.splitlines()] == [200, 404, 200]
        # An untraced client (this test, outside the cgroup's traced set).
        assert https_get(f"https://127.0.0.1:{port}/hello?id=untraced") == (200, b"hello\n")
        for i in range(3):
            spans = w.wait_spans(lambda s, i=i: query_id(s) == f"pygo{i}", count=2)
            c, s = one(spans, "CLIENT", cli.pid), one(spans, "SERVER", srv.pid)
            assert c["attributes"]["url.scheme"] == s["attributes"]["url.scheme"] == "https"
            assert s["trace_id"] == c["trace_id"] and s["parent_span_id"] == c["span_id"], (i, w.stderr)
            assert c["start_ns"] <= s["start_ns"] <= s["end_ns"] <= c["end_ns"]
        (u,) = w.wait_spans(lambda s: query_id(s) == "untraced")
        assert u["parent_span_id"] == ""
        w.stop()
        assert "TLS context in TCP options: 3 sent, 0 left out (no room in the segment), 3 received" in w.stderr
    finally:
        try:
            if w:
                w.close()
        finally:
            for p in (cli, srv):
                p.kill()
                p.wait()
        for _ in range(100):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.05)


def build_grpcapp():
    """tests/apps/go/grpcapp with Debian's grpc-go (GOPATH mode, offline),
    once: rebuilt when its source is newer."""
    src = os.path.join(ROOT, "tests", "apps", "go", "grpcapp")
    out = os.path.join(GO_DIR, "grpcapp")
    if os.path.exists(out) and os.path.getmtime(out) > os.path.getmtime(os.path.join(src, "main.go")):
        return out
    env = {**os.environ, "GOPATH": "/usr/share/gocode", "GO111MODULE": "off", "GOFLAGS": "", "GOPROXY": "off",
           "GOCACHE": os.path.join(GO_DIR, "cache"), "GOTOOLCHAIN": "local"}
    subprocess.run(["/usr/lib/go-1.19/bin/go", "build", "-o", out + ".tmp", "."], cwd=src, env=env, check=True,
                   capture_output=True)
    os.rename(out + ".tmp", out)
    return out


def test_grpc_go_over_tls(cert, weft_factory):
    """grpc-go client and server with TLS credentials: crypto/tls plaintext
    to the HTTP/2 stream path; one span per call on each side."""
    crt, key = cert
    app = build_grpcapp()
    port = free_port()
    srv = subprocess.Popen([app, "serve", f"127.0.0.1:{port}", crt, key], stdout=subprocess.PIPE, text=True)
    cli = None
    try:
        assert srv.stdout.readline().strip() == "listening"
        # The client waits on stdin before dialing: both are Go programs when
        # weft attaches (a client exec'd after weft attached races its
        # probes, which attach once the new binary is analysed).
        cli = subprocess.Popen([app, "call", f"127.0.0.1:{port}", crt, "3", "wait"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert cli.stdout.readline().strip() == "ready"
        w = weft_factory(["attach", "-p", str(srv.pid), "-p", str(cli.pid)])
        assert w.stderr.count("Go crypto/tls") == 2, w.stderr  # both probed before "ready:"
        out, _ = cli.communicate("go\n", timeout=20)
        assert out.split("\n")[:3] == ["SERVING <nil>"] * 3
        for kind, pid in (("SERVER", srv.pid), ("CLIENT", cli.pid)):
            spans = w.wait_spans(lambda s, k=kind, p=pid: s["kind"] == k and pid_of(s) == p, count=3)
            assert len(spans) == 3, w.stderr
            for s in spans:
                a = s["attributes"]
                assert s["name"] == "grpc.health.v1.Health/Check"
                assert a["rpc.system"] == "grpc" and a["rpc.service"] == "grpc.health.v1.Health"
                assert a["rpc.grpc.status_code"] == 0 and s["status"] == "UNSET"
                assert a["network.protocol.version"] == "2"
                assert a["server.port"] == port
    finally:
        for p in (cli, srv):
            if p:
                p.kill()
                p.wait()
