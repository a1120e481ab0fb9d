"""Shared fixtures for end-to-end tests: real processes, real eBPF.

Run as root with Debian's python: /usr/bin/python3 -m pytest tests/e2e
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WEFT = os.path.join(ROOT, "build", "weft")
APPS = os.path.join(ROOT, "tests", "apps")
PY = "/usr/bin/python3"

# Program names weft loads: none may remain after a test.
WEFT_PROG_NAMES = re.compile(
    r"\bname (sys_enter_\w+|sys_exit_\w+|task_newtask|sched_process_\w+|probe_\w+|weft_\w+|sockops_\w+|sk_msg_\w+)\b"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port}")


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Stops proc (if any and running) with sig, killing it after timeout."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def weft_programs():
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
    return WEFT_PROG_NAMES.findall(out)


def cgroup_attachments():
    out = subprocess.run(["bpftool", "cgroup", "tree"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if re.search(r"sock_ops|sk_msg|cgroup_", l)]


def weft_map_ids(pid):
    """Ids of the BPF maps the process pid holds (its fds)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                m = re.search(r"^map_id:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


HASH_MAP_TYPES = ("hash", "lru_hash", "percpu_hash", "lru_percpu_hash")


def weft_map_dumps(pid, keep):
    """(info, entries) of each BPF map the process pid holds whose `bpftool
    map show` info keep(info) accepts, its entries from `bpftool map dump`."""
    for i in sorted(weft_map_ids(pid)):
        info = json.loads(subprocess.run(["bpftool", "map", "show", "id", str(i), "--json"],
                                         capture_output=True, text=True).stdout or "{}")
        if not keep(info):
            continue
        dump = subprocess.run(["bpftool", "map", "dump", "id", str(i), "--json"], capture_output=True, text=True)
        yield info, json.loads(dump.stdout or "[]")


def dump_int(b, off=0, n=4):
    """The little-endian integer at bytes off..off+n of a key or value as
    `bpftool map dump --json` lists it (hex strings, "0x1f"); the first 4
    bytes of a key are the tgid in weft's maps keyed by process."""
    return int.from_bytes(bytes(int(x, 16) for x in b[off:off + n]), "little")


def map_entries(pid):
    """{name: entries} of every hash map the weft process pid holds (arrays
    are always full and ring buffers cannot be dumped: the hash maps are
    the ones that fill and must empty again)."""
    occ = {}
    for info, entries in weft_map_dumps(pid, lambda info: info.get("type") in HASH_MAP_TYPES):
        name = info.get("name", str(info.get("id")))
        occ[name] = occ.get(name, 0) + len(entries)
    return occ


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


OUR_WEFTS = set()


def foreign_weft_running():
    """Another weft (a developer's, not this test session's) is running."""
    out = subprocess.run(["pgrep", "-x", "weft"], capture_output=True, text=True).stdout
    return any(int(p) not in OUR_WEFTS for p in out.split())


class Weft:
    """A running `weft attach|run ... -o json`, its spans read from stdout;
    prefix: a command that ends by exec'ing weft (same pid), e.g. one setting
    up a mount namespace."""

    def __init__(self, args, env=None, outputs="json", prefix=None):
        self.stdout = tempfile.NamedTemporaryFile(prefix="weft-spans-", suffix=".jsonl", delete=False)
        self.stderr_lines = []
        self._ready = threading.Event()
        full = (prefix or []) + [WEFT] + args
        if args and args[0] in ("attach", "run") and "--cgroup" not in args and "--propagation" not in args:
            # Tests attach sockops only to a cgroup they created, never the root.
            full += ["--propagation", "off"]
        if outputs:
            full += ["-o", outputs]
        self.proc = subprocess.Popen(
            full, stdout=self.stdout, stderr=subprocess.PIPE, text=True, env=env or os.environ.copy()
        )
        OUR_WEFTS.add(self.proc.pid)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))
            if "ready:" in line:
                self._ready.set()
        self._ready.set()

    @property
    def stderr(self):
        return "\n".join(self.stderr_lines)

    def wait_ready(self, timeout=60):
        if not self._ready.wait(timeout) or self.proc.poll() is not None and "ready:" not in self.stderr:
            raise RuntimeError(f"weft did not become ready:\n{self.stderr}")
        if "ready:" not in self.stderr:
            raise RuntimeError(f"weft exited before ready:\n{self.stderr}")
        return self

    def spans(self):
        with open(self.stdout.name) as f:
            out = []
            for line in f:
                if line.endswith("\n"):
                    out.append(json.loads(line))
            return out

    def wait_spans(self, pred=lambda s: True, count=1, timeout=10.0):
        """Spans matching pred, once at least count are there (or timeout)."""
        deadline = time.time() + timeout
        while True:
            got = [s for s in self.spans() if pred(s)]
            if len(got) >= count or time.time() > deadline:
                return got
            time.sleep(0.05)

    def stop(self, sig=signal.SIGINT, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"weft did not exit on signal {sig}:\n{self.stderr}")
        self._reader.join(5)
        return self.proc.returncode

    def close(self):
        self.stop()
        os.unlink(self.stdout.name)


@pytest.fixture
def weft_factory():
    started = []

    def start(args, env=None, outputs="json", ready=True, prefix=None):
        w = Weft(args, env=env, outputs=outputs, prefix=prefix)
        started.append(w)
        if ready:
            w.wait_ready()
        return w

    yield start
    for w in started:
        w.close()


