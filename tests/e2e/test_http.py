"""HTTP/1 spans from the syscall layer, checked field by field against real
servers (Python thread-per-request, nginx event loop, Go net/http) and real
clients (curl, Python)."""
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import APPS, PY, WEFT, curl, free_port, wait_port

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def server_spans(w, pid, pred=lambda s: True, count=1, timeout=10):
    return w.wait_spans(
        lambda s: s["kind"] == "SERVER" and s["resource"]["process.pid"] == pid and pred(s), count, timeout
    )


def check_ids(span):
    assert HEX32.match(span["trace_id"]) and span["trace_id"] != "0" * 32
    assert HEX16.match(span["span_id"]) and span["span_id"] != "0" * 16


def test_python_server_span_fields(weft_factory, py_service):
    svc = py_service(name="inventory")
    w = weft_factory(["attach", "-p", str(svc.pid)])
    status, t0, t1 = curl(svc.url("/items/12345?verbose=1"), "-A", "weft-test/1.0")
    assert status == 200
    spans = server_spans(w, svc.pid)
    assert len(spans) == 1, w.stderr
    s = spans[0]
    check_ids(s)
    assert s["parent_span_id"] == ""
    assert s["name"] == "GET /items/*"
    assert s["kind"] == "SERVER"
    assert s["status"] == "UNSET"
    assert t0 <= s["start_ns"] <= s["end_ns"] <= t1
    a = s["attributes"]
    assert a["http.request.method"] == "GET"
    assert a["url.path"] == "/items/12345"
    assert a["url.scheme"] == "http"
    assert a["http.response.status_code"] == 200
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == svc.port
    assert a["client.address"] == "127.0.0.1"
    assert a["network.peer.address"] == "127.0.0.1"
    assert isinstance(a["network.peer.port"], int) and 0 < a["network.peer.port"] < 65536
    assert a["network.peer.port"] != svc.port
    assert a["user_agent.original"] == "weft-test/1.0"
    assert a["network.protocol.version"] == "1.1"
    r = s["resource"]
    assert r["service.name"] == "inventory"
    assert r["process.pid"] == svc.pid
    assert r["process.executable.name"].startswith("python3")
    assert "http_service.py" in r["process.command_line"]
    assert r["host.name"] == socket.gethostname()
    assert r["telemetry.sdk.name"] == "weft"
    assert not any(k.startswith("weft.") for k in r)


def test_service_name_defaults_to_executable(weft_factory, py_service):
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid)])
    curl(svc.url("/"))
    s = server_spans(w, svc.pid)[0]
    assert s["resource"]["service.name"] == s["resource"]["process.executable.name"]


def test_errors_set_status(weft_factory, py_service):
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid)])
    assert curl(svc.url("/status/404"))[0] == 404
    assert curl(svc.url("/status/500"))[0] == 500
    spans = server_spans(w, svc.pid, count=2)
    by_code = {s["attributes"]["http.response.status_code"]: s for s in spans}
    assert set(by_code) == {404, 500}
    assert by_code[404]["status"] == "UNSET"  # a 4xx is the client's problem, not the server's
    assert by_code[500]["status"] == "ERROR"
    assert by_code[500]["attributes"]["error.type"] == "500"
    assert "error.type" not in by_code[404]["attributes"]


def test_post_body_and_head(weft_factory, py_service):
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid)])
    body = os.urandom(200_000)
    r = subprocess.run(
        ["curl", "-s", "--data-binary", "@-", "-H", "Content-Type: application/octet-stream", svc.url("/echo")],
        input=body, capture_output=True,
    )
    import hashlib

    assert r.stdout.decode().strip() == hashlib.sha256(body).hexdigest()  # the app is unaffected
    assert curl(svc.url("/"), "-I")[0] == 200
    spans = server_spans(w, svc.pid, count=2)
    methods = sorted(s["attributes"]["http.request.method"] for s in spans)
    assert methods == ["HEAD", "POST"]
    post = next(s for s in spans if s["attributes"]["http.request.method"] == "POST")
    assert post["name"] == "POST /echo" and post["attributes"]["http.response.status_code"] == 200


