"""weft run --config: which processes are traced (discovery selectors), on
real servers (python3 -m http.server) and clients (curl): the selected
ones are traced, including ones started after weft, the others not at all
(the kernel never sends their events)."""
import os
import shutil
import subprocess

import pytest

from conftest import PY, curl, free_port, stop_process, wait_port


def http_server(port, cwd="/tmp"):
    p = subprocess.Popen([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    return p


@pytest.fixture
def servers():
    started = []

    def start(port):
        p = http_server(port)
        started.append(p)
        return p

    yield start
    for p in started:
        stop_process(p)


def free_port_range(n=10):
    """lo .. lo + n - 1 all free now (other processes on the host take ports
    too: a range derived from one free port was not always free, and a
    listener in it would be selected)."""
    import socket
    for _ in range(200):
        lo = 20000 + (free_port() % 20000)
        socks = []
        try:
            for port in range(lo, lo + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return lo
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def write_config(tmp_path, text):
    path = tmp_path / "weft.yaml"
    path.write_text(text)
    return str(path)


def spans_of(w, pid, kind="SERVER"):
    return [s for s in w.spans() if s["kind"] == kind and s["resource"]["process.pid"] == pid]


def test_select_by_port_and_executable(weft_factory, servers, tmp_path):
    # The selected port range: found free by binding it.
    lo = free_port_range(10)
    # curl selected by its path: a copy of its own, so that the curls of other
    # processes on the host (a shared machine) are not selected too.
    own_curl = str(tmp_path / "curl")
    shutil.copy("/usr/bin/curl", own_curl)
    sel_port, later_port, other_port = lo, lo + 1, free_port()
    selected = servers(sel_port)       # running before weft: found by the /proc scan
    other = servers(other_port)        # not selected
    cfg = write_config(tmp_path, f"""
discovery:
  instrument:
    - open_ports: "{lo}-{lo + 9}"
    - exe_path: "{own_curl}"
""")
    w = weft_factory(["run", "--config", cfg])
    assert "ready: tracing 1 running process selected" in w.stderr, w.stderr
    later = servers(later_port)        # starts listening after weft: the kernel reports it
    for port in (sel_port, later_port, other_port):
        status, _, _ = curl(f"http://127.0.0.1:{port}/", exe=own_curl)
        assert status == 200
    got = w.wait_spans(lambda s: s["kind"] == "SERVER", count=2)
    got_clients = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=3)
    assert {s["resource"]["process.pid"] for s in got} == {selected.pid, later.pid}, w.stderr
    for s in got:
        assert s["name"] == "GET /"
        assert s["attributes"]["server.port"] in (sel_port, later_port)
        assert s["resource"]["process.executable.name"].startswith("python3")
    # curl is selected by its executable: every one of its requests, to the
    # unselected server too, is a client span of a curl process.
    assert len(got_clients) == 3, w.stderr
    assert {s["attributes"]["server.port"] for s in got_clients} == {sel_port, later_port, other_port}
    assert all(s["resource"]["process.executable.name"] == "curl" for s in got_clients)
    assert spans_of(w, other.pid) == []
    w.stop()
    assert "discovery: " in w.stderr and " selected" in w.stderr


def test_exclude_wins_and_default_traces_others(weft_factory, servers, tmp_path):
    """No instrument list: every process but the excluded ones."""
    a_port, b_port = free_port(), free_port()
    a = servers(a_port)
    b = servers(b_port)
    cfg = write_config(tmp_path, f"""
discovery:
  exclude_instrument:
    - open_ports: {b_port}
    - exe_path: "*/curl"
""")
    w = weft_factory(["run", "--config", cfg])
    for port in (a_port, b_port):
        assert curl(f"http://127.0.0.1:{port}/")[0] == 200
    got = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["resource"]["process.pid"] in (a.pid, b.pid))
    assert [s["resource"]["process.pid"] for s in got] == [a.pid], w.stderr
    # curl is excluded: no client span from any curl
    assert not [s for s in w.spans() if s["kind"] == "CLIENT" and
                s["resource"].get("process.executable.name") == "curl"]
    assert spans_of(w, b.pid) == []


def test_env_variables_select(weft_factory, servers):
    """WEFT_DISCOVERY_OPEN_PORTS does what discovery.instrument[].open_ports does."""
    a_port, b_port = free_port(), free_port()
    a = servers(a_port)
    b = servers(b_port)
    env = dict(os.environ, WEFT_DISCOVERY_OPEN_PORTS=str(a_port))
    w = weft_factory(["run"], env=env)
    assert "selected by the configuration" in w.stderr
    for port in (a_port, b_port):
        assert curl(f"http://127.0.0.1:{port}/")[0] == 200
    got = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["resource"]["process.pid"] in (a.pid, b.pid))
    assert [s["resource"]["process.pid"] for s in got] == [a.pid], w.stderr
    assert spans_of(w, b.pid) == []


