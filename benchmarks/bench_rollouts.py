"""Benchmark of Monte-Carlo rollouts for eq. (14)'s Q: vectorized vs naive SeqGAN loops.

Measures, in one run and on this machine, for a float32 GRUPolicy (embed 32, hidden 32) and a small
SeqGAN-style CNNEnergy (embedding 16, filter widths 2/3/4 with 16 filters each, eval mode — the
same energy for both methods):

- ``naive``: :func:`gan_equiv.train.rollouts.naive_mc_q_values` — Python loops over the prefix length t
  and the rollout k, one ``policy.complete`` (T steps, logits at teacher-forced steps too) and one
  teacher-forced ``log_prob`` per (t, k): (T−1)·K sequential generations of B rows;
- ``vectorized``: :func:`gan_equiv.train.rollouts.mc_q_values` — one batched pass of T−1 sampling steps
  over all B·(T−1)·K rollouts, logits only where an item is drawn, log-probs from the sampling
  softmax; once with the naive random stream (``stream="naive"``) and once with the compact one.

Checks, both printed: under the identical random stream the two give the same Q (the same
completions; float32 logits computed in different batch shapes can, very rarely, flip a draw, which
the check reports); with different streams the per-t means of Q agree within MC_Z_SCORE paired
standard errors (d_n = Q̂_vec[n, t] − Q̂_naive[n, t] is zero-mean and independent over n).

Times are the best of ``--repeats`` interleaved repeats (``time.perf_counter``); the ratio is
naive / vectorized measured in this run. torch's default number of threads is kept unless
``--threads`` is given. Exits non-zero only when a check fails.

    python benchmarks/bench_rollouts.py            # B=64, T=20, K=16, V=5000 (a few minutes on 2 cores)
    python benchmarks/bench_rollouts.py --quick    # B=8, T=6, K=4, V=50 (seconds; smoke test)
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_equiv.models.energies import CNNEnergy
from gan_equiv.models.policies import GRUPolicy
from gan_equiv.train.rollouts import mc_q_values, naive_mc_q_values

#: The z-score bound of tests/conftest.py (MC_Z_SCORE), repeated so the script stands alone.
Z_BOUND = 5.0
#: |Q_vec − Q_naive| above this means a different completion (a float32 rounding flip), not noise.
SAME_STREAM_TOL = 1e-3


@dataclass
class Config:
    batch: int
    horizon: int
    rollouts: int
    items: int


def build(cfg: Config, seed: int):
    torch.manual_seed(seed)
    policy = GRUPolicy(cfg.items, cfg.horizon, embed_dim=32, hidden_dim=32)
    energy = CNNEnergy(
        cfg.items, cfg.horizon, embed_dim=16, filter_sizes=(2, 3, 4), num_filters=(16, 16, 16)
    ).eval()
    seqs = policy.sample(cfg.batch, generator=torch.Generator().manual_seed(seed))
    return policy, energy, seqs


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def logit_rows(cfg: Config) -> tuple[int, int]:
    """Rows of V logits computed: (naive, vectorized)."""
    B, T, K = cfg.batch, cfg.horizon, cfg.rollouts
    naive = (T - 1) * K * (T * B + T * B) + T * B  # complete + log_prob per (t, k); final log_prob
    vectorized = B * K * T * (T - 1) // 2 + B * T  # sampled positions + teacher-forced log-probs
    return naive, vectorized


def run(cfg: Config, *, repeats: int, chunk_rows: int | None, seed: int) -> bool:
    policy, energy, seqs = build(cfg, seed)
    kw = dict(n_rollouts=cfg.rollouts)
    times: dict[str, list[float]] = {"naive": [], "vectorized (naive stream)": [], "vectorized": []}
    outputs: dict[str, torch.Tensor] = {}
    for r in range(repeats):  # interleaved, so that load changes hit every method alike
        calls = {
            "naive": lambda r=r: naive_mc_q_values(
                policy, energy, seqs, generator=torch.Generator().manual_seed(seed + 1 + r), **kw
            ),
            "vectorized (naive stream)": lambda r=r: mc_q_values(
                policy,
                energy,
                seqs,
                generator=torch.Generator().manual_seed(seed + 1 + r),
                stream="naive",
                chunk_rows=chunk_rows,
                **kw,
            ),
            "vectorized": lambda r=r: mc_q_values(
                policy,
                energy,
                seqs,
                generator=torch.Generator().manual_seed(seed + 10_001 + r),
                chunk_rows=chunk_rows,
                **kw,
            ),
        }
        for name, call in calls.items():
            seconds, q = timed(call)
            times[name].append(seconds)
            outputs.setdefault(name, q)

    naive_rows, vec_rows = logit_rows(cfg)
    sampled = cfg.batch * cfg.rollouts * cfg.horizon * (cfg.horizon - 1) // 2
    best_naive = min(times["naive"])
    print(
        f"\nB={cfg.batch}  T={cfg.horizon}  K={cfg.rollouts}  V={cfg.items}  "
        f"(GRUPolicy 32/32 float32, CNNEnergy 16·(2,3,4)×16, threads={torch.get_num_threads()}, "
        f"chunk_rows={'auto' if chunk_rows is None else chunk_rows})"
    )
    print(f"{'method':<28}{'best (s)':>10}{'ratio':>9}   all repeats (s)")
    for name, ts in times.items():
        ratio = best_naive / min(ts)
        print(f"{name:<28}{min(ts):>10.3f}{ratio:>8.1f}x   " + " ".join(f"{t:.3f}" for t in ts))
    print(
        f"rows of V logits: naive {naive_rows:,}  vectorized {vec_rows:,}  "
        f"(x{naive_rows / vec_rows:.1f} fewer; vectorized sampling rows {sampled:,})"
    )

    naive_q, same_q, fresh_q = outputs["naive"], outputs["vectorized (naive stream)"], outputs["vectorized"]
    diff = (same_q - naive_q).abs()
    flips = int((diff > SAME_STREAM_TOL).sum())
    small = diff[diff <= SAME_STREAM_TOL]
    print(
        f"identical stream: {naive_q.numel() - flips}/{naive_q.numel()} Q entries equal "
        f"(max |diff| among them {float(small.max()) if small.numel() else 0.0:.1e}; "
        f"{flips} differ by a float32 draw flip)"
    )
    d = (fresh_q - naive_q)[:, :-1]  # (B, T−1); column T is exact in both
    se = d.std(dim=0) / math.sqrt(cfg.batch)
    z = d.mean(dim=0) / se
    last = float((fresh_q[:, -1] - naive_q[:, -1]).abs().max())
    print(
        f"independent streams: mean Q per t, max |z| = {float(z.abs().max()):.2f} over "
        f"t=1..{cfg.horizon - 1} (bound {Z_BOUND}); t=T exact in both (max |diff| {last:.1e})"
    )
    print("mean Q per t (naive):      " + " ".join(f"{v:.3f}" for v in naive_q.mean(dim=0).tolist()))
    print("mean Q per t (vectorized): " + " ".join(f"{v:.3f}" for v in fresh_q.mean(dim=0).tolist()))
    ok = flips <= max(1, naive_q.numel() // 100) and float(z.abs().max()) <= Z_BOUND and last < 1e-3
    print("checks: " + ("ok" if ok else "FAILED"))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="B=8, T=6, K=4, V=50; finishes in seconds")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--rollouts", type=int, default=16)
    parser.add_argument("--items", type=int, nargs="+", default=[5000], help="one or more V")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best is kept")
    parser.add_argument("--chunk-rows", type=int, default=None, help="sampling chunk (default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        configs, repeats = [Config(8, 6, 4, 50)], 1
    else:
        configs = [Config(args.batch, args.horizon, args.rollouts, v) for v in args.items]
        repeats = args.repeats
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"CPU, threads={torch.get_num_threads()}"
    )
    ok = True
    for cfg in configs:
        ok &= run(cfg, repeats=repeats, chunk_rows=args.chunk_rows, seed=args.seed)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
