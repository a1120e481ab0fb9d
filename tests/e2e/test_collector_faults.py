"""Collector faults with real components: a traced nginx, weft exporting over
OTLP to the test receiver (tests/otlp_receiver.py, decoding with the
official opentelemetry-proto classes) or to a raw TCP server that answers
garbage. Whatever the collector does, weft keeps tracing (spans keep coming
on its JSON output), its memory stays bounded, every span is exported once
or counted as dropped, and SIGTERM ends it within its flush budget.

Needs root and eBPF: /usr/bin/python3 -m pytest tests/e2e/test_collector_faults.py
"""
import email.utils
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, free_port

sys.path.insert(0, os.path.dirname(__file__))
from test_otlp import attr, counters, otlp_env, receiver, rss_kb  # noqa: E402,F401

PAD = "x" * 900  # ~1 kB per span: what an unbounded queue would hold shows in RSS


def burst(url, n, parallel=8):
    """n GET requests url?n=1..n with curl (keep-alive, parallel)."""
    subprocess.run(["curl", "-s", "--parallel", "--parallel-max", str(parallel), f"{url}?n=[1-{n}]"],
                   stdout=subprocess.DEVNULL, check=True, timeout=300)


def nginx_attach(nginx):
    return ["attach"] + sum((["-p", str(p)] for p in nginx.pids), [])


def path_of(span):
    return span["attributes"].get("url.path", "")


class RssMax:
    """Highest RSS of pid while running (sampled every 50 ms)."""

    def __init__(self, pid):
        self.pid, self.max, self._stop = pid, rss_kb(pid), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.05):
            try:
                self.max = max(self.max, rss_kb(self.pid))
            except OSError:
                return

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.max


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_collector_down_mid_run(receiver, weft_factory, nginx, protocol):
    """The collector accepts, goes away while thousands of requests are
    traced, then comes back on the same port: weft traces throughout, its
    queue (512 spans) bounds its memory, what did not fit is counted, export
    resumes without a restart, no span arrives twice, and every span is
    either exported or counted as dropped."""
    r1 = receiver(protocol)
    env = otlp_env(r1, OTEL_BSP_MAX_QUEUE_SIZE=512, OTEL_BSP_MAX_EXPORT_BATCH_SIZE=128,
                   OTEL_BSP_EXPORT_TIMEOUT=5000)
    w = weft_factory(nginx_attach(nginx), env=env, outputs="otlp,json")
    burst(nginx.url("/k/up"), 300)
    assert len(r1.wait_spans(300, timeout=20)) == 300
    r1.stop()

    time.sleep(0.3)
    rss = RssMax(w.proc.pid)
    rss0 = rss.max
    down = 4000
    burst(nginx.url("/k/down/" + PAD), down)
    traced = w.wait_spans(lambda s: path_of(s).startswith("/k/down/"), count=down, timeout=30)
    peak = rss.stop()
    assert w.proc.poll() is None, w.stderr
    assert len(traced) >= down * 0.95, f"weft stopped tracing while the collector was down: {len(traced)}"
    deadline = time.time() + 10
    while "will retry" not in w.stderr and time.time() < deadline:
        time.sleep(0.1)
    assert "will retry" in w.stderr
    # 4000 queued spans would be 4+ MB; the queue holds 512 (+ the batch in retry)
    assert peak - rss0 < 2500, f"RSS grew by {peak - rss0} kB with the collector down"

    r2 = receiver(protocol, port=r1.port)
    # the backlog (the full queue) goes first, within the backoff (<= 5 s)
    assert len(r2.wait_spans(512, timeout=15)) >= 512, w.stderr
    burst(nginx.url("/k/back"), 300)
    back = r2.wait_spans(300, timeout=30, pred=lambda s: attr(s[2], "url.path") == "/k/back")
    assert len(back) == 300, f"export did not resume: {len(back)} of 300\n{w.stderr}"
    t0 = time.time()
    assert w.stop(signal.SIGTERM) == 0
    assert time.time() - t0 < 6
    c = counters(w)
    got = r1.spans() + r2.spans()
    ids = [s[2].span_id for s in got]
    assert len(ids) == len(set(ids)), "a span was exported twice"
    assert c["exported"] == len(got), (c, len(got))
    assert c["received"] == c["exported"] + c["dropped"], c
    assert c["received"] >= 600 + down * 0.95, c
    assert c["queue_full"] > 0 and c["retries"] > 0 and c["errors"] > 0, c
    # the queue held what it could: those spans were exported after the outage
    assert len([s for s in got if attr(s[2], "url.path").startswith("/k/down/")]) >= 512, c
    m = re.search(r"otlp: export succeeded after (\d+) failed attempts?; (\d+) spans dropped meanwhile", w.stderr)
    assert m and int(m.group(2)) == c["queue_full"], w.stderr
    print(f"{protocol}: collector down: RSS +{peak - rss0} kB; counters {c}")


