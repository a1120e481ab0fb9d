"""The build's own test targets."""
import os
import subprocess

from conftest import ROOT


def test_make_unit_runs_every_binary_and_reports_all_failures(tmp_path):
    """One failing unit binary must not hide the others: all run, every
    failure is named, and make fails."""
    bins = []
    for name, rc in (("test_a_fails", 1), ("test_b_passes", 0), ("test_c_fails", 3)):
        p = tmp_path / name
        p.write_text(f"#!/bin/sh\necho ran {name}\nexit {rc}\n")
        p.chmod(0o755)
        bins.append(str(p))
    r = subprocess.run(["make", "-s", "unit", f"UNIT_BINS={' '.join(bins)}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    for name in ("test_a_fails", "test_b_passes", "test_c_fails"):
        assert f"ran {name}" in out, out
    assert "2 of 3 unit test binaries failed: test_a_fails test_c_fails" in out, out


def test_fuzz_short_runs_every_fuzzer_and_reports_all_failures(tmp_path):
    """make fuzz-short (part of make test) runs each fuzzer for FUZZ_SECONDS,
    all of them whatever fails, and names every failure."""
    fuzzers = []
    for name, rc in (("fuzz_crashes", 77), ("fuzz_clean", 0)):
        p = tmp_path / name
        p.write_text(f"#!/bin/sh\necho \"ran {name} for $1 s\"\necho 'Done 5 runs in 1 second(s)'\nexit {rc}\n")
        p.chmod(0o755)
        fuzzers.append(str(p))
    r = subprocess.run(["make", "-s", "fuzz-short", "FUZZ_SECONDS=2", f"FUZZERS={' '.join(fuzzers)}",
                        f"BUILD={tmp_path}/build"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "ran fuzz_crashes for 2 s" in out and "Done 5 runs" in out, out
    assert "fuzzers failed: fuzz_crashes" in out, out