class Service:
    def __init__(self, argv, port, env=None, cwd=None):
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        wait_port(port, proc=self.proc)

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        stop_process(self.proc)


@pytest.fixture
def services():
    started = []

    def start(argv, port, env=None, cwd=None):
        s = Service(argv, port, env=env, cwd=cwd)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return mnt
    raise RuntimeError("no cgroup v2 mount")


@pytest.fixture
def test_cgroup():
    """A cgroup v2 of this test's own: sockops attach here, not to the root."""
    path = os.path.join(cgroup2_root(), f"weft-test-{os.getpid()}-{time.monotonic_ns()}")
    os.mkdir(path)
    yield path
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"cannot remove cgroup {path}")


def in_cgroup(argv, cgroup, wait_stdin=False):
    """argv run inside cgroup (joined before exec); optionally waiting for a
    line on stdin first, so that weft can attach before it does anything."""
    if not cgroup:
        return argv
    script = f'echo $$ > {cgroup}/cgroup.procs || exit 99; ' + ("read _; " if wait_stdin else "") + 'exec "$@"'
    return ["bash", "-c", script, "weft-test"] + list(argv)


@pytest.fixture
def py_service(services):
    """Starts tests/apps/py/http_service.py; name sets OTEL_SERVICE_NAME,
    cgroup runs it in that cgroup, log makes it record what it receives."""

    def start(name=None, cgroup=None, log=None):
        port = free_port()
        env = os.environ.copy()
        env.pop("OTEL_SERVICE_NAME", None)
        if name:
            env["OTEL_SERVICE_NAME"] = name
        if log:
            env["REQUEST_LOG"] = log
        argv = in_cgroup([PY, os.path.join(APPS, "py", "http_service.py"), str(port)], cgroup)
        return services(argv, port, env=env)

    return start


class Nginx:
    def __init__(self, tmpdir):
        self.port = free_port()
        self.dir = tmpdir
        os.makedirs(os.path.join(tmpdir, "www"), exist_ok=True)
        with open(os.path.join(tmpdir, "www", "index.html"), "w") as f:
            f.write("<html>weft test</html>\n")
        conf = os.path.join(tmpdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(
                f"""
user root;
worker_processes 1;
daemon off;
pid {tmpdir}/nginx.pid;
error_log {tmpdir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path {tmpdir}/body;
    proxy_temp_path {tmpdir}/proxy;
    fastcgi_temp_path {tmpdir}/fastcgi;
    uwsgi_temp_path {tmpdir}/uwsgi;
    scgi_temp_path {tmpdir}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        location /k/ {{ return 200 "ok\\n"; }}
        location /fail/ {{ return 500 "fail\\n"; }}
        location / {{ root {tmpdir}/www; }}
    }}
}}
"""
            )
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmpdir], stderr=subprocess.PIPE)
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

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        stop_process(self.proc, signal.SIGQUIT)


@pytest.fixture
def nginx(tmp_path):
    n = Nginx(str(tmp_path))
    yield n
    n.stop()


@pytest.fixture(scope="session")
def go_httpapp():
    """Path of the Go test server built with Debian's default Go toolchain."""
    versions = sorted(
        (d[len("go-"):] for d in os.listdir("/usr/lib") if re.fullmatch(r"go-1\.\d+", d)),
        key=lambda v: int(v.split(".")[1]),
    )
    assert versions, "no Go toolchain under /usr/lib/go-1.*: run scripts/setup"
    v = versions[0]
    subprocess.run([os.path.join(ROOT, "scripts", "build_go_apps"), v], check=True, capture_output=True)
    return os.path.join(ROOT, "build", "go", v, "httpapp")


def self_signed_cert(directory):
    """A self-signed certificate for localhost and 127.0.0.1, made by the
    openssl command in directory: (cert path, key path)."""
    key, crt = os.path.join(str(directory), "key.pem"), os.path.join(str(directory), "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return crt, key


@pytest.fixture(scope="session")
def cert(tmp_path_factory):
    """One test certificate for the session's TLS servers (self_signed_cert)."""
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def curl(url, *extra, exe="curl"):
    """Runs curl (or the copy of it at exe); returns (http status, start_ns,
    end_ns) measured around it."""
    t0 = time.time_ns()
    r = subprocess.run(
        [exe, "-s", "-o", "/dev/null", "-w", "%{http_code}", *extra, url], capture_output=True, text=True
    )
    t1 = time.time_ns()
    return int(r.stdout or 0), t0, t1


@pytest.fixture(autouse=True)
def no_leftover_bpf():
    """Every test must leave no weft program or cgroup attachment behind.
    Compared with what was loaded before the test, so that a developer's
    other weft sessions on the same machine do not count; in CI (nothing
    else running) the session check below is strict."""
    progs_before, cgroups_before = len(weft_programs()), len(cgroup_attachments())
    yield
    if foreign_weft_running():
        return  # its programs would be counted as ours
    deadline = time.time() + 5
    while len(weft_programs()) > progs_before and time.time() < deadline:
        time.sleep(0.1)
    assert len(weft_programs()) <= progs_before, f"weft programs left after the test: {weft_programs()}"
    assert len(cgroup_attachments()) <= cgroups_before, f"cgroup attachments left: {cgroup_attachments()}"


@pytest.fixture(scope="session", autouse=True)
def nothing_attached_after_suite():
    yield
    if os.environ.get("CI"):
        assert weft_programs() == [], "weft programs still loaded after the suite"
        assert cgroup_attachments() == [], "cgroup attachments left after the suite"