def test_slow_collector(receiver, weft_factory, nginx):
    """A collector answering after 5 s: spans keep coming out of the kernel
    at once (the event thread never waits on the network), every span is
    exported once, and SIGTERM with an export in flight ends as soon as it
    is answered."""
    r = receiver(delay=5)
    w = weft_factory(nginx_attach(nginx), env=otlp_env(r), outputs="otlp,json")
    worst = 0.0
    for i in range(10):
        t = time.time()
        subprocess.run(["curl", "-s", "-o", "/dev/null", nginx.url(f"/k/slow/{i}")], check=True)
        assert w.wait_spans(lambda s: path_of(s) == f"/k/slow/{i}", timeout=5), w.stderr
        worst = max(worst, time.time() - t)
        time.sleep(0.3)
    assert worst < 1.5, f"a span took {worst:.1f} s to come out with the collector slow"
    assert r.attempts >= 1
    # an export is in flight (the collector sleeps): SIGTERM flushes and ends
    deadline = time.time() + 15
    while r.attempts < 2 and time.time() < deadline:
        time.sleep(0.05)
    t0 = time.time()
    assert w.stop(signal.SIGTERM) == 0
    took = time.time() - t0
    assert took < 12, f"SIGTERM took {took:.1f} s"
    c = counters(w)
    ids = [s[2].span_id for s in r.spans()]
    assert len(ids) == len(set(ids)) == c["exported"] == 10, (c, len(ids))
    assert c["dropped"] == 0 and c["errors"] == 0, c


@pytest.mark.parametrize("retry_after", ["2", "date"])
def test_429_retry_after_honoured(receiver, weft_factory, nginx, retry_after):
    """429 Too Many Requests with Retry-After (seconds, or an HTTP date):
    weft waits that long before retrying, counts the retries, and delivers
    every span once."""
    r = receiver(fail_status=429, fail_times=2)
    r.retry_after = (retry_after if retry_after != "date" else
                     email.utils.formatdate(time.time() + 3, usegmt=True))
    w = weft_factory(nginx_attach(nginx), env=otlp_env(r), outputs="otlp")
    burst(nginx.url("/k/throttled"), 20)
    spans = r.wait_spans(20, timeout=20)
    ids = [s[2].span_id for s in spans]
    assert len(ids) == len(set(ids)) == 20
    gaps = [b - a for a, b in zip(r.attempt_times, r.attempt_times[1:])]
    assert gaps[0] >= 1.9, gaps
    assert w.stop(signal.SIGTERM) == 0
    c = counters(w)
    assert c["exported"] == 20 and c["dropped"] == 0 and c["retries"] == 2 and c["errors"] == 2, c
    assert "HTTP 429" in w.stderr


def test_retry_after_zero_is_no_busy_loop(receiver, weft_factory, nginx):
    """A collector that answers 503 with Retry-After: 0 to everything: weft
    still backs off (1 s, doubling) instead of hammering it in a loop."""
    r = receiver(fail_status=503, retry_after="0")
    w = weft_factory(nginx_attach(nginx), env=otlp_env(r, OTEL_BSP_EXPORT_TIMEOUT=1000), outputs="otlp")
    burst(nginx.url("/k/zero"), 5)
    deadline = time.time() + 10
    while not r.attempts and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(3)
    attempts = r.attempts
    assert w.stop(signal.SIGTERM) == 0
    assert 1 <= attempts <= 4, f"{attempts} requests in 3 s: no backoff"
    c = counters(w)
    assert c["exported"] == 0 and c["dropped"] == c["received"] == 5, c


