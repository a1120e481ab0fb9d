"""Sampling (user/sampling/, bpf/context/assign.bpf.h): decided once per
trace at its root from the trace id (OpenTelemetry's TraceIdRatioBased on
the 56 low bits), carried downstream in traceparent's flags, and applied to
whole traces: a two-service Python chain keeps complete traces only."""
import json
import math
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


N = 400
RATIO = 0.25
THRESHOLD = round((1 - RATIO) * 2**56)


def randomness(trace_id):
    return int(trace_id[-14:], 16)  # the 56 low bits, big-endian


def read_log(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.endswith("\n")]


def send_chain(a, b, n=N):
    def one(i):
        with urllib.request.urlopen(a.url(f"/chain?next={b.port}"), timeout=30) as r:
            assert r.read() == b"leaf\n"

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(one, range(n)))


def within(k, n, p, sds=5):
    sd = math.sqrt(n * p * (1 - p))
    return abs(k - n * p) <= sds * sd


def test_ratio_keeps_whole_traces(weft_factory, py_service, test_cgroup, tmp_path):
    log_b = str(tmp_path / "b.log")
    a = py_service(name="svc-a", cgroup=test_cgroup)
    b = py_service(name="svc-b", cgroup=test_cgroup, log=log_b)
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(a.pid), "-p", str(b.pid),
                      "--sampler", "parentbased_traceidratio", "--sampler-arg", str(RATIO)])
    send_chain(a, b)
    # What B received: every request's traceparent, flags 01 or 00.
    recs = read_log(log_b)
    assert len(recs) == N
    sent = {}
    for r in recs:
        (tp,) = r["traceparent"]
        _, trace, _, flags = tp.split("-")
        sent[trace] = flags
        # the decision is the spec's: R >= (1 - ratio) * 2^56
        assert flags == ("01" if randomness(trace) >= THRESHOLD else "00"), tp
    kept = {t for t, f in sent.items() if f == "01"}
    assert within(len(kept), N, RATIO), len(kept)

    spans = w.wait_spans(count=3 * len(kept), timeout=20)
    w.stop()
    spans = w.spans()
    traces = {}
    for s in spans:
        traces.setdefault(s["trace_id"], []).append(s)
    # Exactly the sampled traces, each complete: A's server, A's client, B's server.
    assert set(traces) == kept
    for t, members in traces.items():
        kinds = sorted((m["resource"]["service.name"], m["kind"]) for m in members)
        assert kinds == [("svc-a", "CLIENT"), ("svc-a", "SERVER"), ("svc-b", "SERVER")], t
    assert f"{N * 3 - len(spans)} spans sampled out" in w.stderr, w.stderr


def test_two_wefts_agree_without_talking(weft_factory, py_service, test_cgroup, tmp_path):
    """traceidratio (not parent-based) in two weft instances, one per service:
    B's weft ignores the incoming flags and decides from the trace id alone,
    and keeps exactly the traces A's weft kept."""
    a = py_service(name="svc-a", cgroup=test_cgroup)
    b = py_service(name="svc-b")
    args = ["--sampler", "traceidratio"]
    env = dict(os.environ, OTEL_TRACES_SAMPLER_ARG=str(RATIO))
    wa = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(a.pid)] + args, env=env)
    wb = weft_factory(["attach", "-p", str(b.pid)] + args, env=env)
    send_chain(a, b, 200)
    wa.stop()
    wb.stop()
    a_traces = {s["trace_id"] for s in wa.spans()}
    b_traces = {s["trace_id"] for s in wb.spans()}
    assert len(wa.spans()) == 2 * len(a_traces) and len(wb.spans()) == len(b_traces)
    assert a_traces == b_traces
    assert within(len(a_traces), 200, RATIO)
    assert all(randomness(t) >= THRESHOLD for t in a_traces)


def test_always_off_exports_nothing_and_says_so(weft_factory, py_service, test_cgroup, tmp_path):
    log_b = str(tmp_path / "b.log")
    a = py_service(cgroup=test_cgroup)
    b = py_service(cgroup=test_cgroup, log=log_b)
    env = dict(os.environ, OTEL_TRACES_SAMPLER="always_off")
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(a.pid), "-p", str(b.pid)], env=env)
    send_chain(a, b, 20)
    w.stop()
    assert w.spans() == []
    assert all(r["traceparent"][0].endswith("-00") for r in read_log(log_b))
    # Nothing here wants them (no metrics, no --keep-errors): they never left the kernel.
    assert "60 spans sampled out (not exported; 60 of them dropped in the kernel)" in w.stderr, w.stderr


def test_keep_errors_exports_failed_spans_alone(weft_factory, py_service, test_cgroup):
    """--keep-errors: with everything sampled out, the spans that failed are
    still exported, each as a trace of its own; nothing else is."""
    a = py_service(name="svc-a", cgroup=test_cgroup)
    b = py_service(name="svc-b", cgroup=test_cgroup)
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(a.pid), "-p", str(b.pid),
                      "--sampler", "always_off", "--keep-errors"])
    send_chain(a, b, 10)
    for path in ["/status/500"] * 7 + ["/status/404"] * 5:
        try:
            urllib.request.urlopen(a.url(path), timeout=10).read()
        except urllib.error.HTTPError:
            pass
    w.wait_spans(count=7, timeout=10)
    w.stop()
    spans = w.spans()
    assert len(spans) == 7, spans
    assert all(s["kind"] == "SERVER" and s["status"] == "ERROR" and s["parent_span_id"] == ""
               for s in spans), spans
    assert len({s["trace_id"] for s in spans}) == 7
    assert "7 error spans of sampled-out traces exported alone" in w.stderr, w.stderr
