"""BPF run statistics for the benchmarks: kernel.bpf_stats_enabled turned on
for a counting run and put back after (also on errors: call restore() from
the benchmark's cleanup), run counts and times of the programs one process
holds, and the price bpf_stats' own clock reads add to every run, measured
with no-op programs on the socket front's tracepoints (bench/stats_floor,
built by make bench)."""
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
FLOOR = os.path.join(ROOT, "build", "bench", "stats_floor")

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
