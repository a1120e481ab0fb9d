"""TLS plaintext capture (docs/TLS.md): OpenSSL's SSL_read/SSL_write entry
probes feed the same parsers as plaintext sockets. Real programs: nginx with
ssl (server spans), curl and Python's http.client/urllib (client spans),
certificates made here with openssl."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import APPS, PY, WEFT, free_port, in_cgroup, stop_process, wait_port
from test_go import bpf_stats, weft_prog_runs  # noqa: F401 (fixture)
from test_http import check_ids


class NginxTLS:
    """nginx serving HTTPS (and plain HTTP on a second port)."""

    def __init__(self, tmpdir, cert, cgroup=None):
        self.port, self.plain_port, self.h2_port = free_port(), free_port(), free_port()
        crt, key = cert
        os.makedirs(os.path.join(tmpdir, "www"), exist_ok=True)
        with open(os.path.join(tmpdir, "www", "index.html"), "w") as f:
            f.write("<html>weft tls test</html>\n")
        conf = os.path.join(tmpdir, "nginx.conf")
        temps = "\n".join(f"    {t}_temp_path {tmpdir}/{t};" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
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
    keepalive_requests 10000;
{temps}
    server {{
        listen 127.0.0.1:{self.port} ssl;
        listen 127.0.0.1:{self.plain_port};
        listen 127.0.0.1:{self.h2_port} ssl http2;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location /k/ {{ return 200 "ok\\n"; }}
        location /fail/ {{ return 503 "fail\\n"; }}
        location / {{ root {tmpdir}/www; }}
    }}
}}
""")
        self.proc = subprocess.Popen(in_cgroup(["nginx", "-c", conf, "-p", tmpdir], cgroup), stderr=subprocess.PIPE)
        wait_port(self.port, proc=self.proc)
        self.worker_pids = []
        deadline = time.time() + 5
        while not self.worker_pids and time.time() < deadline:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
            self.worker_pids = [int(p) for p in out.split()]
        assert self.worker_pids, "nginx started no worker"

    @property
    def pids(self):
        return [self.proc.pid] + self.worker_pids

    def url(self, path, tls=True):
        return f"https://127.0.0.1:{self.port}{path}" if tls else f"http://127.0.0.1:{self.plain_port}{path}"

    def h2_url(self, path):
        return f"https://127.0.0.1:{self.h2_port}{path}"

    def stop(self):
        stop_process(self.proc, signal.SIGQUIT)


@pytest.fixture
def nginx_tls(tmp_path, cert):
    n = NginxTLS(str(tmp_path), cert)
    yield n
    n.stop()


def attach_args(pids):
    return ["attach"] + [a for pid in pids for a in ("-p", str(pid))]


def probe_links(weft_pid, prog_name):
    """The link types (the kernel's names in fdinfo) of the BPF links the
    weft process holds for its program prog_name."""
    progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout)
    ids = {p["id"] for p in progs if p.get("name") == prog_name}
    kinds = []
    for fd in os.listdir(f"/proc/{weft_pid}/fdinfo"):
        try:
            with open(f"/proc/{weft_pid}/fdinfo/{fd}") as f:
                info = f.read()
        except OSError:
            continue
        kind, prog = re.search(r"^link_type:\s+(\S+)", info, re.M), re.search(r"^prog_id:\s+(\d+)", info, re.M)
        if kind and prog and int(prog.group(1)) in ids:
            kinds.append(kind.group(1))
    return sorted(kinds)