def test_curl_client_spans(weft_factory, py_service):
    svc = py_service()
    # curl is short-lived: start it paused in a shell, attach, then let it run.
    p = subprocess.Popen(
        ["bash", "-c", f"read; exec curl -s -o /dev/null {svc.url('/status/404')} -o /dev/null '{svc.url('/a/b?x=1&sig=s3cret')}'"],
        stdin=subprocess.PIPE, text=True,
    )
    w = weft_factory(["attach", "-p", str(p.pid)])
    p.stdin.write("go\n")
    p.stdin.close()
    assert p.wait(10) == 0
    spans = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=2)
    assert len(spans) == 2, w.stderr
    by_path = {s["attributes"]["url.path"]: s for s in spans}
    c404, c200 = by_path["/status/404"], by_path["/a/b"]
    for s in (c404, c200):
        check_ids(s)
        assert s["resource"]["process.executable.name"] == "curl"
        assert s["resource"]["process.pid"] == p.pid
        a = s["attributes"]
        assert a["http.request.method"] == "GET"
        assert a["server.address"] == "127.0.0.1"
        assert a["server.port"] == svc.port
        assert a["network.peer.address"] == "127.0.0.1"
        assert a["network.peer.port"] == svc.port
        assert a["user_agent.original"].startswith("curl/")
    assert c404["status"] == "ERROR" and c404["attributes"]["http.response.status_code"] == 404
    assert c404["attributes"]["error.type"] == "404"
    assert c200["status"] == "UNSET" and c200["attributes"]["http.response.status_code"] == 200
    # A signature's value is redacted in url.full (semantic conventions).
    assert c200["attributes"]["url.full"] == f"http://127.0.0.1:{svc.port}/a/b?x=1&sig=REDACTED"
    assert c200["name"] == "GET /a/b"
    assert c404["end_ns"] <= c200["start_ns"]


def read_response(sock):
    """One HTTP/1.1 response with a Content-Length, read whole from sock."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, "server closed the connection"
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(4096)
    return int(head.split()[1])


# Status codes whose reason phrases differ in length: the response header's
# line feeds fall at every offset of the kernel's word-wise header scan.
ALIGN_CODES = [200, 201, 202, 203, 206, 400, 404, 405, 409, 418, 451, 500, 503]


def test_header_scan_at_every_alignment(weft_factory, py_service):
    """The kernel scans headers 16 bytes per step: a traceparent and the
    response's Content-Length are found wherever their lines fall. A
    padding header of 0..31 bytes shifts the request's lines, the reason
    phrase the response's; the client keeps its connection open after the
    last request, so that exchange comes out only if the kernel found where
    its response ends (else the agent's 3 s idle sweep would send it)."""
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid), "--propagation", "off"])
    want = {}
    with socket.create_connection(("127.0.0.1", svc.port)) as c:
        for k in range(32):
            code = ALIGN_CODES[k % len(ALIGN_CODES)]
            tid, sid = f"{random.getrandbits(128) | 1:032x}", f"{random.getrandbits(64) | 1:016x}"
            c.sendall(f"GET /status/{code}?k={k} HTTP/1.1\r\nHost: h\r\nX-Pad: {'p' * k}\r\n"
                      f"traceparent: 00-{tid}-{sid}-01\r\n\r\n".encode())
            assert read_response(c) == code
            want[k] = (tid, sid, code)
        spans = server_spans(w, svc.pid, count=32, timeout=2.5)
    assert len(spans) == 32, f"{len(spans)} of 32 spans before the connection closed:\n{w.stderr}"
    for s in spans:
        a = s["attributes"]
        k = int(a["url.query"].split("=")[1])
        tid, sid, code = want.pop(k)
        assert (s["trace_id"], s["parent_span_id"]) == (tid, sid), k
        assert a["http.response.status_code"] == code
        assert a["url.path"] == f"/status/{code}"
    assert not want


