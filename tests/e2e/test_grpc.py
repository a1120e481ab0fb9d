"""HTTP/2 and gRPC: Python grpcio (gRPC C-core's own HTTP/2) server and
client, and nghttpd/curl for plain HTTP/2 (h2c), traced by weft: one span
per stream on each side, checked field by field."""
import os
import re
import socket
import subprocess

import pytest

from conftest import APPS, PY, dump_int, free_port, in_cgroup, stop_process, wait_port, weft_map_dumps

GRPC_APP = f"{APPS}/grpc_py/grpc_app.py"
TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class GrpcServer:
    def __init__(self, *extra, cgroup=None, name=None):
        argv = [PY, GRPC_APP, "server", *extra]
        if cgroup:
            argv = in_cgroup(argv, cgroup)
        env = dict(os.environ, OTEL_SERVICE_NAME=name) if name else None
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.port = int(line)
        wait_port(self.port, proc=self.proc)

    @property
    def pid(self):
        return self.proc.pid


class GrpcClient:
    """A client that makes its calls once told to (after weft attached)."""

    def __init__(self, port, calls, cgroup=None):
        argv = [PY, GRPC_APP, "client", str(port), *calls]
        if cgroup:
            argv = in_cgroup(argv, cgroup)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    @property
    def pid(self):
        return self.proc.pid

    def go(self):
        out, err = self.proc.communicate("go\n", timeout=30)
        assert self.proc.returncode == 0, err
        return dict(l.split(" ", 1) for l in out.splitlines())


@pytest.fixture
def grpc_servers():
    started = []

    def start(*extra, cgroup=None, name=None):
        s = GrpcServer(*extra, cgroup=cgroup, name=name)
        started.append(s)
        return s

    yield start
    for s in started:
        stop_process(s.proc)


def grpc_spans(w, kind, count):
    got = w.wait_spans(lambda s: s["kind"] == kind and s["attributes"].get("rpc.system") == "grpc", count=count)
    assert len(got) == count, (kind, [s["name"] for s in got], w.stderr)
    return got


def rpc(name, spans):
    found = [s for s in spans if s["attributes"]["rpc.method"] == name]
    return found


CALLS = ["ping:hi", "ping:fail", "ping:nf", "list", "sum:4", "nope"]


def test_grpc_server_and_client_spans(weft_factory, grpc_servers):
    server = grpc_servers()
    client = GrpcClient(server.port, CALLS)
    w = weft_factory(["attach", "-p", str(server.pid), "-p", str(client.pid)])
    assert client.go() == {"ping:hi": "pong:hi", "ping:fail": "INTERNAL", "ping:nf": "NOT_FOUND",
                           "list": "item0,item1,item2", "sum:4": "n=4", "nope": "UNIMPLEMENTED"}
    srv = grpc_spans(w, "SERVER", 6)
    cli = grpc_spans(w, "CLIENT", 6)
    # Calls are sequential: spans in call order on both sides.
    srv.sort(key=lambda s: s["start_ns"])
    cli.sort(key=lambda s: s["start_ns"])
    expect = [("Ping", 0), ("Ping", 13), ("Ping", 5), ("List", 0), ("Sum", 0), ("Nope", 12)]
    for side, spans in (("SERVER", srv), ("CLIENT", cli)):
        assert [(s["attributes"]["rpc.method"], s["attributes"]["rpc.grpc.status_code"]) for s in spans] == expect
        for s, (method, code) in zip(spans, expect):
            a = s["attributes"]
            assert s["name"] == f"demo.Echo/{method}"
            assert a["rpc.system"] == "grpc" and a["rpc.service"] == "demo.Echo"
            assert a["network.protocol.name"] == "http" and a["network.protocol.version"] == "2"
            assert a["server.address"] == "127.0.0.1" and a["server.port"] == server.port
            assert a["network.peer.address"] == "127.0.0.1"
            assert 0 < s["end_ns"] - s["start_ns"] < 5e9
            assert re.fullmatch(r"[0-9a-f]{32}", s["trace_id"]) and re.fullmatch(r"[0-9a-f]{16}", s["span_id"])
            assert s["resource"]["process.pid"] == (server.pid if side == "SERVER" else client.pid)
            assert a["user_agent.original"].startswith("grpc-python/") if side == "SERVER" else True
            if side == "SERVER":
                assert a["client.address"] == "127.0.0.1" and a["network.peer.port"] == a["client.port"]
            else:
                assert a["network.peer.port"] == server.port
    # Status per the semantic conventions: a server errs on INTERNAL and
    # UNIMPLEMENTED but not on NOT_FOUND; a client on every non-OK code.
    assert [s["status"] for s in srv] == ["UNSET", "ERROR", "UNSET", "UNSET", "UNSET", "ERROR"]
    assert [s["status"] for s in cli] == ["UNSET", "ERROR", "ERROR", "UNSET", "UNSET", "ERROR"]
    assert srv[1]["status_message"] == "boom" and srv[1]["attributes"]["error.type"] == "13"
    # Streaming calls last from the request HEADERS to the last END_STREAM.
    for s, c in zip(srv, cli):
        assert c["start_ns"] <= s["start_ns"] and s["end_ns"] <= c["end_ns"] + 1_000_000
    assert "HTTP/2: 12 spans" in w.stderr or w.stop() == 0 and "HTTP/2: 12 spans" in w.stderr, w.stderr


