"""OTLP export end to end: real traced HTTP traffic (a Python service traced
with `weft attach`, requests sent with curl), spans decoded by the test
receiver (tests/otlp_receiver.py, official opentelemetry-proto classes) and
compared field by field with the requests that were made.

Needs root and eBPF: /usr/bin/python3 -m pytest tests/e2e/test_otlp.py
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT, WEFT, curl, free_port, self_signed_cert

sys.path.insert(0, os.path.join(ROOT, "tests"))
from otlp_receiver import Receiver  # noqa: E402

SERVER = 2  # Span.SpanKind.SPAN_KIND_SERVER
COUNTERS = re.compile(
    r"otlp: spans received (\d+), exported (\d+), dropped (\d+) \(queue_full (\d+), "
    r"rejected (\d+), partial (\d+), shutdown (\d+), other (\d+)\); requests (\d+), "
    r"errors (\d+), retries (\d+)"
)
COUNTER_NAMES = ("received", "exported", "dropped", "queue_full", "rejected", "partial",
                 "shutdown", "other", "requests", "errors", "retries")


def weft_version():
    return subprocess.run([WEFT, "version"], capture_output=True, text=True).stdout.split()[1]


def otlp_env(receiver, **extra):
    env = os.environ.copy()
    for k in list(env):
        if k.startswith("OTEL_"):
            del env[k]
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint if receiver else extra.pop("endpoint")
    env["OTEL_EXPORTER_OTLP_PROTOCOL"] = (
        "grpc" if receiver is not None and receiver.protocol == "grpc" else "http/protobuf")
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def counters(weft):
    m = COUNTERS.search(weft.stderr)
    assert m, f"no OTLP counters in weft's log:\n{weft.stderr}"
    return dict(zip(COUNTER_NAMES, map(int, m.groups())))


@pytest.fixture
def receiver():
    started = []

    def start(protocol="http", port=0, tls=None, **behaviour):
        r = Receiver(protocol, port, tls=tls)
        for k, v in behaviour.items():
            setattr(r, k, v)
        started.append(r.start())
        return r

    yield start
    for r in started:
        r.stop()


def by_path(spans, path):
    return [s for s in spans if s[2].attributes and attr(s[2], "url.path") == path]


def attr(span_or_attrs, key):
    if isinstance(span_or_attrs, dict):
        return span_or_attrs.get(key)
    for kv in span_or_attrs.attributes:
        if kv.key == key:
            kind = kv.value.WhichOneof("value")
            return getattr(kv.value, kind)
    return None


def attr_kind(span, key):
    for kv in span.attributes:
        if kv.key == key:
            return kv.value.WhichOneof("value")
    return None


def check_server_span(resource, scope, span, *, app, method, path, status, t0, t1,
                      trace_id=None, parent=None):
    """Compares one decoded OTLP span with the request curl made."""
    assert span.kind == SERVER
    assert span.name.startswith(method)
    assert len(span.trace_id) == 16 and any(span.trace_id)
    assert len(span.span_id) == 8 and any(span.span_id)
    if trace_id is not None:
        assert span.trace_id.hex() == trace_id
    if parent is None:
        assert span.parent_span_id == b""
    else:
        assert span.parent_span_id.hex() == parent
    # the server span lies within the client's request (clocks: 50 ms slack)
    slack = 50_000_000
    assert t0 - slack <= span.start_time_unix_nano <= span.end_time_unix_nano <= t1 + slack
    assert attr(span, "http.request.method") == method
    assert attr_kind(span, "http.request.method") == "string_value"
    assert attr(span, "url.path") == path
    assert attr(span, "http.response.status_code") == status
    assert attr_kind(span, "http.response.status_code") == "int_value"
    assert attr(span, "server.port") == app.port
    assert attr_kind(span, "server.port") == "int_value"
    assert not any(kv.key.startswith("weft.") for kv in span.attributes)
    # status: server spans are errors on 5xx only
    assert span.status.code == (2 if status >= 500 else 0)
    # resource: the traced process
    assert resource["process.pid"] == app.pid
    assert isinstance(resource["process.pid"], int)
    assert resource["telemetry.sdk.name"] == "weft"
    assert resource["host.name"] == socket.gethostname()
    assert "python" in resource["process.executable.name"]
    assert "http_service.py" in resource["process.command_line"]
    assert resource.get("service.name")
    assert not any(k.startswith("weft.") for k in resource)
    assert scope.name == "weft"
    assert scope.version == weft_version()


@pytest.mark.parametrize("protocol,compression", [
    ("http", "none"), ("http", "gzip"), ("grpc", "none"), ("grpc", "gzip")])
def test_export_fields(receiver, weft_factory, py_service, protocol, compression):
    r = receiver(protocol)
    app = py_service()
    env = otlp_env(r, OTEL_EXPORTER_OTLP_COMPRESSION=compression,
                   OTEL_EXPORTER_OTLP_HEADERS="x-api-key=s3cret,x-tenant=team%20a",
                   OTEL_RESOURCE_ATTRIBUTES="deployment.environment=e2e,team=obs")
    weft_factory(["attach", "-p", str(app.pid)], env=env, outputs="otlp")

    s1, a0, a1 = curl(app.url("/hello?x=1"))
    s2, b0, b1 = curl(app.url("/status/503"))
    s3, c0, c1 = curl(app.url("/status/404"))
    assert (s1, s2, s3) == (200, 503, 404)

    spans = r.wait_spans(3, pred=lambda s: attr(s[0], "process.pid") == app.pid)
    assert len(spans) == 3, f"got {len(spans)} spans"
    (hello,) = by_path(spans, "/hello")
    (fail,) = by_path(spans, "/status/503")
    (missing,) = by_path(spans, "/status/404")
    check_server_span(*hello, app=app, method="GET", path="/hello", status=200, t0=a0, t1=a1)
    check_server_span(*fail, app=app, method="GET", path="/status/503", status=503, t0=b0, t1=b1)
    check_server_span(*missing, app=app, method="GET", path="/status/404", status=404, t0=c0,
                      t1=c1)
    assert len({s[2].trace_id for s in spans}) == 3
    # weft's OTEL_RESOURCE_ATTRIBUTES apply to the traced process
    assert hello[0]["deployment.environment"] == "e2e"
    assert hello[0]["team"] == "obs"
    # custom headers arrive, and the encoding is the one asked for
    req = r.requests[0]
    assert req.headers["x-api-key"] == "s3cret"
    assert req.headers["x-tenant"] == "team a"
    if protocol == "http":
        assert req.headers["content-type"] == "application/x-protobuf"
        assert req.headers.get("content-encoding") == ("gzip" if compression == "gzip" else None)


def test_incoming_traceparent(receiver, weft_factory, py_service):
    r = receiver()
    app = py_service()
    weft_factory(["attach", "-p", str(app.pid)], env=otlp_env(r), outputs="otlp")
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    status, t0, t1 = curl(app.url("/child"), "-H", f"traceparent: 00-{tid}-{sid}-01")
    assert status == 200
    (child,) = r.wait_spans(1)
    check_server_span(*child, app=app, method="GET", path="/child", status=200, t0=t0, t1=t1,
                      trace_id=tid, parent=sid)


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command (Debian: openssl)")
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_tls_with_certificate(receiver, weft_factory, py_service, tmp_path, protocol):
    """https:// endpoints, verified with OTEL_EXPORTER_OTLP_CERTIFICATE."""
    cert, key = self_signed_cert(tmp_path)
    r = receiver(protocol, tls=(cert, key))
    app = py_service()
    w = weft_factory(["attach", "-p", str(app.pid)], outputs="otlp",
                     env=otlp_env(r, OTEL_EXPORTER_OTLP_CERTIFICATE=cert))
    status, t0, t1 = curl(app.url("/secure"))
    (span,) = r.wait_spans(1)
    check_server_span(*span, app=app, method="GET", path="/secure", status=200, t0=t0, t1=t1)
    assert w.stop(signal.SIGTERM) == 0

    # without the CA, the collector's certificate is refused (and retried)
    r.requests.clear()
    w = weft_factory(["attach", "-p", str(app.pid)], outputs="otlp",
                     env=otlp_env(r, OTEL_BSP_EXPORT_TIMEOUT=1000))
    curl(app.url("/untrusted"))
    time.sleep(1.5)
    assert r.spans() == []
    assert "will retry" in w.stderr and "certificate" in w.stderr.lower(), w.stderr