def test_post_with_a_long_header_and_a_split_body(weft_factory, py_service):
    """The kernel ships a request's header without its body (the agent
    reads the header alone), whether the body comes with the header or in
    writes of its own: the span stays whole, and the traceparent after a
    600-byte header line is found."""
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid), "--propagation", "off"])
    tid, sid = f"{random.getrandbits(128) | 1:032x}", f"{random.getrandbits(64) | 1:016x}"
    body = os.urandom(3000)
    with socket.create_connection(("127.0.0.1", svc.port)) as c:
        head = (f"POST /echo HTTP/1.1\r\nHost: h\r\nX-Long: {'q' * 600}\r\n"
                f"traceparent: 00-{tid}-{sid}-01\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        c.sendall(head + body[:1000])  # header and the body's start in one write
        time.sleep(0.05)
        c.sendall(body[1000:])
        assert read_response(c) == 200
        spans = server_spans(w, svc.pid, timeout=2.5)
    assert len(spans) == 1, w.stderr
    s = spans[0]
    assert (s["trace_id"], s["parent_span_id"]) == (tid, sid)
    assert s["name"] == "POST /echo"
    assert s["attributes"]["http.response.status_code"] == 200


def test_python_client_keepalive(weft_factory, py_service):
    svc = py_service()
    urls = [f"GET {svc.url(f'/orders/{i}')}" for i in range(20)]
    p = subprocess.Popen([PY, os.path.join(APPS, "py", "http_client.py"), *urls],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    w = weft_factory(["attach", "-p", str(p.pid), "-p", str(svc.pid)])
    out, _ = p.communicate("go\n", timeout=30)
    ports = {json.loads(l)["local_port"] for l in out.splitlines()}
    assert len(ports) == 1  # one keep-alive connection
    client = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=20)
    server = server_spans(w, svc.pid, count=20)
    assert sorted(s["attributes"]["url.path"] for s in client) == sorted(f"/orders/{i}" for i in range(20))
    assert sorted(s["attributes"]["url.path"] for s in server) == sorted(f"/orders/{i}" for i in range(20))
    for s in server:
        assert s["attributes"]["network.peer.port"] == ports.pop() if False else True
        assert s["attributes"]["client.port"] in ports
    # Each server span lies inside the client span of the same request.
    cs = {s["attributes"]["url.path"]: s for s in client}
    for s in server:
        c = cs[s["attributes"]["url.path"]]
        assert c["start_ns"] <= s["start_ns"] <= s["end_ns"] <= c["end_ns"]


def test_nginx_keepalive_100_requests(weft_factory, nginx):
    w = weft_factory(["attach"] + [a for pid in nginx.pids for a in ("-p", str(pid))])
    urls = [f"GET {nginx.url(f'/k/{i}')}" for i in range(100)]
    p = subprocess.run([PY, os.path.join(APPS, "py", "http_client.py"), *urls],
                       input="go\n", capture_output=True, text=True, timeout=60)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    assert len(lines) == 100 and {l["status"] for l in lines} == {200}
    assert len({l["local_port"] for l in lines}) == 1
    spans = w.wait_spans(lambda s: s["kind"] == "SERVER", count=100)
    paths = sorted(s["attributes"]["url.path"] for s in spans)
    assert paths == sorted(f"/k/{i}" for i in range(100)), f"{len(spans)} spans"
    assert {s["name"] for s in spans} == {"GET /k/*"}
    assert {s["resource"]["process.pid"] for s in spans} == set(nginx.worker_pids)
    assert all(s["attributes"]["http.response.status_code"] == 200 for s in spans)
    # Sequential requests on one connection: spans do not overlap.
    spans.sort(key=lambda s: s["start_ns"])
    for a, b in zip(spans, spans[1:]):
        assert a["end_ns"] <= b["start_ns"]


def test_nginx_static_and_500(weft_factory, nginx):
    w = weft_factory(["attach"] + [a for pid in nginx.pids for a in ("-p", str(pid))])
    assert curl(nginx.url("/index.html"))[0] == 200
    assert curl(nginx.url("/fail/now"))[0] == 500
    assert curl(nginx.url("/missing.html"))[0] == 404
    spans = w.wait_spans(lambda s: s["kind"] == "SERVER", count=3)
    by_path = {s["attributes"]["url.path"]: s for s in spans}
    assert by_path["/index.html"]["attributes"]["http.response.status_code"] == 200
    assert by_path["/fail/now"]["status"] == "ERROR"
    assert by_path["/missing.html"]["attributes"]["http.response.status_code"] == 404


def test_50_concurrent_connections(weft_factory, nginx):
    w = weft_factory(["attach"] + [a for pid in nginx.pids for a in ("-p", str(pid))])
    results = {}

    def one(i):
        results[i] = curl(nginx.url(f"/k/c{i}"))[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results.values()) == {200}
    spans = w.wait_spans(lambda s: s["kind"] == "SERVER", count=50)
    time.sleep(0.5)  # a duplicate would arrive late
    spans = w.spans()
    paths = sorted(s["attributes"]["url.path"] for s in spans)
    assert paths == sorted(f"/k/c{i}" for i in range(50))


def test_python_concurrent_threads(weft_factory, py_service):
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid)])
    threads = [threading.Thread(target=curl, args=(svc.url(f"/t/{i}"),)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = server_spans(w, svc.pid, count=30)
    time.sleep(0.5)
    assert sorted(s["attributes"]["url.path"] for s in w.spans()) == sorted(f"/t/{i}" for i in range(30))


def test_go_server(weft_factory, services, go_httpapp):
    port = free_port()
    svc = services([go_httpapp, "-addr", f"127.0.0.1:{port}"], port)
    w = weft_factory(["attach", "-p", str(svc.pid)])
    status, t0, t1 = curl(svc.url("/hello"))
    assert status == 200
    assert curl(svc.url("/status/503"))[0] == 503
    spans = server_spans(w, svc.pid, count=2)
    by_path = {s["attributes"]["url.path"]: s for s in spans}
    hello = by_path["/hello"]
    assert hello["name"] == "GET /hello"
    assert t0 <= hello["start_ns"] <= hello["end_ns"] <= t1
    assert hello["attributes"]["http.response.status_code"] == 200
    assert hello["attributes"]["server.port"] == port
    assert hello["resource"]["process.executable.name"] == "httpapp"
    assert by_path["/status/503"]["status"] == "ERROR"


def test_raw_tcp_gives_no_spans(weft_factory, services):
    port = free_port()
    svc = services([PY, os.path.join(APPS, "py", "echo_service.py"), str(port)], port)
    w = weft_factory(["attach", "-p", str(svc.pid)])
    payloads = [os.urandom(1000), b"HTTP/1.1 200 OK\r\n\r\n", b"\x00" * 64, b"GETX / HTTP/1.1\r\n\r\n"]
    with socket.create_connection(("127.0.0.1", port)) as s:
        for data in payloads:
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                got += s.recv(65536)
            assert got == data  # traced bytes unchanged
    time.sleep(1.0)
    assert w.spans() == []


def test_server_that_closes_first_keeps_every_span(weft_factory, services):
    """A server's exchange ended by its own close, whose fd the next accept
    reuses before the first client closes (the socket front hears of the
    old socket's end only then): the first exchange is sent at the reuse,
    not lost."""
    port = free_port()
    svc = services([PY, os.path.join(APPS, "py", "close_first_service.py"), str(port)], port)
    w = weft_factory(["attach", "-p", str(svc.pid)])

    def exchange(path):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: x\r\n\r\n")
        got = b""
        while True:
            data = c.recv(65536)
            if not data:
                break
            got += data
        assert got.startswith(b"HTTP/1.0 200 OK") and got.endswith(b"served " + path.encode() + b"\n")
        return c  # left open: the server's socket waits in FIN_WAIT2

    first = exchange("/first")
    second = exchange("/second")
    spans = server_spans(w, svc.pid, lambda s: s["attributes"].get("url.path") == "/first")
    assert len(spans) == 1, w.stderr
    s = spans[0]
    assert s["name"] == "GET /first" and s["attributes"]["http.response.status_code"] == 200
    assert s["attributes"]["network.protocol.version"] == "1.0"
    first.close()
    second.close()
    spans = server_spans(w, svc.pid, count=2)
    assert sorted(s["attributes"]["url.path"] for s in spans) == ["/first", "/second"], w.stderr


def test_unselected_process_gives_no_spans(weft_factory, py_service):
    traced, other = py_service(), py_service()
    w = weft_factory(["attach", "-p", str(traced.pid)])
    curl(other.url("/other"))
    curl(traced.url("/mine"))
    server_spans(w, traced.pid)
    time.sleep(0.5)
    assert [s["attributes"]["url.path"] for s in w.spans()] == ["/mine"]


def test_connections_opened_before_weft(weft_factory, nginx):
    """Keep-alive connections that predate weft are traced for new requests."""
    import http.client

    conns = [http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10) for _ in range(3)]
    for c in conns:
        c.request("GET", "/k/before")
        c.getresponse().read()
    w = weft_factory(["attach"] + [a for pid in nginx.pids for a in ("-p", str(pid))])
    for i, c in enumerate(conns):
        for j in range(2):
            c.request("GET", f"/k/after-{i}-{j}")
            assert c.getresponse().read() == b"ok\n"
    spans = w.wait_spans(lambda s: s["kind"] == "SERVER", count=6)
    for c in conns:
        c.close()
    assert sorted(s["attributes"]["url.path"] for s in spans) == sorted(
        f"/k/after-{i}-{j}" for i in range(3) for j in range(2)
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_detaches_everything(weft_factory, py_service, sig):
    svc = py_service()
    from conftest import foreign_weft_running, weft_programs

    before = len(weft_programs())
    w = weft_factory(["attach", "-p", str(svc.pid)])
    loaded = len(weft_programs()) - before
    curl(svc.url("/x"))
    server_spans(w, svc.pid)
    assert w.stop(sig) == 0
    assert "stopping on signal" in w.stderr
    assert re.search(r"\b1 spans\b", w.stderr), w.stderr
    if not foreign_weft_running():  # another weft's programs would blur the count
        assert loaded > 0
        assert len(weft_programs()) == before


def test_target_crash_ends_attach_cleanly(weft_factory, py_service):
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid)])
    curl(svc.url("/x"))
    server_spans(w, svc.pid)
    svc.proc.kill()
    svc.proc.wait()
    assert w.proc.wait(10) == 0
    w.stop()
    assert "every traced process has exited" in w.stderr


