"""RED metrics and the service graph on /metrics (--prometheus), computed
from every exchange whatever the sampler decided: exact counts by status,
route and peer, service-graph edges joined through propagation, scrapes
that never hold up span export."""
import os
import re
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from conftest import free_port
from db_servers import redis_server  # noqa: F401 (fixture)

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: # .*)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """[(name, {label: value}, float)] of a text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, line
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def scrape(port, accept=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.headers["Content-Type"], r.read().decode()


def total(samples, name, **labels):
    return sum(v for n, l, v in samples if n == name and all(l.get(k, "") == x for k, x in labels.items()))


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_for(port, cond, timeout=15):
    deadline = time.time() + timeout
    while True:
        samples = parse(scrape(port)[1])
        if cond(samples) or time.time() > deadline:
            return samples
        time.sleep(0.1)


def test_red_and_service_graph_count_every_request(weft_factory, py_service, test_cgroup):
    a = py_service(name="svc-a", cgroup=test_cgroup)
    b = py_service(name="svc-b", cgroup=test_cgroup)
    port = free_port()
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(a.pid), "-p", str(b.pid),
                      "--sampler", "parentbased_traceidratio", "--sampler-arg", "0.25",
                      "--prometheus", f"127.0.0.1:{port}"])
    n_chain, n_404, n_500 = 120, 30, 20
    urls = ([a.url(f"/chain?next={b.port}")] * n_chain + [a.url("/status/404")] * n_404
            + [a.url("/status/500")] * n_500)
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(get, urls))
    assert sorted(codes) == sorted([200] * n_chain + [404] * n_404 + [500] * n_500)

    srv = "http_server_request_duration_seconds_count"
    samples = wait_for(port, lambda s: total(s, srv) >= 2 * n_chain + n_404 + n_500
                       and total(s, "traces_service_graph_request_total", client="svc-a") >= n_chain)
    # Every request, by service, status and route, although only a quarter was exported.
    assert total(samples, srv) == 2 * n_chain + n_404 + n_500
    assert total(samples, srv, service_name="svc-a", http_response_status_code="200", http_route="/chain",
                 http_request_method="GET") == n_chain
    assert total(samples, srv, service_name="svc-a", http_response_status_code="404") == n_404
    assert total(samples, srv, service_name="svc-a", http_response_status_code="500", error_type="500") == n_500
    assert total(samples, srv, service_name="svc-b", http_response_status_code="200") == n_chain
    assert total(samples, "http_client_request_duration_seconds_count", service_name="svc-a",
                 server_address="127.0.0.1", server_port=str(b.port), http_response_status_code="200") == n_chain
    # Buckets are cumulative and end with _count; no high-cardinality label.
    for n, l, v in samples:
        assert not {"url_path", "url_full", "client_address", "network_peer_port"} & set(l), (n, l)
        if n == "http_server_request_duration_seconds_bucket" and l["le"] == "+Inf":
            count = [c for m, k, c in samples if m == srv and k == {x: y for x, y in l.items() if x != "le"}]
            assert count == [v]
    # Service graph: the propagated edge, and the untraced callers as "user".
    sg = "traces_service_graph_request_total"
    assert total(samples, sg, client="svc-a", server="svc-b", connection_type="") == n_chain
    assert total(samples, sg, client="user", server="svc-a", connection_type="virtual_node") == (
        n_chain + n_404 + n_500)
    assert total(samples, "traces_service_graph_request_failed_total", client="user", server="svc-a") == n_500
    assert total(samples, "traces_service_graph_request_server_seconds_count", client="svc-a",
                 server="svc-b") == n_chain
    assert total(samples, "traces_service_graph_request_client_seconds_count", client="svc-a",
                 server="svc-b") == n_chain
    w.stop()
    exported = w.spans()
    assert 0 < len(exported) < n_chain * 3 + n_404 + n_500