@pytest.mark.parametrize("links", ["uprobe_multi", "perf"])
def test_nginx_https_server_spans(weft_factory, nginx_tls, links):
    """nginx's HTTPS requests as server spans; the probes of each process are
    one uprobe_multi link per program (this kernel), or, where the kernel
    has none (before 6.6; forced by WEFT_UPROBE_MULTI=0), one perf-event
    link per probe: both give the same spans."""
    env = {k: v for k, v in os.environ.items() if k != "WEFT_UPROBE_MULTI"}
    if links == "perf":
        env["WEFT_UPROBE_MULTI"] = "0"
    w = weft_factory(attach_args(nginx_tls.pids), env=env)
    entries, rets = probe_links(w.proc.pid, "probe_ssl_entry"), probe_links(w.proc.pid, "probe_ssl_read_ret")
    n = len(nginx_tls.pids)  # master and worker: probes each
    if links == "perf":  # SSL_read, SSL_read_ex, SSL_write, SSL_write_ex, SSL_set_fd; the reads' returns
        assert (entries, rets) == (["perf"] * 5 * n, ["perf"] * 2 * n)
    else:
        assert (entries, rets) == (["uprobe_multi"] * n, ["uretprobe_multi"] * n)
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    t0 = time.time_ns()
    out = ""
    for url, extra in ((nginx_tls.url("/k/1?x=1"), []), (nginx_tls.url("/fail/2"), ["-H", f"traceparent: {tp}"])):
        out += subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-A", "weft-tls/1.0", *extra,
                               url], capture_output=True, text=True).stdout
    t1 = time.time_ns()
    assert out == "200503"
    spans = w.wait_spans(lambda s: s["kind"] == "SERVER", count=2)
    assert len(spans) == 2, w.stderr
    by_path = {s["attributes"]["url.path"]: s for s in spans}
    ok, fail = by_path["/k/1"], by_path["/fail/2"]
    for s in spans:
        check_ids(s)
        assert s["resource"]["process.pid"] == nginx_tls.worker_pids[0]
        assert t0 <= s["start_ns"] <= s["end_ns"] <= t1
        a = s["attributes"]
        assert a["url.scheme"] == "https"
        assert a["http.request.method"] == "GET"
        assert a["server.port"] == nginx_tls.port
        assert a["network.peer.address"] == "127.0.0.1"
        assert a["user_agent.original"] == "weft-tls/1.0"
        assert a["network.protocol.version"] == "1.1"
    assert ok["name"] == "GET /k/*" or ok["name"].startswith("GET /k")
    assert ok["attributes"]["http.response.status_code"] == 200 and ok["status"] == "UNSET"
    assert ok["attributes"]["url.query"] == "x=1"
    assert ok["parent_span_id"] == ""
    # A traceparent inside TLS is read like a plaintext one.
    assert fail["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert fail["parent_span_id"] == "b7ad6b7169203331"
    assert fail["attributes"]["http.response.status_code"] == 503 and fail["status"] == "ERROR"
    assert ok["end_ns"] <= fail["start_ns"]


def test_nginx_https_keepalive_and_plain_side_by_side(weft_factory, nginx_tls):
    """50 requests over one TLS connection and 5 over plain HTTP on the same
    worker: one span each, https only for the TLS ones."""
    w = weft_factory(attach_args(nginx_tls.pids))
    urls = [f"GET {nginx_tls.url(f'/k/{i}')}" for i in range(50)]
    urls += [f"GET {nginx_tls.url(f'/k/p{i}', tls=False)}" for i in range(5)]
    p = subprocess.run([PY, os.path.join(APPS, "py", "http_client.py"), *urls],
                       input="go\n", capture_output=True, text=True, timeout=60)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    assert len(lines) == 55 and {l["status"] for l in lines} == {200}, p.stderr
    spans = w.wait_spans(lambda s: s["kind"] == "SERVER", count=55)
    paths = sorted(s["attributes"]["url.path"] for s in spans)
    assert paths == sorted([f"/k/{i}" for i in range(50)] + [f"/k/p{i}" for i in range(5)]), w.stderr
    for s in spans:
        https = not s["attributes"]["url.path"].startswith("/k/p")
        assert s["attributes"]["url.scheme"] == ("https" if https else "http")
        assert s["attributes"]["http.response.status_code"] == 200


def test_curl_https_client_spans(weft_factory, nginx_tls):
    # curl is short-lived: paused in a shell while weft attaches, then exec'd
    # (libssl is mapped after weft attached: probed by file, for this pid).
    p = subprocess.Popen(
        ["bash", "-c", f"read; exec curl -sk -o /dev/null {nginx_tls.url('/fail/x')} -o /dev/null "
                       f"{nginx_tls.url('/index.html')}"],
        stdin=subprocess.PIPE, text=True,
    )
    w = weft_factory(["attach", "-p", str(p.pid)])
    t0 = time.time_ns()
    p.stdin.write("go\n")
    p.stdin.close()
    assert p.wait(10) == 0
    t1 = time.time_ns()
    spans = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=2)
    assert len(spans) == 2, w.stderr
    by_path = {s["attributes"]["url.path"]: s for s in spans}
    fail, page = by_path["/fail/x"], by_path["/index.html"]
    for s in spans:
        check_ids(s)
        assert s["resource"]["process.executable.name"] == "curl"
        assert t0 <= s["start_ns"] <= s["end_ns"] <= t1
        a = s["attributes"]
        assert a["url.scheme"] == "https"
        assert a["server.address"] == "127.0.0.1" and a["server.port"] == nginx_tls.port
        assert a["network.peer.port"] == nginx_tls.port
    assert fail["status"] == "ERROR" and fail["attributes"]["http.response.status_code"] == 503
    assert page["status"] == "UNSET" and page["attributes"]["http.response.status_code"] == 200
    assert page["attributes"]["url.full"] == f"https://127.0.0.1:{nginx_tls.port}/index.html"
    assert fail["end_ns"] <= page["start_ns"]


