#!/usr/bin/python3
"""A test OTLP trace receiver for weft's tests and benchmarks.

OTLP/HTTP (protobuf, optional gzip) on http.server and OTLP/gRPC on grpcio,
decoding with the official generated classes of Debian's
python3-opentelemetry-proto. It records every request (headers, decoded
ExportTraceServiceRequest) and can misbehave on demand: answer an error
status a given number of times, always, or hang.

Library use (tests):
    r = Receiver("http")          # or "grpc"; port=0 picks a free port
    r.start(); ...; r.spans()     # [(resource_attrs, scope, span_proto)]
    r.stop()

Command line (benchmarks): otlp_receiver.py --protocol grpc --port 4317
prints "listening PORT" then, on SIGTERM/SIGINT, "spans N requests M".
"""
import argparse
import gzip
import http.server
import signal
import socket
import ssl
import sys
import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as ts_grpc

HTTP_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def any_value(v):
    """AnyValue -> Python value, keeping the type (int stays int)."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


class Request:
    def __init__(self, headers, body_size, message):
        self.headers = headers  # lowercase name -> value
        self.body_size = body_size
        self.message = message  # ExportTraceServiceRequest

    def span_count(self):
        return sum(len(ss.spans) for rs in self.message.resource_spans for ss in rs.scope_spans)


class Receiver:
    """fail_times: answer `fail_status` to this many requests, then accept.
    fail_status with fail_times=None: always. hang: never answer (until stop).
    retry_after: Retry-After sent with 429/503 (HTTP only), as given (seconds
    or an HTTP date). reject: partial_success.rejected_spans in each OK
    answer. delay: seconds to wait before answering (a slow collector).
    ok_body: bytes sent instead of an ExportTraceServiceResponse (HTTP)."""

    def __init__(self, protocol="http", port=0, count_only=False, tls=None):
        self.protocol = protocol
        self.tls = tls  # (cert_file, key_file): serve TLS (https, gRPC over TLS)
        self.port = port or free_port()
        self.count_only = count_only
        self.lock = threading.Lock()
        self.requests = []
        self.attempts = 0
        self.attempt_times = []  # time.time() of every request, accepted or not
        self.span_total = 0
        self.fail_status = None
        self.fail_times = None
        self.hang = False
        self.retry_after = None
        self.reject = 0
        self.delay = 0
        self.ok_body = None
        self._stopping = threading.Event()
        self._conns = set()  # open HTTP connections
        self._server = None
        self._thread = None

    # -- behaviour ------------------------------------------------------
    def _decide(self):
        """Returns None (accept), "hang", or an error status, and counts."""
        with self.lock:
            self.attempts += 1
            self.attempt_times.append(time.time())
            if self.hang:
                return "hang"
            delay = self.delay
        if delay and self._stopping.wait(delay):
            return "hang"
        with self.lock:
            if self.fail_status is not None:
                if self.fail_times is None:
                    return self.fail_status
                if self.fail_times > 0:
                    self.fail_times -= 1
                    return self.fail_status
            return None

    def _record(self, headers, body_size, msg):
        with self.lock:
            n = sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)
            self.span_total += n
            if not self.count_only:
                self.requests.append(Request(headers, body_size, msg))

    def _response(self):
        resp = ts_pb2.ExportTraceServiceResponse()
        if self.reject:
            resp.partial_success.rejected_spans = self.reject
            resp.partial_success.error_message = "test receiver rejects some spans"
        return resp

    # -- results --------------------------------------------------------
    def spans(self):
        """[(resource attributes dict, scope, span)] in arrival order."""
        out = []
        with self.lock:
            for req in self.requests:
                for rs in req.message.resource_spans:
                    ra = attrs(rs.resource.attributes)
                    for ss in rs.scope_spans:
                        for sp in ss.spans:
                            out.append((ra, ss.scope, sp))
        return out

    def wait_spans(self, n, timeout=15.0, pred=None):
        """Waits for at least n spans (matching pred if given); returns them."""
        deadline = time.time() + timeout
        while True:
            got = [s for s in self.spans() if pred is None or pred(s)]
            if len(got) >= n or time.time() > deadline:
                return got
            time.sleep(0.05)

    @property
    def endpoint(self):
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}"

    # -- lifetime -------------------------------------------------------
    def start(self):
        if self.protocol == "http":
            self._start_http()
        else:
            self._start_grpc()
        return self

    def stop(self):
        self._stopping.set()
        if self._server is None:
            return
        if self.protocol == "http":
            self._server.shutdown()
            self._server.server_close()
            # a stopped collector keeps no connection open (keep-alive
            # connections would otherwise still be served)
            with self.lock:
                conns = list(self._conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._thread.join(5)
        else:
            self._server.stop(0).wait(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP -----------------------------------------------------------
    def _start_http(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver._conns.add(self.connection)

            def finish(self):
                with receiver.lock:
                    receiver._conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/traces":
                    return self._reply(404, b"not found", "text/plain")
                decision = receiver._decide()
                if decision == "hang":
                    receiver._stopping.wait()
                    return
                if decision is not None:
                    extra = {}
                    if receiver.retry_after is not None and decision in (429, 503):
                        extra["Retry-After"] = str(receiver.retry_after)
                    return self._reply(decision, b"test receiver says no", "text/plain", extra)
                size = len(body)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.headers.get("Content-Type") != "application/x-protobuf":
                    return self._reply(415, b"bad content type", "text/plain")
                msg = ts_pb2.ExportTraceServiceRequest()
                try:
                    msg.ParseFromString(body)
                except Exception:
                    return self._reply(400, b"bad protobuf", "text/plain")
                receiver._record({k.lower(): v for k, v in self.headers.items()}, size, msg)
                if receiver.ok_body is not None:
                    return self._reply(200, receiver.ok_body, "text/html")
                self._reply(200, receiver._response().SerializeToString(), "application/x-protobuf")

            def _reply(self, status, body, ctype, extra=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # -- gRPC -----------------------------------------------------------
    def _start_grpc(self):
        receiver = self

        class Servicer(ts_grpc.TraceServiceServicer):
            def Export(self, request, context):
                decision = receiver._decide()
                if decision == "hang":
                    receiver._stopping.wait()
                    context.abort(grpc.StatusCode.UNAVAILABLE, "stopping")
                if decision is not None:
                    code = HTTP_TO_GRPC.get(decision, grpc.StatusCode.INVALID_ARGUMENT)
                    context.abort(code, "test receiver says no")
                headers = {k.lower(): v for k, v in context.invocation_metadata()}
                receiver._record(headers, request.ByteSize(), request)
                return receiver._response()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                   options=[("grpc.max_receive_message_length", 64 << 20)])
        ts_grpc.add_TraceServiceServicer_to_server(Servicer(), self._server)
        if self.tls:
            with open(self.tls[0], "rb") as c, open(self.tls[1], "rb") as k:
                creds = grpc.ssl_server_credentials([(k.read(), c.read())])
            self._server.add_secure_port(f"127.0.0.1:{self.port}", creds)
        else:
            self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        self._server.start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=["http", "grpc"], default="http")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    r = Receiver(args.protocol, args.port, count_only=True).start()
    print(f"listening {r.port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    while not done.wait(0.5):
        pass
    r.stop()
    print(f"spans {r.span_total} requests {r.attempts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