def test_service_name(receiver, weft_factory, py_service):
    """weft's OTEL_SERVICE_NAME names processes, unless they set their own."""
    r = receiver()
    plain, named = py_service(), py_service(name="checkout")
    env = otlp_env(r, OTEL_SERVICE_NAME="from-weft",
                   OTEL_RESOURCE_ATTRIBUTES="service.name=ignored,service.namespace=shop")
    weft_factory(["attach", "-p", str(plain.pid), "-p", str(named.pid)], env=env, outputs="otlp")
    curl(plain.url("/a"))
    curl(named.url("/b"))
    spans = r.wait_spans(2)
    res = {s[0]["process.pid"]: s[0] for s in spans}
    assert res[plain.pid]["service.name"] == "from-weft"
    assert res[named.pid]["service.name"] == "checkout"
    assert res[plain.pid]["service.namespace"] == res[named.pid]["service.namespace"] == "shop"
    # one ResourceSpans per process
    for req in r.requests:
        pids = [next(kv.value.int_value for kv in rs.resource.attributes if kv.key == "process.pid")
                for rs in req.message.resource_spans]
        assert len(pids) == len(set(pids))


def test_collector_absent_then_started(receiver, weft_factory, py_service):
    port = free_port()
    app = py_service()
    env = otlp_env(None, endpoint=f"http://127.0.0.1:{port}")
    w = weft_factory(["attach", "-p", str(app.pid)], env=env, outputs="otlp,json")
    for i in range(3):
        assert curl(app.url(f"/early/{i}"))[0] == 200
    # weft keeps tracing while the collector is down
    assert len(w.wait_spans(lambda s: s["attributes"].get("url.path", "").startswith("/early"),
                            count=3)) == 3
    time.sleep(1.5)
    assert "will retry" in w.stderr
    r = receiver("http", port=port)
    curl(app.url("/late"))
    spans = r.wait_spans(4, timeout=20)
    paths = sorted(attr(s[2], "url.path") for s in spans)
    assert paths == ["/early/0", "/early/1", "/early/2", "/late"]
    assert w.proc.poll() is None


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_retry_503_then_200_no_duplicates(receiver, weft_factory, py_service, protocol):
    """HTTP 503 with Retry-After; gRPC UNAVAILABLE (backoff)."""
    r = receiver(protocol, fail_status=503, fail_times=2, retry_after=1)
    app = py_service()
    w = weft_factory(["attach", "-p", str(app.pid)], env=otlp_env(r), outputs="otlp")
    for i in range(5):
        curl(app.url(f"/r/{i}"))
    spans = r.wait_spans(5, timeout=20)
    time.sleep(1.5)  # would-be duplicates have time to arrive
    spans = r.spans()
    ids = [s[2].span_id for s in spans]
    assert len(ids) == 5 and len(set(ids)) == 5, "spans lost or duplicated"
    assert r.attempts >= 3
    # HTTP: Retry-After: 1 was honoured; gRPC: backoff of 1 s +-50 %
    assert r.attempt_times[1] - r.attempt_times[0] >= (0.9 if protocol == "http" else 0.4)
    assert w.stop(signal.SIGTERM) == 0
    c = counters(w)
    assert c["exported"] == 5 and c["dropped"] == 0 and c["retries"] >= 2
    assert w.stderr.count("will retry") == 1, w.stderr


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_400_dropped_counted_logged_once(receiver, weft_factory, py_service, protocol):
    """HTTP 400; gRPC INVALID_ARGUMENT: permanent."""
    r = receiver(protocol, fail_status=400)
    app = py_service()
    w = weft_factory(["attach", "-p", str(app.pid)], env=otlp_env(r), outputs="otlp")
    for i in range(4):
        curl(app.url(f"/bad/{i}"))
        time.sleep(0.4)  # separate batches
    deadline = time.time() + 10
    while r.attempts < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert w.stop(signal.SIGTERM) == 0
    c = counters(w)
    assert c["received"] == 4 and c["exported"] == 0
    assert c["rejected"] == 4 and c["dropped"] == 4 and c["retries"] == 0
    assert r.attempts >= 2  # several batches ...
    assert w.stderr.count("export failed permanently") == 1, w.stderr  # ... one log line
    assert ("HTTP 400" if protocol == "http" else "INVALID_ARGUMENT") in w.stderr


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_partial_success(receiver, weft_factory, py_service, protocol):
    """Spans the collector rejects in a successful answer are counted and logged."""
    r = receiver(protocol, reject=1)
    app = py_service()
    w = weft_factory(["attach", "-p", str(app.pid)], env=otlp_env(r), outputs="otlp")
    for i in range(3):
        curl(app.url(f"/p/{i}"))
        time.sleep(0.4)  # separate batches
    r.wait_spans(3)
    assert w.stop(signal.SIGTERM) == 0
    c = counters(w)
    n = len(r.requests)
    assert c["partial"] == n and c["exported"] == 3 - n and c["dropped"] == n
    assert w.stderr.count("collector rejected 1 of") == 1, w.stderr
    assert "test receiver rejects some spans" in w.stderr