def test_python_https_clients_and_nginx_join_one_trace(weft_factory, nginx_tls):
    """Python's http.client (keep-alive) and urllib over TLS, both sides
    traced: client spans from the Python process, server spans from nginx."""
    urls = [f"GET {nginx_tls.url(f'/k/{i}')}" for i in range(5)] + [f"URLOPEN {nginx_tls.url('/index.html')}"]
    p = subprocess.Popen([PY, os.path.join(APPS, "py", "http_client.py"), *urls],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    w = weft_factory(attach_args([p.pid] + nginx_tls.pids))
    out, _ = p.communicate("go\n", timeout=30)
    assert [json.loads(l)["status"] for l in out.splitlines()] == [200] * 6
    client = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=6)
    server = w.wait_spans(lambda s: s["kind"] == "SERVER", count=6)
    want = sorted([f"/k/{i}" for i in range(5)] + ["/index.html"])
    assert sorted(s["attributes"]["url.path"] for s in client) == want, w.stderr
    assert sorted(s["attributes"]["url.path"] for s in server) == want, w.stderr
    cs = {s["attributes"]["url.path"]: s for s in client}
    for s in server:
        c = cs[s["attributes"]["url.path"]]
        assert c["resource"]["process.pid"] == p.pid
        assert c["attributes"]["url.scheme"] == "https" and s["attributes"]["url.scheme"] == "https"
        assert c["attributes"]["http.response.status_code"] == 200
        assert c["start_ns"] <= s["start_ns"] <= s["end_ns"] <= c["end_ns"]


# ------------------------------------------------- PostgreSQL inside TLS


@pytest.fixture(scope="module")
def pg_tls(cert):
    """A PostgreSQL of this module's own (the session's stays plaintext for
    the other tests, whose clients would otherwise prefer TLS) with ssl=on."""
    import pwd
    import shutil

    from db_servers import Postgres, _session_server

    gen = _session_server(Postgres)
    pg = next(gen)
    pw = pwd.getpwnam("postgres")
    for name, src in (("server.crt", cert[0]), ("server.key", cert[1])):
        dst = os.path.join(pg.data, name)
        shutil.copy(src, dst)
        os.chown(dst, pw.pw_uid, pw.pw_gid)
        os.chmod(dst, 0o600)
    pg.sql("ALTER SYSTEM SET ssl = on")
    pg.sql("SELECT pg_reload_conf()")
    deadline = time.time() + 10
    while pg.sql("SHOW ssl").strip() != "on" and time.time() < deadline:
        time.sleep(0.05)
    yield pg
    next(gen, None)


PG_TLS = """
import sys, psycopg2
sys.stdin.readline()
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
assert cur.fetchone()[0] is True, "not TLS"
cur.execute("INSERT INTO notes (id, body) VALUES (%s, %s)", (1, "secret"))
conn.commit()
cur.execute("SELECT body FROM notes WHERE id = %s", (1,))
print(cur.fetchone()[0])
conn.close()
"""


