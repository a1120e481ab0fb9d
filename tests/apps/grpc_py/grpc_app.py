"""A gRPC service and client with Python's grpcio (gRPC C-core's own HTTP/2),
generic handlers and raw bytes: no generated code.

  grpc_app.py server [--next PORT]   prints its port, serves demo.Echo:
      Ping (unary; b"fail" -> INTERNAL, b"nf" -> NOT_FOUND, b"slow" sleeps 2 s,
            b"tp?" answers the traceparent values it received; with --next,
            calls Ping on that port first: a chain)
      List (server-streaming: 3 messages), Sum (client-streaming)
  grpc_app.py client PORT CALL...    waits for a line on stdin (so that a
      tracer can attach first), then makes the calls and prints one line each:
      ping:ARG list sum:N nope slow (a 0.3 s deadline) slowwait (none)
      traceparent:TP (a Ping carrying that
      traceparent as metadata: prints what the server received)
"""
import sys
import time
from concurrent import futures

import grpc


def ident(x):
    return x


class Echo(grpc.GenericRpcHandler):
    def __init__(self, next_port):
        self.next = None
        if next_port:
            ch = grpc.insecure_channel(f"127.0.0.1:{next_port}")
            self.next = ch.unary_unary("/demo.Echo/Ping", ident, ident)

    def ping(self, req, ctx):
        if req == b"fail":
            ctx.abort(grpc.StatusCode.INTERNAL, "boom")
        if req == b"nf":
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        if req == b"slow":
            print("slow", flush=True)  # the call is in (tests wait for this line)
            time.sleep(2)
        if self.next:
            return b"via:" + self.next(req)
        if req == b"tp?":  # the traceparent values this call arrived with
            return ",".join(v for k, v in ctx.invocation_metadata() if k == "traceparent").encode()
        return b"pong:" + req

    def list(self, req, ctx):
        for i in range(3):
            yield b"item%d" % i

    def sum(self, it, ctx):
        return b"n=%d" % sum(1 for _ in it)

    def service(self, details):
        return {
            "/demo.Echo/Ping": lambda: grpc.unary_unary_rpc_method_handler(self.ping, ident, ident),
            "/demo.Echo/List": lambda: grpc.unary_stream_rpc_method_handler(self.list, ident, ident),
            "/demo.Echo/Sum": lambda: grpc.stream_unary_rpc_method_handler(self.sum, ident, ident),
        }.get(details.method, lambda: None)()


def serve(argv):
    next_port = int(argv[argv.index("--next") + 1]) if "--next" in argv else None
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((Echo(next_port),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def client(port, calls):
    sys.stdin.readline()
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    ping = ch.unary_unary("/demo.Echo/Ping", ident, ident)
    for call in calls:
        name, _, arg = call.partition(":")
        try:
            if name == "ping":
                out = ping(arg.encode()).decode()
            elif name == "slow":
                out = ping(b"slow", timeout=0.3).decode()
            elif name == "slowwait":  # no deadline
                out = ping(b"slow").decode()
            elif name == "traceparent":  # sent with its own traceparent: what the server got
                out = ping(b"tp?", metadata=(("traceparent", arg),)).decode()
            elif name == "list":
                out = ",".join(m.decode() for m in ch.unary_stream("/demo.Echo/List", ident, ident)(b""))
            elif name == "sum":
                out = ch.stream_unary("/demo.Echo/Sum", ident, ident)(iter([b"x"] * int(arg))).decode()
            elif name == "nope":
                out = ch.unary_unary("/demo.Echo/Nope", ident, ident)(b"").decode()
            else:
                raise SystemExit(f"unknown call {call}")
        except grpc.RpcError as e:
            out = e.code().name
        print(f"{call} {out}", flush=True)
    ch.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2:])
    else:
        client(int(sys.argv[2]), sys.argv[3:])