def test_hanging_collector(receiver, weft_factory, py_service):
    r = receiver(hang=True)
    app = py_service()
    env = otlp_env(r, OTEL_EXPORTER_OTLP_TIMEOUT=1000, OTEL_BSP_EXPORT_TIMEOUT=2000)
    w = weft_factory(["attach", "-p", str(app.pid)], env=env, outputs="otlp,json")
    t_end = time.time() + 4
    n = 0
    while time.time() < t_end:  # keeps tracing while exports hang
        curl(app.url(f"/h/{n}"))
        n += 1
        time.sleep(0.1)
    got = w.wait_spans(lambda s: s["attributes"].get("url.path", "").startswith("/h/"), count=n)
    assert len(got) == n
    assert r.attempts >= 2  # the 1 s timeout was honoured, then retried
    t0 = time.time()
    assert w.stop(signal.SIGTERM) == 0
    assert time.time() - t0 < 5  # the 2 s flush budget was honoured
    assert "timed out" in w.stderr.lower()
    c = counters(w)
    assert c["received"] == n and c["exported"] == 0
    assert c["dropped"] == n


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_queue_overflow_burst(weft_factory, py_service):
    """Collector down and a burst: the queue stays at its bound, drops are counted."""
    app = py_service()
    env = otlp_env(None, endpoint=f"http://127.0.0.1:{free_port()}",
                   OTEL_BSP_MAX_QUEUE_SIZE=100, OTEL_BSP_MAX_EXPORT_BATCH_SIZE=20,
                   OTEL_BSP_EXPORT_TIMEOUT=500)
    w = weft_factory(["attach", "-p", str(app.pid)], env=env, outputs="otlp")
    url = app.url("/burst/" + "x" * 900)  # ~1 kB per span: 4000 queued would be 4+ MB
    curl(url)  # warm up (resource cache, first batch)
    time.sleep(0.5)
    rss0 = rss_kb(w.proc.pid)
    burst = 4000
    subprocess.run(["curl", "-s", "--parallel", "--parallel-max", "8", f"{url}?n=[1-{burst}]"],
                   stdout=subprocess.DEVNULL, check=True, timeout=120)
    time.sleep(1)
    assert w.proc.poll() is None, f"weft exited during the burst:\n{w.stderr}"
    growth = rss_kb(w.proc.pid) - rss0
    assert w.stop(signal.SIGTERM) == 0
    c = counters(w)
    assert c["received"] >= burst * 0.95, c  # the kernel side may lose a few under a burst
    assert c["exported"] == 0
    assert c["queue_full"] >= c["received"] - 100 - 2 * 20 - 1
    assert c["dropped"] == c["received"]
    # 4000 queued spans would be 4+ MB; the bounded queue holds 100
    assert growth < 2000, f"RSS grew by {growth} kB"
    print(f"RSS growth under the burst: {growth} kB; counters {c}")


