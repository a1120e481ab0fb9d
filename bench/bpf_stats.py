"""BPF run statistics for the benchmarks: kernel.bpf_stats_enabled turned on
for a counting run and put back after (also on errors: call restore() from
the benchmark's cleanup), run counts and times of the programs one process
holds, and the price bpf_stats' own clock reads add to every run, measured
with no-op programs on the socket front's tracepoints (bench/stats_floor,
built by make bench)."""
import json
import os
import subprocess

from cycles import median

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
FLOOR = os.path.join(ROOT, "build", "bench", "stats_floor")
TARGET_US = 2.0  # the socket-layer capture issue's BPF CPU per exchange

_saved = None  # kernel.bpf_stats_enabled as found, until restore()


def enable():
    """kernel.bpf_stats_enabled=1; the value found first is put back by restore()."""
    global _saved
    with open(SYSCTL) as f:
        cur = f.read().strip()
    if _saved is None:
        _saved = cur
    if cur != "1":
        with open(SYSCTL, "w") as f:
            f.write("1\n")


def restore(log):
    global _saved
    if _saved is None:
        return
    try:
        with open(SYSCTL, "w") as f:
            f.write(_saved + "\n")
    except OSError as e:
        log(f"could not restore kernel.bpf_stats_enabled={_saved}: {e}")
    _saved = None


def prog_ids(pid):
    """IDs of the BPF programs process pid holds (prog and link fds), so
    another weft running on the machine is not counted."""
    ids = set()
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def prog_stats():
    """{id: (type, name, run_cnt, run_time_ns)} of every loaded BPF program."""
    out = subprocess.run(["bpftool", "prog", "show", "--json"], stdout=subprocess.PIPE, check=True).stdout
    return {p["id"]: (p.get("type", ""), p.get("name", ""), p.get("run_cnt", 0), p.get("run_time_ns", 0))
            for p in json.loads(out or b"[]")}


def totals(before, after, ids):
    """(runs, ns) the programs ids added between two prog_stats()."""
    runs = ns = 0
    for i in ids:
        if i in after:
            b = before.get(i, ("", "", 0, 0))
            runs += after[i][2] - b[2]
            ns += after[i][3] - b[3]
    return runs, ns


def floor_start(start, stop):
    """Starts bench/stats_floor with the benchmark's start() (stop() to end
    it): no-op programs on the socket front's tracepoints, whose time per
    run in bpf_stats is its own clock reads. None where it was not built or
    cannot attach (kernel < 6.3)."""
    if not os.access(FLOOR, os.X_OK):
        return None
    p = start([FLOOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        stop(p)
        return None
    return p


def clock_per_run(before, after, floor):
    """ns per run of the no-op programs of floor (a floor_start() process), or None."""
    if not floor:
        return None
    runs, ns = totals(before, after, prog_ids(floor.pid))
    return ns / runs if runs else None


def counted(run, holder_pid, start, stop, log):
    """Runs run() with bpf_stats on and bench/stats_floor attached. Returns
    (run's result, prog_stats() before, after, ids of the programs process
    holder_pid holds, bpf_stats' clock in ns per run or None)."""
    fl = floor_start(start, stop)
    enable()
    try:
        before = prog_stats()
        result = run()
        after = prog_stats()
        ids = prog_ids(holder_pid)
        clock = clock_per_run(before, after, fl)
    finally:
        restore(log)
        if fl:
            stop(fl)
    return result, before, after, ids, clock


def own_ns(r):
    """r's BPF time (bpf_ns over bpf_runs) less bpf_stats' clock, or None."""
    c = r.get("clock_ns_per_run")
    return r["bpf_ns"] - r["bpf_runs"] * c if c else None


TABLE_HEAD = ("all weft programs (bpf_stats) | program runs | a no-op program's run (bpf_stats' clock) "
              "| weft's programs less that clock |")
TABLE_RULE = "---:|---:|---:|---:|"
TABLE_NOTE = ("Program runs include the untraced wrk's (its socket calls pass the same tracepoints); "
              "bench/stats_floor's no-op programs on those tracepoints, during the same runs, give the "
              "price of bpf_stats' clock reads per run.")


def _figures(rs):
    """Per counted run (bpf_ns, bpf_runs, hit_requests, clock_ns_per_run):
    us per request, runs per request, clock ns per run, us less the clock."""
    per = [r["bpf_ns"] / r["hit_requests"] / 1000 for r in rs]
    runs = [r["bpf_runs"] / r["hit_requests"] for r in rs]
    clocks = [r["clock_ns_per_run"] for r in rs if r.get("clock_ns_per_run")]
    own = [own_ns(r) / r["hit_requests"] / 1000 for r in rs if r.get("clock_ns_per_run")]
    return per, runs, clocks, own


def table_cells(rs):
    """The four cells of TABLE_HEAD for a row's counted runs: median
    (lowest-highest)."""
    def spread(v, fm):
        return f"{median(v):{fm}} ({min(v):{fm}}-{max(v):{fm}})" if v else "-"
    per, runs, clocks, own = _figures(rs)
    return f"{spread(per, '.2f')} | {spread(runs, '.2f')} | {spread(clocks, '.0f')} ns | {spread(own, '.2f')} |"


def verdict(name, rs):
    """'BPF per nginx request 1.87 us (target <= 2: meets; 1.69 us less
    bpf_stats' clock)', judged on the figure with the clock."""
    per, _, _, own = _figures(rs)
    m = median(per)
    return (f"BPF per {name} request {m:.2f} us (target <= {TARGET_US:g}: "
            f"{'meets' if m <= TARGET_US else 'misses'}"
            + (f"; {median(own):.2f} us less bpf_stats' clock" if own else "") + ")")