def test_grpc_incoming_traceparent_joins_trace(weft_factory, grpc_servers):
    server = grpc_servers()
    client = GrpcClient(server.port, [f"traceparent:{TP}", "ping:plain"])
    w = weft_factory(["attach", "-p", str(server.pid)])
    client.go()
    srv = sorted(grpc_spans(w, "SERVER", 2), key=lambda s: s["start_ns"])
    assert srv[0]["trace_id"] == TP.split("-")[1] and srv[0]["parent_span_id"] == TP.split("-")[2]
    assert srv[1]["trace_id"] != TP.split("-")[1] and srv[1]["parent_span_id"] == ""


def test_grpc_deadline_exceeded(weft_factory, grpc_servers):
    server = grpc_servers()
    client = GrpcClient(server.port, ["slow", "ping:after"])
    w = weft_factory(["attach", "-p", str(server.pid), "-p", str(client.pid)])
    assert client.go() == {"slow": "DEADLINE_EXCEEDED", "ping:after": "pong:after"}
    cli = sorted(grpc_spans(w, "CLIENT", 2), key=lambda s: s["start_ns"])
    # The client gave up (RST_STREAM): an error without a status from the server.
    assert cli[0]["status"] == "ERROR" and cli[0]["attributes"]["rpc.method"] == "Ping"
    assert cli[1]["status"] == "UNSET" and cli[1]["attributes"]["rpc.grpc.status_code"] == 0
    assert 250e6 < cli[0]["end_ns"] - cli[0]["start_ns"] < 2e9


def test_grpc_connection_opened_before_weft_is_skipped_cleanly(weft_factory, grpc_servers):
    """A connection whose preface weft did not see: HPACK state unknown, so
    no spans from it (never wrong ones), and new connections are traced."""
    server = grpc_servers()
    early = GrpcClient(server.port, ["ping:early"])
    # The early client connects and calls before weft starts... but its
    # calls wait for stdin: connect it with a first call now.
    early.proc.stdin.write("go\n")
    early.proc.stdin.flush()
    assert early.proc.stdout.readline().strip() == "ping:early pong:early"
    late = GrpcClient(server.port, ["ping:late"])
    w = weft_factory(["attach", "-p", str(server.pid)])
    late.go()
    srv = grpc_spans(w, "SERVER", 1)
    assert srv[0]["attributes"]["rpc.method"] == "Ping"
    early.proc.communicate(timeout=10)