def test_sigterm_flush(receiver, weft_factory, py_service):
    r = receiver("grpc")
    app = py_service()
    env = otlp_env(r, OTEL_BSP_SCHEDULE_DELAY=60000, OTEL_BSP_EXPORT_TIMEOUT=5000)
    w = weft_factory(["attach", "-p", str(app.pid)], env=env, outputs="otlp,json")
    for i in range(3):
        curl(app.url(f"/last/{i}"))
    assert len(w.wait_spans(lambda s: s["attributes"].get("url.path", "").startswith("/last"),
                            count=3)) == 3
    assert r.spans() == []  # nothing sent yet: the schedule delay is a minute
    assert w.stop(signal.SIGTERM) == 0
    assert sorted(attr(s[2], "url.path") for s in r.spans()) == ["/last/0", "/last/1", "/last/2"]
    c = counters(w)
    assert c["exported"] == 3 and c["dropped"] == 0


def test_run_exports_by_default(receiver, weft_factory, py_service):
    """`weft run` with an endpoint in the environment exports without -o."""
    r = receiver()
    app = py_service()
    w = weft_factory(["run"], env=otlp_env(r), outputs=None)
    assert "otlp: exporting to" in w.stderr
    curl(app.url("/run"))
    spans = r.wait_spans(1, pred=lambda s: s[0].get("process.pid") == app.pid)
    assert [attr(s[2], "url.path") for s in spans] == ["/run"], w.stderr
    # the receiver (this very process) is traced too, but the collector's side
    # of weft's own export requests is never exported (no feedback loop)
    time.sleep(1)
    assert not [s for s in r.spans() if attr(s[2], "url.path") == "/v1/traces"]


def test_bad_configuration_is_a_clear_error(receiver):
    env = otlp_env(None, endpoint="http://127.0.0.1:1", OTEL_EXPORTER_OTLP_TIMEOUT="soon")
    p = subprocess.run([WEFT, "attach", "-p", str(os.getpid()), "-o", "otlp"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "OTEL_EXPORTER_OTLP_TIMEOUT" in p.stderr and "soon" in p.stderr
    p = subprocess.run([WEFT, "attach", "-p", str(os.getpid()), "-o", "otlp",
                        "--otlp-protocol", "carrier-pigeon"], env=env | {"OTEL_EXPORTER_OTLP_TIMEOUT": "1"},
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "--otlp-protocol" in p.stderr
