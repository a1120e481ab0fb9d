"""What weft does when the kernel refuses one of its programs: it says which
program, on which kernel, and the verifier's reason, and optional parts fail
alone. The refusal is real: WEFT_TEST_REFUSE=<program> has weft load that
program as a socket filter, a type that may not call its helpers, so the
kernel's verifier refuses it."""
import os
import platform
import re
import subprocess

from conftest import WEFT, cgroup_attachments, curl, foreign_weft_running, weft_programs


def refuse(prog):
    return dict(os.environ, WEFT_TEST_REFUSE=prog)


def served(w, svc, path):
    curl(svc.url(path))
    return w.wait_spans(lambda s: s["kind"] == "SERVER" and s["attributes"].get("url.path") == path)


def test_capture_refused_is_explained_and_fatal(py_service):
    svc = py_service()
    before = len(weft_programs())
    r = subprocess.run([WEFT, "attach", "-p", str(svc.pid), "--propagation", "off", "-d", "5"],
                       env=refuse("sys_exit_io"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    release = platform.release()
    assert f"the kernel ({release}) refused BPF program capture/sys_exit_io" in r.stderr, r.stderr
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