def test_plain_http2_spans(weft_factory, services, tmp_path):
    (tmp_path / "index.html").write_text("hello\n")
    port = free_port()
    nghttpd = services(["nghttpd", "--no-tls", "-d", str(tmp_path), str(port)], port)
    w = weft_factory(["attach", "-p", str(nghttpd.pid)])
    # nghttp sends both requests at once on one connection: two streams.
    out = subprocess.run(["nghttp", "-n", "-s", f"http://127.0.0.1:{port}/index.html",
                          f"http://127.0.0.1:{port}/missing?q=1"], capture_output=True, text=True, timeout=10).stdout
    assert re.search(r" 200 .* /index.html", out) and re.search(r" 404 .* /missing", out), out
    spans = w.wait_spans(lambda s: s["kind"] == "SERVER", count=2)
    assert len(spans) == 2, w.stderr
    ok, missing = sorted(spans, key=lambda s: s["attributes"]["url.path"] != "/index.html")
    # Interleaved on one connection, told apart by stream.
    assert ok["attributes"]["client.port"] == missing["attributes"]["client.port"]
    assert ok["name"] == "GET" or ok["name"].startswith("GET")
    a = ok["attributes"]
    assert a["http.request.method"] == "GET" and a["url.path"] == "/index.html"
    assert a["http.response.status_code"] == 200 and a["network.protocol.version"] == "2"
    assert "rpc.system" not in a and ok["status"] == "UNSET"
    m = missing["attributes"]
    assert m["url.path"] == "/missing" and m["url.query"] == "q=1" and m["http.response.status_code"] == 404
    assert missing["status"] == "UNSET"  # 4xx is not a server error


H2_PREFACE_SETTINGS = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def h2_get(sid, path):
    """A HEADERS frame (END_STREAM, END_HEADERS) of stream sid: GET path of
    127.0.0.1 over http, its fields literal or static (no HPACK table)."""
    block = bytes([0x82, 0x86, 0x04, len(path)]) + path.encode() + bytes([0x01, 9]) + b"127.0.0.1"
    return len(block).to_bytes(3, "big") + bytes([1, 5]) + sid.to_bytes(4, "big") + block


def h2_request(port, path):
    """One h2c request whose preface, SETTINGS and HEADERS go in one write;
    returns the server's bytes up to its response HEADERS (stream 1)."""
    first = H2_PREFACE_SETTINGS + h2_get(1, path)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(first)
        got = b""
        while len(got) < 19:  # the server's SETTINGS (9) and HEADERS (10)
            more = c.recv(64)
            assert more, got
            got += more
        c.sendall(bytes([0, 0, 0, 4, 1, 0, 0, 0, 0]))  # SETTINGS ack
    return got


def test_http2_directions_begun_at_once(weft_factory, tmp_path):
    """A connection whose two directions start at the same instant on two
    CPUs (the server writes its SETTINGS while it reads the preface, as a Go
    or grpc-go server may): each request still becomes its span, and no
    connection is given up or taken for one joined mid-way. (The second
    direction now joins the stream the first began: it restarted it, and
    the first direction's sequence with it, which the agent took for lost
    events. And the second CPU to meet the new socket keeps the entry the
    first made: it replaced it with one of unknown role and protocol.)"""
    exe = str(tmp_path / "h2race")
    subprocess.run(["cc", "-O2", "-Wall", "-pthread", "-o", exe, os.path.join(APPS, "h2race", "h2race.c")], check=True)
    n = 600
    srv = subprocess.Popen([exe, str(n)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline())
        w = weft_factory(["attach", "-p", str(srv.pid)])
        for i in range(n):
            got = h2_request(port, f"/race/{i}")
            assert got[:9] == bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]) and got[9:19] == bytes([0, 0, 1, 1, 5, 0, 0, 0, 1, 0x88])
        assert srv.wait(10) == 0
        spans = w.wait_spans(lambda s: s["kind"] == "SERVER", count=n)
        w.stop()
        assert re.search(r"HTTP/2: %d spans; 0 connections given up \([^)]*\), 0 joined mid-way" % n, w.stderr), w.stderr
        assert sorted(s["attributes"]["url.path"] for s in spans) == sorted(f"/race/{i}" for i in range(n))
        for s in spans:
            a = s["attributes"]
            assert a["http.request.method"] == "GET" and a["http.response.status_code"] == 200, a
            assert a["network.protocol.version"] == "2" and a["server.port"] == port
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def h2_frames(c, until):
    """Frames (type, flags, stream, payload) read from socket c until
    until(frame) is true."""
    buf, out = b"", []
    while True:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            f = (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n])
            buf = buf[9 + n:]
            out.append(f)
            if until(f):
                return out
        more = c.recv(65536)
        assert more, out
        buf += more