def test_openmetrics_exemplars_point_at_exported_traces(weft_factory, py_service):
    a = py_service(name="svc-ex")
    port = free_port()
    w = weft_factory(["attach", "-p", str(a.pid), "--sampler", "traceidratio", "--sampler-arg", "0.5",
                      "--prometheus", f":{port}"])
    for _ in range(60):
        assert get(a.url("/x")) == 200
    wait_for(port, lambda s: total(s, "http_server_request_duration_seconds_count") >= 60)
    ctype, text = scrape(port, accept="application/openmetrics-text;version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and text.endswith("# EOF\n")
    ptype, plain = scrape(port)  # the text format 0.0.4 has no exemplars
    assert ptype.startswith("text/plain; version=0.0.4") and "# {" not in plain and "# EOF" not in plain
    w.stop()
    exported = {(s["trace_id"], s["span_id"]) for s in w.spans()}
    ex = re.findall(r'_bucket\{.*\} \d+ # \{trace_id="([0-9a-f]{32})",span_id="([0-9a-f]{16})"\} ', text)
    assert ex and set(ex) <= exported


def test_scrapes_during_load_never_block_export(weft_factory, py_service):
    a = py_service(name="svc-load")
    port = free_port()
    w = weft_factory(["attach", "-p", str(a.pid), "--prometheus", f"127.0.0.1:{port}"])
    stop = threading.Event()
    slowest = []

    def scraper():
        while not stop.is_set():
            t0 = time.monotonic()
            scrape(port)
            slowest.append(time.monotonic() - t0)

    th = threading.Thread(target=scraper)
    th.start()
    with ThreadPoolExecutor(4) as ex:
        assert set(ex.map(get, [a.url("/load")] * 300)) == {200}
    spans = w.wait_spans(count=300, timeout=10)
    stop.set()
    th.join()
    assert len(spans) == 300 and len(slowest) > 10 and max(slowest) < 1.0, (len(spans), w.stderr)
    samples = parse(scrape(port)[1])
    assert total(samples, "http_server_request_duration_seconds_count", service_name="svc-load") == 300


class MetricsReceiver:
    """OTLP/HTTP /v1/metrics, decoded with Debian's python3-opentelemetry-proto."""

    def __init__(self):
        import http.server
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

        self.requests = []
        recv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = metrics_service_pb2.ExportMetricsServiceRequest()
                req.ParseFromString(body)
                recv.requests.append((self.path, self.headers.get("Content-Type"), req))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def points(self, req):
        """[(service, metric name, attributes, data point, temporality)]"""
        out = []
        for rm in req.resource_metrics:
            svc = {a.key: a.value.string_value for a in rm.resource.attributes}["service.name"]
            for sm in rm.scope_metrics:
                assert sm.scope.name == "weft"
                for m in sm.metrics:
                    data = m.histogram if m.HasField("histogram") else m.sum
                    for dp in data.data_points:
                        attrs = {a.key: a.value.string_value or a.value.bool_value for a in dp.attributes}
                        out.append((svc, m.name, attrs, dp, data.aggregation_temporality))
        return out

    def stop(self):
        self.server.shutdown()


def count_of(dp):
    return dp.count if hasattr(dp, "bucket_counts") and dp.bucket_counts else dp.as_int


def test_otlp_metrics_match_prometheus(weft_factory, py_service, test_cgroup):
    a = py_service(name="svc-a", cgroup=test_cgroup)
    b = py_service(name="svc-b", cgroup=test_cgroup)
    recv = MetricsReceiver()
    port = free_port()
    env = dict(os.environ, OTEL_METRICS_EXPORTER="otlp", OTEL_METRIC_EXPORT_INTERVAL="300",
               OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{recv.port}")
    w = weft_factory(["attach", "--cgroup", test_cgroup, "-p", str(a.pid), "-p", str(b.pid),
                      "--sampler", "parentbased_traceidratio", "--sampler-arg", "0.5",
                      "--prometheus", f"127.0.0.1:{port}"], env=env)
    urls = [a.url(f"/chain?next={b.port}")] * 40 + [a.url("/status/503")] * 10
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(get, urls))
    srv = "http_server_request_duration_seconds_count"
    prom = wait_for(port, lambda s: total(s, srv) >= 90
                    and total(s, "traces_service_graph_request_total", client="svc-a") >= 40)
    time.sleep(0.5)  # one more export interval
    w.stop()
    recv.stop()
    path, ctype, last = recv.requests[-1]  # the final export, at exit
    assert path == "/v1/metrics" and ctype == "application/x-protobuf"
    pts = recv.points(last)
    hist = [p for p in pts if p[1] == "http.server.request.duration"]
    assert {p[4] for p in pts} == {2}  # AGGREGATION_TEMPORALITY_CUMULATIVE
    # Same series and counts as /metrics: service in the resource, the rest as attributes.
    got = sorted((svc, a["http.response.status_code"], a.get("http.route"), dp.count) for svc, _, a, dp, _ in hist)
    want = sorted((l["service_name"], l["http_response_status_code"], l.get("http_route"), v)
                  for n, l, v in prom if n == srv)
    assert got == want and sum(g[3] for g in got) == 90
    for _, _, _, dp, _ in hist:
        assert sum(dp.bucket_counts) == dp.count and len(dp.bucket_counts) == len(dp.explicit_bounds) + 1
        assert list(dp.explicit_bounds)[:3] == [0.005, 0.01, 0.025]
        for e in dp.exemplars:  # only sampled spans, which were exported
            assert e.trace_id.hex() in {s["trace_id"] for s in w.spans()}
    edges = [p for p in pts if p[1] == "traces_service_graph_request"]
    assert [(p[2]["client"], p[2]["server"], p[3].as_int) for p in edges if p[2]["client"] == "svc-a"] == [
        ("svc-a", "svc-b", 40)]
    assert all(p[0] == "weft" for p in edges)


def test_otlp_metrics_delta(weft_factory, py_service):
    a = py_service(name="svc-d")
    recv = MetricsReceiver()
    env = dict(os.environ, OTEL_METRICS_EXPORTER="otlp", OTEL_METRIC_EXPORT_INTERVAL="200",
               OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta",
               OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=f"http://127.0.0.1:{recv.port}/custom/path")
    w = weft_factory(["attach", "-p", str(a.pid)], env=env)
    for i in range(30):
        assert get(a.url("/d")) == 200
        if i % 10 == 9:
            time.sleep(0.5)
    time.sleep(0.5)
    w.stop()
    recv.stop()
    assert {r[0] for r in recv.requests} == {"/custom/path"}
    counts, starts = 0, []
    for _, _, req in recv.requests:
        for svc, name, attrs, dp, temp in recv.points(req):
            if name == "http.server.request.duration":
                assert temp == 1 and svc == "svc-d"  # AGGREGATION_TEMPORALITY_DELTA
                counts += dp.count
                starts.append((dp.start_time_unix_nano, dp.time_unix_nano))
    assert counts == 30
    # Intervals follow each other without overlap.
    assert all(s < t for s, t in starts) and all(t0 <= s1 for (_, t0), (s1, _) in zip(starts, starts[1:]))


REDIS_CLIENT = """
import sys, redis
sys.stdin.readline()
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
for i in range(20):
    r.set(f"k{i}", "v")
for i in range(10):
    r.get(f"k{i}")
print("done", flush=True)
sys.stdin.readline()
"""


def test_database_metrics_and_edges(weft_factory, redis_server):  # noqa: F811 (fixture)
    import subprocess

    from conftest import PY

    env = dict(os.environ, OTEL_SERVICE_NAME="cache-user")
    client = subprocess.Popen([PY, "-c", REDIS_CLIENT, str(redis_server.port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = free_port()
        weft_factory(["attach", "-p", str(client.pid), "--prometheus", f"127.0.0.1:{port}"])
        client.stdin.write("go\n")
        client.stdin.flush()
        assert client.stdout.readline() == "done\n"
        db = "db_client_operation_duration_seconds_count"
        samples = wait_for(port, lambda s: total(s, db) >= 30)
        common = dict(service_name="cache-user", db_system_name="redis", server_address="127.0.0.1",
                      server_port=str(redis_server.port))
        assert total(samples, db, db_operation_name="SET", **common) == 20
        assert total(samples, db, db_operation_name="GET", **common) == 10
        # The database is a node of the service graph, by its address.
        assert total(samples, "traces_service_graph_request_total", client="cache-user", server="127.0.0.1",
                     connection_type="database") == total(samples, db)
    finally:
        client.stdin.close()
        client.wait(10)


def test_otlp_metrics_over_grpc(weft_factory, py_service):
    """OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc: MetricsService/Export over
    h2c, received by grpcio with Debian's generated service."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as ms_pb2
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as ms_grpc

    got = []

    class Servicer(ms_grpc.MetricsServiceServicer):
        def Export(self, request, context):
            got.append(request)
            return ms_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    ms_grpc.add_MetricsServiceServicer_to_server(Servicer(), server)
    gport = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        a = py_service(name="svc-g")
        env = dict(os.environ, OTEL_METRICS_EXPORTER="otlp", OTEL_METRIC_EXPORT_INTERVAL="200",
                   OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="grpc",
                   OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{gport}")
        w = weft_factory(["attach", "-p", str(a.pid)], env=env)
        for _ in range(12):
            assert get(a.url("/g")) == 200
        w.stop()
        assert got, w.stderr
        recv = MetricsReceiver.__new__(MetricsReceiver)
        pts = [p for p in recv.points(got[-1]) if p[1] == "http.server.request.duration"]
        assert [(p[0], p[3].count) for p in pts] == [("svc-g", 12)]
        assert "0 failed" in w.stderr, w.stderr
    finally:
        server.stop(0)