def test_forked_children_are_traced(weft_factory):
    """A process forked by a selected process after attach is traced too."""
    port = free_port()
    shell = subprocess.Popen(
        ["bash", "-c", f"read; {PY} {os.path.join(APPS, 'py', 'http_service.py')} {port}; echo exited"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        w = weft_factory(["attach", "-p", str(shell.pid)])
        shell.stdin.write("go\n")
        shell.stdin.flush()
        wait_port(port)
        curl(f"http://127.0.0.1:{port}/child")
        spans = w.wait_spans(lambda s: s["kind"] == "SERVER")
        assert len(spans) == 1
        assert spans[0]["resource"]["process.pid"] != shell.pid  # the forked python
    finally:
        subprocess.run(["pkill", "-P", str(shell.pid)])
        shell.kill()
        shell.wait(10)


def test_run_traces_everything_but_weft(weft_factory, py_service):
    svc = py_service()
    w = weft_factory(["run"])
    curl(svc.url("/everyone"))
    spans = w.wait_spans(lambda s: s["attributes"].get("url.path") == "/everyone", count=2)
    kinds = sorted(s["kind"] for s in spans)
    assert kinds == ["CLIENT", "SERVER"]  # curl's client span and the server's
    assert all(s["resource"]["process.pid"] != w.proc.pid for s in w.spans())


def test_cli_errors_and_help():
    r = subprocess.run([WEFT, "attach"], capture_output=True, text=True)
    assert r.returncode == 2 and "needs at least one -p PID" in r.stderr
    r = subprocess.run([WEFT, "attach", "-p", "99999999999"], capture_output=True, text=True)
    assert r.returncode == 2 and "--pid" in r.stderr
    r = subprocess.run([WEFT, "attach", "-p", "4000000"], capture_output=True, text=True)
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = subprocess.run([WEFT, "attach", "-p", "1", "-o", "xml"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown output 'xml'" in r.stderr
    r = subprocess.run([WEFT, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "weft attach -p" in r.stdout and "Examples:" in r.stdout
    r = subprocess.run([WEFT, "version"], capture_output=True, text=True)
    assert r.returncode == 0 and re.match(r"weft \d+\.\d+\.\d+", r.stdout)


def test_doctor():
    r = subprocess.run([WEFT, "doctor"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = {l.split()[1]: l.split()[0] for l in r.stdout.splitlines()[1:-1] if l.startswith("  ")}
    for feature in ("BTF", "ring", "syscall", "uprobes", "sockops", "bpf_loop", "tracefs", "bpffs", "cgroup"):
        assert lines.get(feature) == "ok", r.stdout
    assert lines["kprobes"] == "no" and lines["fentry/fexit"] == "no"  # this machine
    assert lines["bpf_probe_write_user"] == "no" and "lockdown: integrity" in r.stdout
    assert r.stdout.strip().endswith("weft can run here.")


def test_console_waterfall(weft_factory, py_service):
    svc = py_service(name="shop")
    w = weft_factory(["attach", "-p", str(svc.pid), "-d", "3"], outputs="console")
    curl(svc.url("/cart/42"))
    assert w.proc.wait(15) == 0
    with open(w.stdout.name) as f:
        out = f.read()
    assert re.search(r"^trace [0-9a-f]{32}  1 span  [\d.]+ ms$", out, re.M), out
    line = next(l for l in out.splitlines() if "GET /cart/*" in l)
    assert line.startswith(" shop ") and "SERVER GET /cart/*" in line and " 200 " in line
    assert max(len(l) for l in out.splitlines()) <= 100


def test_go_keepalive_client_every_request_once(weft_factory, services, go_httpapp):
    """Go's server often reads a request's first byte alone (its background
    read), then the rest; and its writer and reader goroutines may finish an
    exchange on two CPUs at once. Each request must still give one span."""
    port = free_port()
    svc = services([go_httpapp, "-addr", f"127.0.0.1:{port}"], port)
    w = weft_factory(["attach", "-p", str(svc.pid)])
    r = subprocess.run([go_httpapp, "-get", svc.url("/hello"), "-n", "500"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    spans = server_spans(w, svc.pid, count=500, timeout=15)
    time.sleep(0.5)
    spans = [s for s in w.spans() if s["kind"] == "SERVER"]
    assert len(spans) == 500
    assert len({s["span_id"] for s in spans}) == 500
    assert {s["attributes"]["url.path"] for s in spans} == {"/hello"}
    assert len({s["attributes"]["client.port"] for s in spans}) == 1  # one keep-alive connection
    spans.sort(key=lambda s: s["start_ns"])
    assert all(a["end_ns"] <= b["start_ns"] for a, b in zip(spans, spans[1:]))


def _raw_exchange(port, request):
    """Sends request bytes on a fresh connection; returns the response's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return int(got.split(b" ", 2)[1])


def test_malformed_header_keeps_the_span(weft_factory, nginx, services, go_httpapp):
    """A request with malformed header lines (names that are no token, a
    line without a colon) still gives its SERVER span with the status the
    server answered: nginx ignores such names (200), Go refuses the request
    (400). Before, weft's parser dropped the whole exchange."""
    port = free_port()
    svc = services([go_httpapp, "-addr", f"127.0.0.1:{port}"], port)
    w = weft_factory(["attach", "-p", str(svc.pid)] + [a for pid in nginx.pids for a in ("-p", str(pid))])
    # nginx ignores header names with such characters (ignore_invalid_headers;
    # a space in a name is a 400 there); Go answers 400 to a name with a
    # space and to a line without a colon.
    st_nginx = _raw_exchange(nginx.port, b"GET /index.html?m=1 HTTP/1.1\r\nHost: a\r\nBad@Header: x\r\n"
                                         b"X(y): z\r\nAccept: */*\r\n\r\n")
    st_go = _raw_exchange(port, b"GET /hello?m=2 HTTP/1.1\r\nHost: a\r\nBad Header: x\r\nNoColonHere\r\n\r\n")
    assert st_nginx == 200 and st_go == 400
    (n,) = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["attributes"].get("url.query") == "m=1")
    (g,) = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["attributes"].get("url.query") == "m=2")
    assert n["resource"]["process.pid"] in nginx.worker_pids
    assert n["attributes"]["url.path"] == "/index.html"
    assert n["attributes"]["http.response.status_code"] == 200
    assert g["resource"]["process.pid"] == svc.pid
    assert g["attributes"]["url.path"] == "/hello"
    assert g["attributes"]["http.response.status_code"] == 400
