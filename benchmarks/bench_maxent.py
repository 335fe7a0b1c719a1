"""Benchmark of the exact MaxEnt solver: enumeration vs dynamic programming (docs/benchmarks.md).

Measures, in one run and on this machine:

1. Enumeration — :func:`maxent_il.gibbs.gibbs_stats` (log Z and the gradient term E_P f in one
   streaming pass) for ``last`` features at V^T ≈ 10^6 and 10^7, next to the seed's naive
   chunk loop (decode by T divisions, then ``costs`` and ``weighted_counts`` separately).
2. Dynamic programming — :func:`maxent_il.dynamic.soft_bellman` (log Z and E_P f) for ``last``
   features (``auto`` → the scaled matrix-product path, and the log-domain path) over a grid of
   V and T, and for ``time_last`` features at moderate sizes.
3. The ratio enumeration / DP at the largest size both can do, with the two log Z and E_P f
   compared (they must agree to ~1e-10).

Every time is the best of a few repeats with ``time.perf_counter``. No assertion is made on the
times; the script exits non-zero only when enumeration and DP disagree.

    python benchmarks/bench_maxent.py           # full run (about a minute on 2 CPU cores)
    python benchmarks/bench_maxent.py --quick   # small sizes, a few seconds (smoke test)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BLAS_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _preset_blas_threads(argv: list[str]) -> None:
    """Apply ``--blas-threads N`` before numpy is imported (BLAS reads it only at load time)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--blas-threads=") else None
        if arg == "--blas-threads" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None and value.isdigit() and int(value) > 0:
            for var in BLAS_ENV_VARS:
                os.environ[var] = value


if __name__ == "__main__":
    _preset_blas_threads(sys.argv[1:])

import numpy as np  # noqa: E402
import scipy  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maxent_il import gibbs  # noqa: E402
from maxent_il.dynamic import soft_bellman  # noqa: E402
from maxent_il.features import FeatureMap, StateActionFeatures  # noqa: E402
from maxent_il.space import SequenceSpace  # noqa: E402

#: Largest disagreement between enumeration and DP accepted by the built-in check.
AGREEMENT_TOL = 1e-10


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    section: str
    n_items: int
    horizon: int
    state: str
    method: str
    seconds: float
    note: str = ""


def best_time(fn: Callable[[], object], *, repeats: int, min_total: float = 0.2) -> float:
    """Best wall time of ``fn`` over at least ``repeats`` calls (more for very fast calls)."""
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_total and len(times) < 50):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_problem(n_items: int, horizon: int, state: str, *, seed: int, scale: float = 1.0):
    """Features of the given state and a seeded θ ~ N(0, scale²)."""
    feats = StateActionFeatures(SequenceSpace(n_items, horizon), state)
    theta = np.random.default_rng(seed).normal(scale=scale, size=feats.dim)
    return feats, theta


def naive_gibbs_stats(features: FeatureMap, theta: np.ndarray, chunk_size: int = 2**18):
    """The seed implementation's pass, kept as the 'before' reference.

    Decodes every chunk by T integer divisions per sequence, then evaluates the feature indices
    twice (once for the costs, once for the moments).
    """
    space = features.space
    running_max, mass, moments = -np.inf, 0.0, np.zeros(features.dim)
    for start in range(0, space.size, chunk_size):
        seqs = space.decode(np.arange(start, min(start + chunk_size, space.size)))
        neg_cost = -features.costs(theta, seqs)
        chunk_max = float(neg_cost.max())
        if chunk_max > running_max:
            scale = np.exp(running_max - chunk_max)
            mass, moments, running_max = mass * scale, moments * scale, chunk_max
        w = np.exp(neg_cost - running_max)
        mass += float(w.sum())
        moments = moments + features.weighted_counts(seqs, w)
    return running_max + np.log(mass), moments / mass


def bench_enumeration(sizes: list[tuple[int, int]], *, repeats: int, naive: bool) -> list[Row]:
    rows = []
    for V, T in sizes:
        feats, theta = make_problem(V, T, "last", seed=0)
        if naive:  # first, so that it runs in the allocator state it would meet on its own
            t_naive = best_time(lambda f=feats, th=theta: naive_gibbs_stats(f, th), repeats=1)
        t_fast = best_time(lambda f=feats, th=theta: gibbs.gibbs_stats(f, th), repeats=repeats)
        rows.append(Row("enumeration", V, T, "last", "gibbs_stats", t_fast, f"{V**T / t_fast:.2e} seq/s"))
        if naive:
            rows.append(
                Row("enumeration", V, T, "last", "seed loop (before)", t_naive, f"x{t_naive / t_fast:.2f}")
            )
    return rows