def test_http2_framing_state_lost_is_counted(weft_factory, services, tmp_path):
    """A live connection whose framing state leaves the kernel's table (as
    when the close of its fd's previous socket, on another CPU, deletes it:
    done here with bpftool): its later bytes are not forwarded, the loss is
    counted once and said, the connection is not looked at again; the first
    request's span was made, nghttpd answers both requests."""
    (tmp_path / "index.html").write_text("hello\n")
    port = free_port()
    srv = services(["nghttpd", "--no-tls", "-d", str(tmp_path), str(port)], port)
    w = weft_factory(["attach", "-p", str(srv.pid)])

    def request(c, sid, path, first=b""):
        c.sendall(first + h2_get(sid, path))
        frames = h2_frames(c, lambda f: f[2] == sid and f[0] in (0, 1) and f[1] & 1)
        assert any(f[0] == 1 and f[2] == sid for f in frames), frames

    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        request(c, 1, "/index.html", H2_PREFACE_SETTINGS)
        (first,) = w.wait_spans(lambda s: s["kind"] == "SERVER", count=1)
        assert first["attributes"]["url.path"] == "/index.html"
        (info, entries), = weft_map_dumps(w.proc.pid, lambda i: i.get("name") == "stream_states")
        # struct conn_key {tgid, fd}: bytes, as bpftool dumps them ("0x..").
        keys = [e["key"] for e in entries if dump_int(e["key"]) == srv.pid]
        assert len(keys) == 1, entries
        subprocess.run(["bpftool", "map", "delete", "id", str(info["id"]), "key", *keys[0]], check=True)
        request(c, 3, "/missing")
        request(c, 5, "/index.html")
    w.stop()
    assert re.search(r"kernel sent \d+ frame events; 1 gaps \(connections given up\)", w.stderr), w.stderr
    assert [s["attributes"]["url.path"] for s in w.spans()] == ["/index.html"]


def test_plain_http2_client_span(weft_factory, services, tmp_path, test_cgroup):
    (tmp_path / "index.html").write_text("hello\n")
    port = free_port()
    server = services(["nghttpd", "--no-tls", "-d", str(tmp_path), str(port)], port)
    url = f"http://127.0.0.1:{port}/index.html?page=2&Signature=secret"
    curl = subprocess.Popen(in_cgroup(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
                                       url], test_cgroup, wait_stdin=True),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # curl (libnghttp2's encoder) in the cgroup: its HEADERS get traceparent.
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(curl.pid), "-p", str(server.pid)])
    assert curl.communicate("go\n", timeout=10)[0] == "200"
    (c,) = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=1)
    (srv,) = w.wait_spans(lambda s: s["kind"] == "SERVER", count=1)
    assert srv["trace_id"] == c["trace_id"] and srv["parent_span_id"] == c["span_id"]
    assert srv["attributes"]["url.query"] == "page=2&Signature=REDACTED"
    a = c["attributes"]
    assert c["name"] == "GET /index.html" and c["status"] == "UNSET"
    assert a["http.request.method"] == "GET" and a["http.response.status_code"] == 200
    # url.full redacts credentials' values as url.query does (semantic conventions).
    assert a["url.full"] == url.replace("Signature=secret", "Signature=REDACTED") and a["url.path"] == "/index.html"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == port
    assert a["network.protocol.version"] == "2" and a["user_agent.original"].startswith("curl/")
    assert c["resource"]["process.executable.name"] == "curl"