def test_exec_into_unselected_program_is_untraced(weft_factory, servers, tmp_path):
    """A selected process that execs a program no selector wants is no longer
    traced: the shell is selected by its executable, the python server it
    becomes is not."""
    port = free_port()
    cfg = write_config(tmp_path, """
discovery:
  instrument:
    - exe_path: "/usr/bin/bash"
""")
    w = weft_factory(["run", "--config", cfg])
    p = subprocess.Popen(["bash", "-c", f'exec {PY} -m http.server --bind 127.0.0.1 {port}'], cwd="/tmp",
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=p)
        assert curl(f"http://127.0.0.1:{port}/")[0] == 200
        w.wait_spans(lambda s: False, timeout=1.0)
        assert spans_of(w, p.pid) == [], w.stderr
    finally:
        stop_process(p)


@pytest.mark.parametrize("text,message", [
    ("discovery:\n  instrument:\n    - open_ports: 70000\n", "open_ports: '70000'"),
    ("discovery:\n  instrument:\n    - exe_pth: /bin/x\n", "unknown selector key 'exe_pth'"),
    ("discovery:\n  instrument:\n    - k8s_namespace: '('\n", "is not a regular expression"),
    ("discovery: [\n", "not YAML"),
    ("kubernetes:\n  enable: maybe\n", "kubernetes.enable"),
])
def test_bad_config_is_refused_clearly(tmp_path, text, message):
    cfg = write_config(tmp_path, text)
    from conftest import WEFT
    r = subprocess.run([WEFT, "run", "--config", cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert message in r.stderr
    assert cfg in r.stderr or "kubernetes" in message


def test_a_selected_program_that_connects_at_once_is_traced_from_its_first_request(weft_factory, servers,
                                                                                  tmp_path):
    """A statically linked client (busybox wget) connects within a fraction of
    a millisecond of its exec: before the agent can have looked at it. The
    kernel traces every new program provisionally until the agent decides
    (docs/DEPLOY.md): every request of the selected copy is a span, and
    nothing of the unselected copy, whose first exchanges the kernel did
    capture, reaches the output."""
    port = free_port()
    srv = servers(port)  # not selected
    # busybox runs the applet its name says: two copies named wget.
    wanted, unwanted = str(tmp_path / "sel" / "wget"), str(tmp_path / "other" / "wget")
    for exe in (wanted, unwanted):
        os.makedirs(os.path.dirname(exe))
        shutil.copy("/bin/busybox", exe)
    cfg = write_config(tmp_path, f"""
discovery:
  instrument:
    - exe_path: "{wanted}"
""")
    w = weft_factory(["run", "--config", cfg])
    n = 12
    for i in range(n):
        for exe in (wanted, unwanted):
            tag = os.path.basename(os.path.dirname(exe))
            r = subprocess.run([exe, "-q", "-O", "-", f"http://127.0.0.1:{port}/?{tag}{i}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20)
            assert r.returncode == 0, r.stderr
    got = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=n)
    assert len(got) == n, w.stderr
    assert sorted(s["attributes"]["url.full"].split("?")[1] for s in got) == sorted(f"sel{i}" for i in range(n))
    assert all(s["resource"]["process.executable.name"] == "wget" for s in got)
    w.stop()
    assert [s for s in w.spans() if s["kind"] == "CLIENT"] == got
    assert spans_of(w, srv.pid) == []
    # Static programs get no waiting libssl probes, and weft never probes
    # (or warns about) its own libraries.
    assert "tls: pid" not in w.stderr, w.stderr