def bench_dp(
    grid: list[tuple[int, int]], states_methods: list[tuple[str, str]], *, repeats: int
) -> list[Row]:
    rows = []
    for state, method in states_methods:
        for V, T in grid:
            feats, theta = make_problem(V, T, state, seed=1)
            seconds = best_time(
                lambda f=feats, th=theta, m=method: soft_bellman(f, th, method=m), repeats=repeats
            )
            rows.append(Row("dp", V, T, state, f"soft_bellman {method}", seconds))
    return rows


def bench_ratio(n_items: int, horizon: int, *, repeats: int) -> tuple[list[Row], float]:
    """Enumeration and DP on the same problems; returns rows and the worst disagreement."""
    rows: list[Row] = []
    worst = 0.0
    for label, scale in (("θ~N(0,1)", 1.0), ("θ~N(0,300²)", 300.0)):
        feats, theta = make_problem(n_items, horizon, "last", seed=2, scale=scale)
        enum = gibbs.gibbs_stats(feats, theta)
        dp = soft_bellman(feats, theta)
        d_logz = abs(enum.log_partition - dp.log_partition)
        d_grad = float(np.max(np.abs(enum.expected_features - dp.expected_features)))
        worst = max(worst, d_logz, d_grad)
        t_enum = best_time(lambda f=feats, th=theta: gibbs.gibbs_stats(f, th), repeats=repeats)
        t_dp = best_time(lambda f=feats, th=theta: soft_bellman(f, th), repeats=repeats)
        note = f"{label}: |dlogZ|={d_logz:.1e} max|dEf|={d_grad:.1e}"
        rows.append(Row("ratio", n_items, horizon, "last", "enumeration", t_enum, note))
        rows.append(
            Row("ratio", n_items, horizon, "last", "dp auto", t_dp, f"enum/dp = x{t_enum / t_dp:.0f}")
        )
    return rows, worst


def machine_info() -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"date {dt.date.today().isoformat()} | {platform.processor() or platform.machine()} | "
        f"nproc {cores} | load avg {load} | python {platform.python_version()} | "
        f"numpy {np.__version__} | scipy {scipy.__version__} | "
        f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS', 'library default')}"
    )


def format_table(rows: list[Row]) -> str:
    lines = [
        "| section | V | T | V^T | features | method | seconds | note |",
        "|---|---:|---:|---:|---|---|---:|---|",
    ]
    for r in rows:
        size = r.n_items**r.horizon
        size_txt = f"{size:.1e}" if size >= 10**5 else str(size)
        lines.append(
            f"| {r.section} | {r.n_items} | {r.horizon} | {size_txt} | {r.state} | {r.method} | "
            f"{r.seconds:.4f} | {r.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; finishes in a few seconds")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per timing (best is kept)")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="BLAS threads for the DP's matrix products (set before numpy loads; default: BLAS's own)",
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the seed-loop 'before' timings")
    args = parser.parse_args(argv)
    if args.blas_threads is not None and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.blas_threads):
        print("note: numpy was loaded before --blas-threads could apply; BLAS keeps its threads")
    repeats = args.repeats or (2 if args.quick else 3)
    if args.quick:
        enum_sizes, ratio_size = [(6, 5), (8, 5)], (8, 5)
        dp_grid = [(V, T) for V in (10, 30) for T in (10, 30)]
        tl_grid = [(10, 10), (30, 10)]
    else:
        enum_sizes, ratio_size = [(10, 6), (10, 7)], (10, 7)
        dp_grid = [(V, T) for V in (10, 100, 300, 1000) for T in (10, 30, 100)]
        tl_grid = [(V, T) for V in (10, 100, 300) for T in (10, 30, 100)]

    print(machine_info(), flush=True)
    rows = bench_enumeration(enum_sizes, repeats=repeats, naive=not args.no_naive)
    rows += bench_dp(dp_grid, [("last", "auto"), ("last", "log")], repeats=repeats)
    rows += bench_dp(tl_grid, [("time_last", "log")], repeats=repeats)
    ratio_rows, worst = bench_ratio(*ratio_size, repeats=repeats)
    rows += ratio_rows
    print(format_table(rows))
    print(f"largest enumeration/DP disagreement: {worst:.2e} (tolerance {AGREEMENT_TOL:g})")
    if not worst <= AGREEMENT_TOL:
        print("FAIL: enumeration and DP disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
