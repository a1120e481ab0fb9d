"""An exchange is written into its connection's slot in the kernel's txns
table (bpf/capture/exchange.bpf.h): the slot is made at the connection's
first exchange and stays, idle, between exchanges and for the next socket
on the same fd; it goes with the process. Slots are kept only while the
table holds fewer than TXN_KEEP_MAX entries, so that a process with more
connections than the table has room for loses no exchange."""
import re
import subprocess
import time

from conftest import PY, Weft, dump_int, weft_map_dumps

TXN_PHASE_IDLE = 2
TXN_FREE = 3
OFF_PID = 4       # struct txn_event (bpf/abi/exchange.h)
OFF_PHASE = 138
OFF_CLAIMED = 180
OFF_CONN_SNAP = 187
ROLE_SERVER = 1
TXN_KEEP_MAX = 4096


def txn_values(weft_pid, pid, fields):
    """fields(value) of each txns entry of process pid."""
    out = []
    for _, entries in weft_map_dumps(weft_pid, lambda info: info.get("name") == "txns"):
        for e in entries:
            if dump_int(e["value"], OFF_PID) == pid:
                out.append(fields(e["value"]))
    return out


def slots_of(weft_pid, pid):
    """(phase, claimed) of each txns entry of process pid."""
    return txn_values(weft_pid, pid, lambda v: (int(v[OFF_PHASE], 16), dump_int(v, OFF_CLAIMED)))


def snaps_of(weft_pid, pid):
    """(phase, conn_snap) of each txns entry of process pid."""
    return txn_values(weft_pid, pid, lambda v: (int(v[OFF_PHASE], 16), int(v[OFF_CONN_SNAP], 16)))


def txn_entries(weft_pid):
    """The kernel's count of txns entries (txn_counts[TXN_COUNT_ENTRIES])."""
    for _, entries in weft_map_dumps(weft_pid, lambda info: info.get("name") == "txn_counts"):
        return dump_int(entries[0]["value"], 0, 8)
    return None


# Keep-alive requests on one connection, then on a second one (the same fd
# number again), each step told on stdout and started by a line on stdin.
TWO_CONNECTIONS = r"""
import socket, sys
port = int(sys.argv[1])
def get(c, path):
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += c.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
    while len(body) < n:
        body += c.recv(65536)
sys.stdin.readline()
c = socket.create_connection(("127.0.0.1", port))
for i in range(3):
    get(c, f"/k/slot/a{i}")
print("first", c.fileno(), flush=True)
sys.stdin.readline()
c.close()
c = socket.create_connection(("127.0.0.1", port))
for i in range(2):
    get(c, f"/k/slot/b{i}")
print("second", c.fileno(), flush=True)
sys.stdin.readline()
"""


def kill_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def wait_slots(w, pid, want, timeout=5):
    deadline = time.time() + timeout
    while True:
        got = slots_of(w.proc.pid, pid)
        if got == want or time.time() > deadline:
            return got
        time.sleep(0.1)


