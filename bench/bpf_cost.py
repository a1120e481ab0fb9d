#!/usr/bin/python3
"""BPF CPU per HTTP/1 exchange, per side (the socket-layer capture issue's
<= 2 us target): nginx (plain HTTP/1.1, keep-alive) and a Python http.client
keep-alive client making N requests on one connection; weft attached to the
server only, then to the client only. bpf_stats run_time_ns and run_cnt of
every weft program, divided by N. Prints figures, asserts nothing.

Run as root from the repository after `make`:
    /usr/bin/python3 bench/bpf_cost.py [N] [ROUNDS]
WEFT_CAPTURE_FRONT=syscall measures the fallback front; BENCH_PERF=file records
a profile of the traced processes (perf record -p; file.server, file.client)
while the client runs. With a weft built with -DWEFT_PROFILE (bpf/lib/profile.bpf.h:
`make BUILD=build-prof BPF_EXTRA=-DWEFT_PROFILE build-prof/weft`, then WEFT=build-prof/weft),
the capture front's time per step is printed too."""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from conftest import Nginx  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
WEFT = os.environ.get("WEFT", os.path.join(ROOT, "build", "weft"))
# bpf/lib/profile.bpf.h's enum weft_prof_slot, in order.
PROF_SLOTS = ["io args", "tls check", "on_data entry", "txns lookup", "conn get", "detect prep", "detect",
              "txn header", "request copy", "trace context", "serving context", "slot insert",
              "response capture", "response more", "ringbuf flags", "ringbuf output", "release"]
WEFT_PREFIXES = ("sock_", "sys_", "tcp_", "task_", "sched_", "weft_", "http2_", "probe_", "go_", "inet_")


def prog_stats():
    out = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout)
    return {(p["id"], p.get("name", "")): (p.get("run_time_ns", 0), p.get("run_cnt", 0)) for p in out}


def one_round(ngx, side):
    urls = [f"GET {ngx.url(f'/k/{i}')}" for i in range(N)]
    cl = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "apps", "py", "http_client.py")] + urls,
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    pids = ngx.pids if side == "server" else [cl.pid]
    # An idle process traced too: weft stays until the counts are read (it
    # stops when every process it traces has exited, the client's at once).
    idle = subprocess.Popen(["sleep", "3600"])
    args = [WEFT, "attach", "--propagation", "off", "-o", "json"]
    args += [a for p in pids + [idle.pid] for a in ("-p", str(p))]
    spans = tempfile.TemporaryFile()
    w = subprocess.Popen(args, stdout=spans, stderr=subprocess.PIPE, text=True)
    try:
        for line in w.stderr:
            if "ready:" in line:
                break
        before = prog_stats()
        perf = None
        if os.environ.get("BENCH_PERF"):  # a profile of the host while the client runs
            perf = subprocess.Popen(["perf", "record", "-F", "20000", "-p", ",".join(map(str, pids)),
                                     "-o", f"{os.environ['BENCH_PERF']}.{side}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        cl.communicate("go\n", timeout=300)
        if perf:
            perf.send_signal(2)
            perf.wait()
        time.sleep(0.3)
        after = prog_stats()
        prof = prof_sums()
    finally:
        w.send_signal(2)
        w.wait()
        idle.kill()
        idle.wait()
    spans.seek(0)
    n_spans = sum(1 for line in spans if b'"kind"' in line)
    per = {}
    for k, (ns, cnt) in after.items():
        if k not in before:
            continue
        dns, dcnt = ns - before[k][0], cnt - before[k][1]
        if dcnt and k[1].startswith(WEFT_PREFIXES):
            t = per.setdefault(k[1], [0, 0])
            t[0] += dns
            t[1] += dcnt
    return per, n_spans, prof


def prof_sums():
    """(ns, count) per checkpoint slot of a -DWEFT_PROFILE build, summed over
    CPUs; None without it."""
    r = subprocess.run(["bpftool", "-j", "map", "dump", "name", "weft_prof"], capture_output=True, text=True)
    if r.returncode:
        return None

    def num(v):
        return v if isinstance(v, int) else int.from_bytes(bytes(int(x, 16) for x in v), "little")
    vals = {}
    for e in json.loads(r.stdout):
        vals[num(e["key"])] = sum(num(c["value"]) for c in e["values"])
    return [(vals.get(2 * i, 0), vals.get(2 * i + 1, 0)) for i in range(len(PROF_SLOTS))]


def main():
    d = tempfile.mkdtemp(prefix="weft-bpf-cost-")
    ngx = Nginx(d)
    prev = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    front = os.environ.get("WEFT_CAPTURE_FRONT", "default")
    try:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
        for side in ("server", "client"):
            totals = []
            last = None
            for _ in range(ROUNDS):
                per, n_spans, prof = one_round(ngx, side)
                totals.append(sum(v[0] for v in per.values()) / N)
                last = (per, n_spans, prof)
            totals.sort()
            print(f"== {side} side traced, front {front}: {N} requests, {ROUNDS} rounds, "
                  f"spans in the last round {last[1]}")
            for name, (ns, cnt) in sorted(last[0].items(), key=lambda kv: -kv[1][0]):
                print(f"   {name:24s} {ns / N:8.0f} ns per exchange ({cnt / N:5.2f} runs, {ns / cnt:6.0f} ns per run)")
            print(f"   {'total':24s} {totals[len(totals) // 2]:8.0f} ns per exchange (median, min {totals[0]:.0f}; "
                  f"rounds {', '.join(f'{t:.0f}' for t in totals)})")
            if last[2]:
                print("   capture front by step (last round; each checkpoint adds ~25 ns):")
                for name, (ns, cnt) in zip(PROF_SLOTS, last[2]):
                    if cnt:
                        print(f"     {name:22s} {ns / N:8.0f} ns per exchange ({cnt / N:5.2f} times, "
                              f"{ns / cnt:6.0f} ns each)")
    finally:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(prev)
        ngx.stop()


if __name__ == "__main__":
    main()
