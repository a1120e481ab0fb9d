"""Ratios of interleaved benchmark cycles, shared by bench/go_overhead,
bench/http_overhead and bench/db_overhead.

This machine's speed moves by 10-20% within an hour, more than most changes
to weft: one "without weft" run against one "with weft" run proves little.
So a benchmark runs rounds (cycles) in mirrored order (without, with, then
with, without, ...), each round gives one ratio (its own runs: with /
without), and what is reported is the median of those ratios with their
spread (lowest-highest), as the socket-layer capture issue asks (at least
three cycles). A target is judged on the median.
"""


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return float("nan")
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def cycle_ratios(base, traced):
    """One ratio per round: traced[i] / base[i] (the rates of round i's two
    runs, in the order they ran). Rounds with a zero base are skipped."""
    return [t / b for b, t in zip(base, traced) if b]


def summary(ratios):
    """'0.87 (0.84-0.90)': the median ratio and the spread; one round: the
    ratio alone."""
    if not ratios:
        return "-"
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}"
    return f"{median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def verdict(name, ratios, target):
    """'nginx 0.87 (0.84-0.90) misses >= 0.95' for the closing line."""
    m = median(ratios)
    return f"{name} {summary(ratios)} {'meets' if m >= target else 'misses'} >= {target:.2f}"