def test_psycopg2_sslmode_require_spans(weft_factory, pg_tls):
    pg = pg_tls
    db = pg.create_db("t_tls")
    pg.sql("CREATE TABLE notes (id int PRIMARY KEY, body text)", db)
    dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname={db} sslmode=require"
    p = subprocess.Popen([PY, "-c", PG_TLS, dsn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    w = weft_factory(["attach", "-p", str(p.pid)])
    out, err = p.communicate("go\n", timeout=30)
    assert p.returncode == 0 and out.strip() == "secret", err
    want = ["BEGIN", "SELECT pg_stat_ssl", "INSERT notes", "COMMIT", "BEGIN", "SELECT notes"]
    spans = w.wait_spans(lambda s: s["attributes"].get("db.system.name") == "postgresql", count=len(want))
    spans.sort(key=lambda s: s["start_ns"])
    assert [s["name"] for s in spans] == want, (w.stderr, spans)
    for s in spans:
        assert s["kind"] == "CLIENT" and s["resource"]["process.pid"] == p.pid
        a = s["attributes"]
        assert a["server.port"] == pg.port and a["db.namespace"] == db
        assert s["status"] == "UNSET"
    assert spans[2]["attributes"]["db.query.text"] == "INSERT INTO notes (id, body) VALUES (?, ?)"
    # The SSLRequest and the handshake before TLS began are exchanges the
    # parser refuses (counted, no span): docs/TLS.md.


def test_http2_over_tls_curl_and_nginx(weft_factory, nginx_tls):
    """HTTP/2 negotiated by ALPN: the plaintext of both ends reaches the
    HTTP/2 forwarding program (tail call from the TLS probes, or from the
    capture front for a write whose socket was learnt inside the call).
    curl makes three requests on one connection; both sides traced."""
    urls = [nginx_tls.h2_url("/k/a?q=1"), nginx_tls.h2_url("/fail/b"), nginx_tls.h2_url("/index.html")]
    args = ["curl", "-sk", "--http2", "-A", "weft-h2/1.0", "-w", "%{http_version} %{http_code}\\n"]
    for u in urls:
        args += ["-o", "/dev/null", u]
    p = subprocess.Popen(["bash", "-c", "read; exec " + " ".join(f"'{a}'" for a in args)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    w = weft_factory(attach_args([p.pid] + nginx_tls.pids))
    t0 = time.time_ns()
    out, _ = p.communicate("go\n", timeout=20)
    t1 = time.time_ns()
    assert out.split("\n")[:3] == ["2 200", "2 503", "2 200"], out
    client = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=3)
    server = w.wait_spans(lambda s: s["kind"] == "SERVER", count=3)
    assert len(client) == 3 and len(server) == 3, w.stderr
    want = {"/k/a": 200, "/fail/b": 503, "/index.html": 200}
    for side, spans, pid in (("client", client, p.pid), ("server", server, nginx_tls.worker_pids[0])):
        by_path = {s["attributes"]["url.path"]: s for s in spans}
        assert set(by_path) == set(want), (side, w.stderr)
        for path, code in want.items():
            s = by_path[path]
            check_ids(s)
            a = s["attributes"]
            assert s["resource"]["process.pid"] == pid
            assert t0 <= s["start_ns"] <= s["end_ns"] <= t1
            assert a["network.protocol.version"] == "2"
            assert a["url.scheme"] == "https"
            assert a["http.request.method"] == "GET"
            assert a["http.response.status_code"] == code
            assert a["server.port"] == nginx_tls.h2_port
            assert a["user_agent.original"] == "weft-h2/1.0"
            assert s["status"] == ("ERROR" if code >= 500 else "UNSET")
            assert s["name"].startswith("GET /")
    cs = {s["attributes"]["url.path"]: s for s in client}
    for s in server:
        c = cs[s["attributes"]["url.path"]]
        assert c["start_ns"] <= s["start_ns"] and s["end_ns"] <= c["end_ns"] + 1_000_000


def test_gnutls_process_is_named_not_probed(weft_factory, tmp_path):
    """Negative: wget links GnuTLS, which weft does not read. A wget waiting
    in its TLS handshake: `weft inspect` and the attach log name the library
    and say its TLS connections get no spans; weft traces it anyway."""
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    p = subprocess.Popen(["wget", "-q", "-O", "/dev/null", "--no-check-certificate", "-t", "1", "-T", "20",
                          f"https://127.0.0.1:{port}/x"])
    try:
        conn, _ = srv.accept()
        conn.recv(1)  # its ClientHello: GnuTLS is mapped by now
        out = subprocess.run([WEFT, "inspect", str(p.pid)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"other +GnuTLS \(/usr/lib/x86_64-linux-gnu/libgnutls\.so\.30[.0-9]*\): not probed: "
                         r"its TLS connections get no spans", out), out
        w = weft_factory(["attach", "-p", str(p.pid)])
        assert re.search(rf"tls: pid {p.pid}: GnuTLS \(\S*libgnutls\.so\.30[.0-9]*\): not probed", w.stderr), w.stderr
        conn.close()
    finally:
        p.kill()
        p.wait()
        srv.close()


def test_untraced_processes_never_trap(weft_factory, nginx_tls, bpf_stats):
    """TLS traffic of processes weft does not trace never runs a TLS probe:
    uprobes are set per traced process. nginx is traced, curl is not; then
    the reverse check: a traced curl's probes run."""
    w = weft_factory(attach_args(nginx_tls.pids))
    before = weft_prog_runs(w.proc.pid)
    for _ in range(5):
        assert subprocess.run(["curl", "-sk", "-o", "/dev/null", nginx_tls.url("/k/u")]).returncode == 0
    w.wait_spans(lambda s: s["kind"] == "SERVER", count=5)
    after = weft_prog_runs(w.proc.pid)
    ssl_runs = {k: after.get(k, 0) - before.get(k, 0) for k in after if k.startswith("probe_ssl")}
    # nginx: per request SSL_read entries (each with its return) and one
    # SSL_write, SSL_set_fd once per connection (one entry program for all,
    # bpf/uprobes/tls.bpf.c). Entries beyond the reads are exactly those 10:
    # curl's SSL_write_ex (untraced) never ran.
    reads = ssl_runs.get("probe_ssl_read_ret", 0)
    assert reads >= 5, ssl_runs
    assert ssl_runs.get("probe_ssl_entry", 0) == reads + 5 + 5, ssl_runs
    assert not [s for s in w.spans() if s["kind"] == "CLIENT"]


def test_python_to_nginx_joins_across_tls(weft_factory, test_cgroup, tmp_path, cert):
    """--propagation's default (headers,tcp) in a cgroup of the test's own:
    Python's http.client over TLS -> nginx, both traced: each nginx server
    span is the child of its Python client span (the ids crossed in a TCP
    option: nginx's worker answered the client's hello)."""
    ngx = NginxTLS(str(tmp_path), cert, cgroup=test_cgroup)
    try:
        urls = [f"GET {ngx.url(f'/k/{i}')}" for i in range(4)]
        p = subprocess.Popen(in_cgroup([PY, os.path.join(APPS, "py", "http_client.py"), *urls], test_cgroup),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        w = weft_factory(["attach", "--cgroup", test_cgroup] + attach_args([p.pid] + ngx.pids)[1:])
        out, _ = p.communicate("go\n", timeout=30)
        assert [json.loads(l)["status"] for l in out.splitlines()] == [200] * 4
        client = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=4)
        server = w.wait_spans(lambda s: s["kind"] == "SERVER", count=4)
        cs = {s["attributes"]["url.path"]: s for s in client}
        assert len(server) == 4 and len(cs) == 4, w.stderr
        for s in server:
            c = cs[s["attributes"]["url.path"]]
            assert s["resource"]["process.pid"] == ngx.worker_pids[0]
            assert s["trace_id"] == c["trace_id"] and s["parent_span_id"] == c["span_id"], w.stderr
    finally:
        ngx.stop()
