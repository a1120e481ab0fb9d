"""What weft does when the kernel refuses one of its programs: it says which
program, on which kernel, and the verifier's reason, and optional parts fail
alone. The refusal is real: WEFT_TEST_REFUSE=<program> has weft load that
program as a socket filter, a type that may not call its helpers, so the
kernel's verifier refuses it."""
import os
import platform
import re
import subprocess

import pytest

from conftest import WEFT, cgroup_attachments, curl, foreign_weft_running, weft_programs


def refuse(prog):
    return dict(os.environ, WEFT_TEST_REFUSE=prog)


def served(w, svc, path):
    curl(svc.url(path))
    return w.wait_spans(lambda s: s["kind"] == "SERVER" and s["attributes"].get("url.path") == path)


# The program that captures data on each front.
@pytest.mark.parametrize("front,prog", [("socket", "sock_recv"), ("syscall", "sys_exit_io")])
def test_capture_refused_is_explained_and_fatal(py_service, front, prog):
    if front == "socket" and not os.path.exists("/sys/kernel/tracing/events/sock/sock_recv_length"):
        pytest.skip("no socket-layer tracepoints on this kernel")
    svc = py_service()
    before = len(weft_programs())
    env = dict(refuse(prog), WEFT_CAPTURE_FRONT=front)
    r = subprocess.run([WEFT, "attach", "-p", str(svc.pid), "--propagation", "off", "-d", "5"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    release = platform.release()
    assert f"the kernel ({release}) refused BPF program capture/{prog}" in r.stderr, r.stderr
    # The verifier's own words, then its count.
    assert re.search(r"verifier: .*(invalid|cannot|unknown|not allowed)", r.stderr), r.stderr
    assert re.search(r"verifier: processed \d+ insns", r.stderr), r.stderr
    assert "captures no traffic" in r.stderr and "weft doctor" in r.stderr
    assert "ready:" not in r.stderr
    if not foreign_weft_running():
        assert len(weft_programs()) == before


def test_go_probes_refused_the_rest_traces(weft_factory, py_service):
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid)], env=refuse("probe_go_persistconn_roundtrip"))
    assert "refused BPF program go/probe_go_persistconn_roundtrip" in w.stderr, w.stderr
    assert "goes on without its Go uprobes" in w.stderr
    (span,) = served(w, svc, "/after-go-refusal")
    assert span["attributes"]["http.response.status_code"] == 200


def test_propagation_refused_the_rest_traces(weft_factory, py_service, test_cgroup):
    svc = py_service(cgroup=test_cgroup)
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(svc.pid)], env=refuse("weft_sk_msg"))
    assert "refused BPF program propagation/weft_sk_msg" in w.stderr, w.stderr
    assert "without injecting traceparent" in w.stderr
    assert not [l for l in cgroup_attachments() if os.path.basename(test_cgroup) in l]
    (span,) = served(w, svc, "/after-propagation-refusal")
    assert span["attributes"]["http.response.status_code"] == 200


def weft_tracepoints(pid):
    """The tracepoints weft process pid has programs on, classic or raw
    (bpftool perf show)."""
    out = subprocess.run(["bpftool", "perf", "show"], capture_output=True, text=True).stdout
    return [l.split()[-1] for l in out.splitlines()
            if l.startswith(f"pid {pid} ") and (" tracepoint " in l or " raw_tracepoint " in l)]


SYSCALL_TPS = {"sys_enter_write", "sys_exit_read", "sys_exit_write", "sys_exit_recvfrom", "sys_enter_close"}


@pytest.mark.parametrize("front", ["socket", "syscall"])
def test_capture_front(weft_factory, py_service, front):
    """The socket front taxes no other process: not one syscall tracepoint;
    the fallback (kernels before 6.3) uses them. Both capture the same."""
    if front == "socket" and not os.path.exists("/sys/kernel/tracing/events/sock/sock_recv_length"):
        pytest.skip("no socket-layer tracepoints on this kernel")
    svc = py_service()
    w = weft_factory(["attach", "-p", str(svc.pid)], env=dict(os.environ, WEFT_CAPTURE_FRONT=front))
    assert f"capture: {front} front" in w.stderr, w.stderr
    tps = set(weft_tracepoints(w.proc.pid))
    if front == "socket":
        assert {"sock_recv_length", "sock_send_length", "inet_sock_set_state"} <= tps, tps
        assert not [t for t in tps if t.startswith("sys_")], tps
    else:
        assert SYSCALL_TPS <= tps, tps
        assert not tps & {"sock_recv_length", "sock_send_length"}, tps
    (span,) = served(w, svc, f"/front-{front}")
    assert span["attributes"]["http.response.status_code"] == 200
    assert span["attributes"]["network.peer.address"] == "127.0.0.1"


def test_doctor_checks_weft_own_programs():
    """weft doctor loads each of weft's own programs and says what this kernel
    accepts; a refused capture program means weft cannot run here."""
    release = platform.release()
    r = subprocess.run([WEFT, "doctor", "--programs", "--strict"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"weft's own programs on this kernel ({release})" in r.stdout
    progs = {m.group(2): (m.group(1), int(m.group(3)))
             for m in re.finditer(r"^\s+(ok|no)\s+(\S+/\S+)\s+(\d+) insns", r.stdout, re.M)}
    # The program that captures data on the front this run uses (make e2e-syscall forces the fallback).
    socket_front = (os.environ.get("WEFT_CAPTURE_FRONT") != "syscall"
                    and os.path.exists("/sys/kernel/tracing/events/sock/sock_recv_length"))
    data_prog = "sock_recv" if socket_front else "sys_exit_io"
    assert progs[f"capture/{data_prog}"][0] == "ok", r.stdout
    assert all(ok == "ok" and 0 < insns <= 500000 for ok, insns in progs.values()), r.stdout
    assert {"propagation/weft_sk_msg", "go/probe_go_persistconn_roundtrip"} <= set(progs)
    # The data program's deepest chain of calls, frame by frame: its frames,
    # rounded up to 32 bytes each (6.1's rule), add up to the stack it reports.
    m = re.search(rf"^\s+ok\s+capture/{data_prog}\s.*stack (\d+)\n\s+deepest calls[^:]*: (.*)$", r.stdout, re.M)
    assert m, r.stdout
    frames = [(f.rsplit(" ", 1)[0], int(f.rsplit(" ", 1)[1])) for f in m.group(2).split(" > ")]
    assert [name for name, _ in frames[:2]] == [data_prog, "on_data"], frames
    assert sum((size + 31) // 32 * 32 for _, size in frames) == int(m.group(1)) <= 448, frames

    r = subprocess.run([WEFT, "doctor"], env=refuse(data_prog), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(rf"^\s+no\s+capture/{data_prog}", r.stdout, re.M), r.stdout
    assert "weft captures no traffic" in r.stdout
    assert r.stdout.strip().endswith("weft cannot run here: see the lines above.")