def test_grpc_chain_joined_by_injected_header(weft_factory, grpc_servers, test_cgroup):
    """client -> A -> B, all traced with sockops on the test's cgroup: sk_msg
    appends a traceparent field to each request's HEADERS frame; each
    server span joins the client span whose id went on the wire."""
    b = grpc_servers(cgroup=test_cgroup)
    a = grpc_servers("--next", str(b.port), cgroup=test_cgroup)
    client = GrpcClient(a.port, ["ping:one", "ping:tp?", "list"], cgroup=test_cgroup)
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(a.pid), "-p", str(b.pid), "-p", str(client.pid)])
    out = client.go()
    assert out["ping:one"] == "via:pong:one" and out["list"] == "item0,item1,item2"
    spans = w.wait_spans(lambda s: s["attributes"].get("rpc.system") == "grpc", count=10)
    assert len(spans) == 10, w.stderr
    pid = lambda s: s["resource"]["process.pid"]
    by_id = {s["span_id"]: s for s in spans}
    # Every server span's parent is a client span of the caller, same trace.
    for s in spans:
        if s["kind"] != "SERVER":
            continue
        parent = by_id.get(s["parent_span_id"])
        assert parent and parent["kind"] == "CLIENT" and parent["trace_id"] == s["trace_id"], (s, w.stderr)
        assert parent["attributes"]["rpc.method"] == s["attributes"]["rpc.method"]
        assert parent["attributes"]["server.port"] == (a.port if pid(s) == a.pid else b.port)
        assert pid(parent) == (client.pid if pid(s) == a.pid else a.pid)
    # What B received for "tp?" (answered through A) is the id weft exported
    # for A's client span of that call.
    (tp,) = [v for k, v in out.items() if k == "ping:tp?"]
    got = tp.removeprefix("via:")
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", got)
    assert m, got
    assert by_id[m.group(2)]["kind"] == "CLIENT" and pid(by_id[m.group(2)]) == a.pid
    assert by_id[m.group(2)]["trace_id"] == m.group(1)
    w.stop()
    assert re.search(r"traceparent injected ([4-9]|\d\d)", w.stderr), w.stderr


def test_grpc_app_traceparent_is_not_doubled(weft_factory, grpc_servers, test_cgroup):
    server = grpc_servers(cgroup=test_cgroup)
    client = GrpcClient(server.port, [f"traceparent:{TP}", "ping:tp?"], cgroup=test_cgroup)
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(server.pid), "-p", str(client.pid)])
    out = client.go()
    # The app's own header arrives alone; once a client sends its own, weft
    # leaves the connection alone (a later request may carry it by index).
    assert out[f"traceparent:{TP}"] == TP
    assert out["ping:tp?"] == ""
    srv = sorted(grpc_spans(w, "SERVER", 2), key=lambda s: s["start_ns"])
    cli = sorted(grpc_spans(w, "CLIENT", 2), key=lambda s: s["start_ns"])
    assert srv[0]["trace_id"] == TP.split("-")[1] and srv[0]["parent_span_id"] == TP.split("-")[2]
    assert cli[0]["trace_id"] == TP.split("-")[1]


def test_grpc_rpc_metrics_and_service_graph(weft_factory, grpc_servers, test_cgroup):
    from test_metrics import parse, scrape, total

    b = grpc_servers(cgroup=test_cgroup, name="grpc-b")
    a = grpc_servers("--next", str(b.port), cgroup=test_cgroup, name="grpc-a")
    calls = ["ping:x"] * 20 + ["ping:fail"] * 5 + ["list"] * 3
    client = GrpcClient(a.port, calls, cgroup=test_cgroup)
    port = free_port()
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(a.pid), "-p", str(b.pid),
                      "--prometheus", f"127.0.0.1:{port}"])
    client.go()
    srv = "rpc_server_duration_seconds_count"
    w.wait_spans(lambda s: s["kind"] == "SERVER", count=48)
    samples = parse(scrape(port)[1])
    # Every call of A (28; "fail" fails in A) and every call A made to B (20).
    assert total(samples, srv, service_name="grpc-a", rpc_system="grpc", rpc_service="demo.Echo",
                 rpc_method="Ping") == 25, samples
    assert total(samples, srv, service_name="grpc-a", rpc_method="Ping", rpc_grpc_status_code="13") == 5
    assert total(samples, srv, service_name="grpc-a", rpc_method="List", rpc_grpc_status_code="0") == 3
    assert total(samples, srv, service_name="grpc-b", rpc_method="Ping", rpc_grpc_status_code="0") == 20
    assert total(samples, srv, service_name="grpc-b") == 20
    assert total(samples, "rpc_client_duration_seconds_count", service_name="grpc-a", rpc_method="Ping",
                 rpc_grpc_status_code="0", server_address="127.0.0.1", server_port=str(b.port)) == 20
    assert not [n for n, l, v in samples if n.startswith("http_")]
    # The edge A -> B, joined through the injected traceparent; the untraced
    # client is "user".
    sg = "traces_service_graph_request_total"
    assert total(samples, sg, client="grpc-a", server="grpc-b", connection_type="") == 20
    assert total(samples, sg, client="user", server="grpc-a", connection_type="virtual_node") == 28
    assert total(samples, "traces_service_graph_request_failed_total", client="user", server="grpc-a") == 5