def test_retry_after_huge_is_capped(receiver, weft_factory, nginx):
    """Retry-After of 10^20 seconds: the wait is capped at a minute, and
    SIGTERM still ends weft within its flush budget."""
    r = receiver(fail_status=503, retry_after="99999999999999999999")
    w = weft_factory(nginx_attach(nginx), env=otlp_env(r, OTEL_BSP_EXPORT_TIMEOUT=1000), outputs="otlp")
    burst(nginx.url("/k/huge"), 5)
    deadline = time.time() + 10
    while not r.attempts and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(3)
    assert r.attempts == 1, "Retry-After was not honoured"
    t0 = time.time()
    assert w.stop(signal.SIGTERM) == 0
    assert time.time() - t0 < 3
    c = counters(w)
    assert c["dropped"] == c["shutdown"] == c["received"] == 5, c


class GarbageServer:
    """A TCP server that reads each request, then misbehaves (`mode`)."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        rnd = random.Random(self.connections)
        try:
            conn.settimeout(30)
            conn.recv(65536)
            m = self.mode
            if m == "random":
                conn.sendall(bytes(rnd.randrange(256) for _ in range(4096)))
            elif m == "close":
                pass
            elif m == "huge-503":
                conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
                chunk = b"z" * 65536
                for _ in range(1024):
                    conn.sendall(chunk)
            elif m == "endless-headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for i in range(100000):
                    conn.sendall(b"X-Junk-%d: %s\r\n" % (i, b"j" * 100))
            elif m == "drip":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stopping.wait(0.3):
                    conn.sendall(b"X")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.sock.close()


@pytest.mark.parametrize("protocol,mode", [
    ("http", "random"), ("http", "close"), ("http", "huge-503"), ("http", "endless-headers"),
    ("http", "drip"), ("grpc", "random"), ("grpc", "close"), ("grpc", "drip")])
def test_garbage_collector(weft_factory, nginx, protocol, mode):
    """Whatever a broken collector sends, weft keeps tracing, keeps what it
    reads of an answer bounded, retries with backoff, counts every span as
    dropped, and ends on SIGTERM within its flush budget."""
    g = GarbageServer(mode)
    try:
        env = otlp_env(None, endpoint=f"http://127.0.0.1:{g.port}", OTEL_EXPORTER_OTLP_TIMEOUT=2000,
                       OTEL_BSP_EXPORT_TIMEOUT=1000,
                       OTEL_EXPORTER_OTLP_PROTOCOL="grpc" if protocol == "grpc" else "http/protobuf")
        w = weft_factory(nginx_attach(nginx), env=env, outputs="otlp,json")
        rss0 = rss_kb(w.proc.pid)
        rss = RssMax(w.proc.pid)
        for i in range(3):
            burst(nginx.url(f"/k/g{i}"), 50)
            assert len(w.wait_spans(lambda s: path_of(s) == f"/k/g{i}", count=50)) == 50
            time.sleep(1)
        deadline = time.time() + 10
        while "will retry" not in w.stderr and time.time() < deadline:
            time.sleep(0.1)
        peak = rss.stop()
        t0 = time.time()
        assert w.stop(signal.SIGTERM) == 0, w.stderr
        assert time.time() - t0 < 4
        c = counters(w)
        assert c["received"] == 150 and c["exported"] == 0 and c["dropped"] == 150, c
        assert c["errors"] >= 1, c
        assert "will retry" in w.stderr, w.stderr
        assert g.connections <= 8, f"{g.connections} connections in ~5 s: no backoff"
        # a 64 MiB error body is read and dropped, never held
        assert peak - rss0 < 4000, f"RSS grew by {peak - rss0} kB"
    finally:
        g.stop()


def test_collector_answering_html(weft_factory, nginx, receiver):
    """An endpoint that answers 200 with something that is not an OTLP
    response (a web page, a proxy's login form): the spans count as exported
    (the server said so), and weft says once that the endpoint may not be an
    OTLP receiver."""
    r = receiver(ok_body=b"<html><body>Sign in</body></html>")
    w = weft_factory(nginx_attach(nginx), env=otlp_env(r), outputs="otlp")
    for i in range(3):
        burst(nginx.url(f"/k/html{i}"), 10)
        r.wait_spans(10 * (i + 1))
    assert w.stop(signal.SIGTERM) == 0
    c = counters(w)
    assert c["exported"] == 30, c
    assert w.stderr.count("not an OTLP response") == 1, w.stderr
    assert "text/html" in w.stderr
