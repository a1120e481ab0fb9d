"""Processes that change under weft: a PID freed and taken at once by
another process, a traced process exec'ing another program. Every span
carries the resource of the process that made it (service.name, process.*),
and a Go program's spans its own goroutine parenting, never what weft knew
of the PID's previous owner."""
import os
import subprocess
import time
import urllib.parse

from conftest import APPS, PY, curl, free_port, wait_port
from test_faults import dead_pid_entries


def res(span):
    return span["resource"]


def test_pid_reuse_gets_the_new_resource(weft_factory, py_service):
    """weft run: process A serves (its resource is cached), is killed, and
    its PID goes at once to B, a fork of another program that does not exec
    (no exec event): B's spans carry B's service.name and command line."""
    w = weft_factory(["run"])
    a = py_service(name="reuse-first")
    pid = a.pid
    assert curl(a.url("/first"))[0] == 200
    (first,) = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["attributes"].get("url.path") == "/first")
    assert res(first)["process.pid"] == pid and res(first)["service.name"] == "reuse-first"
    a.proc.kill()
    a.proc.wait()
    port = free_port()
    env = dict(os.environ, OTEL_SERVICE_NAME="reuse-second")
    b = subprocess.Popen([PY, os.path.join(APPS, "py", "pid_reuse.py"), str(pid), str(port)], env=env,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert b.stdout.readline().strip() == f"child {pid}", "the PID could not be taken again"
        assert curl(f"http://127.0.0.1:{port}/second")[0] == 200
        (second,) = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["attributes"].get("url.path") == "/second")
        r = res(second)
        assert r["process.pid"] == pid
        assert r["service.name"] == "reuse-second", r
        assert "pid_reuse.py" in r["process.command_line"], r
    finally:
        subprocess.run(["pkill", "-KILL", "-P", str(b.pid)])
        b.kill()
        b.wait()
    # once gone, the kernel forgets it at its exit (not at the next sweep)
    time.sleep(0.3)
    left = dead_pid_entries(w.proc.pid, ("proc_flags", "go_procs", "traced_pids"))
    assert not any(pid in v for v in left.values()), left


def test_exec_while_traced_gets_the_new_program(weft_factory, go_httpapp):
    """weft attach -p on a Python server that execs the Go test server (same
    PID): spans before carry Python's resource, spans after the Go
    program's, and its outgoing call is parented to its request through the
    new program's goroutines (its own Go offsets, applied after the exec)."""
    p1, p2 = free_port(), free_port()
    env = dict(os.environ, OTEL_SERVICE_NAME="exec-before", EXEC_SERVICE_NAME="exec-after")
    proc = subprocess.Popen([PY, os.path.join(APPS, "py", "exec_after.py"), str(p1), go_httpapp,
                             "-addr", f"127.0.0.1:{p2}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(p1, proc=proc)
        w = weft_factory(["attach", "-p", str(proc.pid)])
        assert curl(f"http://127.0.0.1:{p1}/before")[0] == 200
        (before,) = w.wait_spans(lambda s: s["attributes"].get("url.path") == "/before")
        assert res(before)["service.name"] == "exec-before"
        assert "exec_after.py" in res(before)["process.command_line"]
        assert curl(f"http://127.0.0.1:{p1}/exec")[0] == 200
        wait_port(p2, proc=proc)
        # the new program is analysed off the event thread: its goroutines
        # are followed from the moment weft says so
        deadline = time.time() + 10
        while f"go: pid {proc.pid}" not in w.stderr and time.time() < deadline:
            time.sleep(0.05)
        assert f"go: pid {proc.pid}" in w.stderr, w.stderr
        inner = f"http://127.0.0.1:{p2}/hello?id=x1"
        q = urllib.parse.urlencode({"url": inner, "mode": "goroutine", "id": "x1"})
        assert curl(f"http://127.0.0.1:{p2}/call?{q}")[0] == 200
        spans = w.wait_spans(lambda s: res(s)["process.pid"] == proc.pid and
                             s["attributes"].get("url.path") != "/before" and
                             s["attributes"].get("url.path") != "/exec", count=3)
        srv = [s for s in spans if s["kind"] == "SERVER" and s["attributes"].get("url.path") == "/call"]
        cli = [s for s in spans if s["kind"] == "CLIENT"]
        assert len(srv) == 1 and len(cli) == 1, spans
        for s in srv + cli:
            assert res(s)["service.name"] == "exec-after", res(s)
            assert res(s)["process.executable.name"] == os.path.basename(go_httpapp), res(s)
            assert "-addr" in res(s)["process.command_line"]
        assert cli[0]["parent_span_id"] == srv[0]["span_id"], w.stderr
    finally:
        proc.kill()
        proc.wait()