def test_http_handler_grpc_call_is_its_child(weft_factory, grpc_servers, services, test_cgroup):
    """An HTTP/1 request served by a thread that makes a gRPC call: the
    client span is the request's child where the thread writes the call's
    HEADERS itself (gRPC C-core does, once its connection is up), never a
    wrong parent, and the next service joins through the injected header."""
    b = grpc_servers(cgroup=test_cgroup)
    port = free_port()
    front = services(in_cgroup([PY, f"{APPS}/grpc_py/http_to_grpc.py", str(port), str(b.port)], test_cgroup), port)
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(front.pid), "-p", str(b.pid)])
    for _ in range(4):
        out = subprocess.run(["curl", "-s", front.url("/")], capture_output=True, text=True, timeout=10).stdout
        assert out == "pong:from-http"
    spans = w.wait_spans(count=12)
    assert len(spans) == 12, w.stderr
    by_id = {s["span_id"]: s for s in spans}
    gets = [s for s in spans if s["name"] == "GET /"]
    clients = [s for s in spans if s["kind"] == "CLIENT"]
    assert len(gets) == 4 and len(clients) == 4
    parented = 0
    for c in clients:
        if c["parent_span_id"]:
            parent = by_id[c["parent_span_id"]]
            assert parent["name"] == "GET /" and parent["trace_id"] == c["trace_id"]
            assert parent["start_ns"] <= c["start_ns"] and c["end_ns"] <= parent["end_ns"]
            parented += 1
        (server,) = [s for s in spans if s["kind"] == "SERVER" and s["parent_span_id"] == c["span_id"]]
        assert server["resource"]["process.pid"] == b.pid and server["trace_id"] == c["trace_id"]
    # The first call connects, and C-core writes it from its own thread.
    assert parented >= 3, [c["parent_span_id"] for c in clients]


def test_grpc_server_killed_mid_call(weft_factory, grpc_servers):
    """The server dies while a call is in flight: the client's span ends
    with the connection, as an error, instead of never being reported."""
    server = grpc_servers()
    client = GrpcClient(server.port, ["slowwait"])
    w = weft_factory(["attach", "-p", str(client.pid)])
    client.proc.stdin.write("go\n")
    client.proc.stdin.flush()
    assert server.proc.stdout.readline().strip() == "slow"
    server.proc.kill()
    out, err = client.proc.communicate(timeout=30)
    assert out.strip() == "slowwait UNAVAILABLE", (out, err)
    (c,) = grpc_spans(w, "CLIENT", 1)
    assert c["attributes"]["rpc.method"] == "Ping" and c["status"] == "ERROR"
    # The connection's end, or the RST_STREAM C-core writes first when weft
    # sees that write (the syscall front does; on the socket front the
    # write fails before it reaches the socket).
    if "http2.rst_stream.error_code" in c["attributes"]:
        assert c["attributes"]["rpc.grpc.status_code"] == 1  # CANCELLED: reset without a status
    else:
        assert "rpc.grpc.status_code" not in c["attributes"] and c["attributes"]["error.type"] == "no_response"
        assert c["status_message"] == "connection closed before the response ended"