def test_slot_serves_every_exchange_of_a_connection_and_the_next_socket(nginx, tmp_path):
    (tmp_path / "client.py").write_text(TWO_CONNECTIONS)
    cl = subprocess.Popen([PY, str(tmp_path / "client.py"), str(nginx.port)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
    keeper = subprocess.Popen(["sleep", "600"])  # weft stays after the client exits
    w = Weft(["attach", "-p", str(cl.pid), "-p", str(keeper.pid)]).wait_ready()
    try:
        assert slots_of(w.proc.pid, cl.pid) == []
        cl.stdin.write("go\n")
        cl.stdin.flush()
        first = cl.stdout.readline().split()
        # three exchanges on the connection: one slot, idle and free now
        assert wait_slots(w, cl.pid, [(TXN_PHASE_IDLE, TXN_FREE)]) == [(TXN_PHASE_IDLE, TXN_FREE)]
        cl.stdin.write("go\n")
        cl.stdin.flush()
        second = cl.stdout.readline().split()
        assert first[1] == second[1], (first, second)  # the fd number came back
        # the second socket on that fd used the same slot
        assert wait_slots(w, cl.pid, [(TXN_PHASE_IDLE, TXN_FREE)]) == [(TXN_PHASE_IDLE, TXN_FREE)]
        spans = w.wait_spans(lambda s: s["attributes"].get("url.path", "").startswith("/k/slot/"), count=5)
        paths = sorted(s["attributes"]["url.path"] for s in spans)
        assert paths == ["/k/slot/a0", "/k/slot/a1", "/k/slot/a2", "/k/slot/b0", "/k/slot/b1"], paths
        for s in spans:
            assert s["kind"] == "CLIENT" and s["attributes"]["http.response.status_code"] == 200, s
            assert s["resource"]["process.pid"] == cl.pid, s
        # two connections, each opened after the last one's response: no
        # exchange overlaps another on the connection
        ends = sorted((s["start_ns"], s["end_ns"]) for s in spans)
        assert all(a[1] <= b[0] for a, b in zip(ends, ends[1:])), ends
        cl.stdin.write("go\n")
        cl.stdin.flush()
        assert cl.wait(10) == 0
        # the slot goes with the process
        assert wait_slots(w, cl.pid, []) == []
        assert w.stop() == 0
    finally:
        kill_all((cl, keeper))
        w.close()


# N connections kept open, one request each, then closed together.
MANY_CONNECTIONS = r"""
import resource, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
sys.stdin.readline()
conns = []
for i in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(f"GET /hello?i={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while not buf.endswith(b"hello\n"):
        buf += c.recv(65536)
    conns.append(c)
print("done", flush=True)
sys.stdin.readline()
"""


def test_more_connections_than_the_table_holds_lose_no_exchange(go_httpapp, tmp_path):
    """9,000 connections of one process, each with an exchange, all open at
    once: more than txns' 8,192 entries. Slots stop being kept at half the
    table, so every exchange has room: 9,000 spans, nothing counted lost."""
    n = 9000
    srv = subprocess.Popen([go_httpapp, "-addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)", srv.stdout.readline())
        assert m
        (tmp_path / "client.py").write_text(MANY_CONNECTIONS)
        cl = subprocess.Popen([PY, str(tmp_path / "client.py"), m.group(1), str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
        keeper = subprocess.Popen(["sleep", "600"])
        w = Weft(["attach", "-p", str(cl.pid), "-p", str(keeper.pid)]).wait_ready()
        try:
            base = txn_entries(w.proc.pid)
            cl.stdin.write("go\n")
            cl.stdin.flush()
            assert cl.stdout.readline().strip() == "done"
            spans = w.wait_spans(lambda s: s["attributes"].get("url.path") == "/hello", count=n, timeout=30)
            assert len(spans) == n
            assert {s["attributes"]["url.full"].rsplit("?i=", 1)[1] for s in spans} == {str(i) for i in range(n)}
            # the kernel's count of entries stopped near the bound (other
            # traced processes' slots and the agent's recount aside)
            held = txn_entries(w.proc.pid)
            assert TXN_KEEP_MAX - 1 <= held <= TXN_KEEP_MAX + (base or 0) + 64, (base, held)
            cl.stdin.write("go\n")
            cl.stdin.flush()
            assert cl.wait(30) == 0
            assert w.stop() == 0
            assert re.search(r"dropped: 0 ring buffer full, 0 connection table full, 0 exchange table full",
                             w.stderr), w.stderr[-2000:]
        finally:
            kill_all((cl, keeper))
            w.close()
    finally:
        srv.kill()
        srv.wait()


# A server whose response has no length (it ends when the server reads
# again) answers one request, then waits for stdin before its next read.
# One connection's server: prints its port, accepts, and reads requests
# whole header by whole header with request().
ONE_CONNECTION_SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
def request():
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += c.recv(65536)
    return buf
"""

NO_LENGTH_SERVER = ONE_CONNECTION_SERVER + r"""
request()
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreamed, no length")
print("sent", flush=True)
sys.stdin.readline()
c.setblocking(False)
try:
    c.recv(65536)  # nothing yet: EAGAIN, the server's next read
except BlockingIOError:
    pass
print("read", flush=True)
sys.stdin.readline()
"""


def open_responses(weft_pid):
    """The kernel's count of open server responses (txn_counts[TXN_COUNT_OPEN])."""
    for _, entries in weft_map_dumps(weft_pid, lambda info: info.get("name") == "txn_counts"):
        return dump_int(entries[8]["value"], 0, 8)
    return None


def test_open_server_response_counted_until_the_next_read(tmp_path):
    """A server read that returns nothing looks for an exchange to end only
    while some server response waits for its end: one without a length is
    counted from its write to the server's next read, which sends it."""
    (tmp_path / "server.py").write_text(NO_LENGTH_SERVER)
    srv = subprocess.Popen([PY, str(tmp_path / "server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    port = int(srv.stdout.readline())
    keeper = subprocess.Popen(["sleep", "600"])
    w = Weft(["attach", "-p", str(srv.pid), "-p", str(keeper.pid)]).wait_ready()
    cl = None
    try:
        assert open_responses(w.proc.pid) == 0
        cl = subprocess.Popen([PY, "-c", f"""
import socket, sys
c = socket.create_connection(("127.0.0.1", {port}))
c.sendall(b"GET /k/open HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
print(c.recv(65536)[:12].decode(), flush=True)
sys.stdin.readline()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline().strip() == "sent"
        assert cl.stdout.readline().strip() == "HTTP/1.1 200"
        # answered, not ended: counted open, no span yet
        deadline = time.time() + 5
        while open_responses(w.proc.pid) != 1 and time.time() < deadline:
            time.sleep(0.1)
        assert open_responses(w.proc.pid) == 1
        assert not [s for s in w.spans() if s["attributes"].get("url.path") == "/k/open"]
        srv.stdin.write("go\n")
        srv.stdin.flush()
        assert srv.stdout.readline().strip() == "read"
        (s,) = w.wait_spans(lambda s: s["attributes"].get("url.path") == "/k/open")
        assert s["kind"] == "SERVER" and s["attributes"]["http.response.status_code"] == 200, s
        assert open_responses(w.proc.pid) == 0
        assert w.stop() == 0
    finally:
        srv.stdin.close()
        kill_all([p for p in (cl, srv, keeper) if p])
        w.close()


# A single-threaded keep-alive HTTP/1.1 server: one connection at a time,
# so each accepted socket gets the same fd number.
KEEPALIVE_SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"ok " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def test_keepalive_requests_start_from_the_slot_and_a_new_socket_does_not(tmp_path):
    """From a connection's third exchange on, the next request starts from
    what the slot keeps of its connection (conn_snap: 1 + the role), not
    from the conns entry; the connection's close clears it, and the next
    socket on the same fd is recorded anew: each span has its own
    connection's peer port."""
    import http.client
    (tmp_path / "server.py").write_text(KEEPALIVE_SERVER)
    srv = subprocess.Popen([PY, str(tmp_path / "server.py")], stdout=subprocess.PIPE, text=True)
    w = None
    try:
        port = int(srv.stdout.readline())
        w = Weft(["attach", "-p", str(srv.pid)]).wait_ready()
        ports = {}
        for name in ("a", "b"):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for i in range(4):
                c.request("GET", f"/k/snap/{name}{i}")
                r = c.getresponse()
                assert r.status == 200 and r.read() == f"ok /k/snap/{name}{i}".encode()
            ports[name] = c.sock.getsockname()[1]
            # the slot keeps the connection: idle, snapshot of a server's
            deadline = time.time() + 5
            while snaps_of(w.proc.pid, srv.pid) != [(TXN_PHASE_IDLE, 1 + ROLE_SERVER)] and time.time() < deadline:
                time.sleep(0.1)
            assert snaps_of(w.proc.pid, srv.pid) == [(TXN_PHASE_IDLE, 1 + ROLE_SERVER)]
            c.close()
            # the server sees the close: the socket's snapshot goes with it
            deadline = time.time() + 5
            while snaps_of(w.proc.pid, srv.pid) != [(TXN_PHASE_IDLE, 0)] and time.time() < deadline:
                time.sleep(0.1)
            assert snaps_of(w.proc.pid, srv.pid) == [(TXN_PHASE_IDLE, 0)]
        assert ports["a"] != ports["b"]
        spans = w.wait_spans(lambda s: s["attributes"].get("url.path", "").startswith("/k/snap/"), count=8)
        assert len(spans) == 8
        for s in spans:
            name = s["attributes"]["url.path"][len("/k/snap/")]
            assert s["kind"] == "SERVER" and s["attributes"]["http.response.status_code"] == 200, s
            assert s["attributes"]["client.port"] == ports[name], (s["attributes"], ports)
            assert s["attributes"]["server.port"] == port, s["attributes"]
        assert w.stop() == 0
    finally:
        kill_all((srv,))
        if w:
            w.close()


# Two keep-alive exchanges, then an upgrade to another protocol whose bytes
# happen to read like HTTP/1 requests: after the 101, nothing on the
# connection is HTTP/1 any more.
UPGRADE_SERVER = ONE_CONNECTION_SERVER + r"""
for i in range(2):
    request()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
request()
c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n")
for i in range(3):
    request()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
print("done", flush=True)
sys.stdin.readline()
"""


def test_upgraded_connection_leaves_http_even_from_its_slot(tmp_path):
    """A connection upgraded (101) on a later exchange, when its slot already
    starts requests without the conns entry: the bytes after the upgrade are
    the other protocol's, even when they read like HTTP/1 requests."""
    import socket
    (tmp_path / "server.py").write_text(UPGRADE_SERVER)
    srv = subprocess.Popen([PY, str(tmp_path / "server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    w = None
    try:
        port = int(srv.stdout.readline())
        w = Weft(["attach", "-p", str(srv.pid)]).wait_ready()
        c = socket.create_connection(("127.0.0.1", port))
        paths = ["/k/up/a", "/k/up/b", "/k/up/switch", "/k/up/after0", "/k/up/after1", "/k/up/after2"]
        for p in paths:
            extra = "Upgrade: other\r\nConnection: Upgrade\r\n" if p.endswith("switch") else ""
            c.sendall(f"GET {p} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
            buf = b""
            while not (buf.endswith(b"ok") or buf.endswith(b"Upgrade\r\n\r\n")):
                buf += c.recv(65536)
        assert srv.stdout.readline().strip() == "done"
        spans = w.wait_spans(lambda s: s["attributes"].get("url.path", "").startswith("/k/up/"), count=3)
        time.sleep(0.5)  # the bytes after the upgrade had their chance
        spans = [s for s in w.spans() if s["attributes"].get("url.path", "").startswith("/k/up/")]
        got = sorted((s["attributes"]["url.path"], s["attributes"]["http.response.status_code"]) for s in spans)
        assert got == [("/k/up/a", 200), ("/k/up/b", 200), ("/k/up/switch", 101)], got
        c.close()
        assert w.stop() == 0
    finally:
        kill_all((srv,))
        if w:
            w.close()
