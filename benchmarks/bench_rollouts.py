"""Benchmark of Monte-Carlo rollouts for eq. (14)'s Q: vectorized vs naive SeqGAN loops vs the floor.

Measures, in one run and on this machine, for a float32 GRUPolicy (embed 32, hidden 32) and a small
SeqGAN-style CNNEnergy (embedding 16, filter widths 2/3/4 with 16 filters each, eval mode — the
same energy for every method):

- ``naive``: :func:`gan_equiv.train.rollouts.naive_mc_q_values` — the reference SeqGAN structure as
  it is: Python loops over the prefix length t and the rollout k, one ``policy.complete`` (T steps,
  logits at teacher-forced steps too, float64 draws) and one teacher-forced ``log_prob`` per (t, k):
  (T−1)·K sequential generations of B rows;
- ``vectorized``: :func:`gan_equiv.train.rollouts.mc_q_values` — one batched pass, one softmax per
  prefix for the first rollout step, logits only where an item is drawn; with the naive random
  stream (float64 draws: same completions as naive), and with the compact stream in float32
  (the default for a float32 policy) and in float64;
- ``floor``: the bare logits matrix product + float32 softmax over the rows the vectorized pass
  computes logits for, in chunks of the same size — what the arithmetic allows.

Every time is printed next to its ratio to the floor measured in the same run (naive's floor is
the same per-row cost over its own number of rows). Checks, all printed: identical stream → the same
Q as naive; float32 vs float64 draws on one stream → the same completions (Q equal up to the
float32 log-probabilities); independent streams → per-t means of Q within MC_Z_SCORE paired standard
errors. Best of ``--repeats`` interleaved repeats (``time.perf_counter``; CUDA timings synchronise).
Exits non-zero only when a check fails.

    python benchmarks/bench_rollouts.py --threads 1   # B=64, T=20, K=16, V=5000 (a few minutes)
    python benchmarks/bench_rollouts.py --fast        # B=8, T=6, K=4, V=50 (seconds; smoke test)
    python benchmarks/bench_rollouts.py --device cuda # vectorized and floor on the GPU as well
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
from gan_equiv.train.rollouts import CPU_CHUNK_ELEMENTS, mc_q_values, naive_mc_q_values

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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CPU = torch.device("cpu")


def timed(fn, device: torch.device = CPU):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def logit_rows(cfg: Config) -> tuple[int, int]:
    """Rows of V logits computed: (naive, vectorized)."""
    B, T, K = cfg.batch, cfg.horizon, cfg.rollouts
    naive = (T - 1) * K * (T * B + T * B) + T * B  # complete + log_prob per (t, k); final log_prob
    # teacher-forced log-probs, one softmax per prefix for the first step, then the sampled steps
    vectorized = B * T + B * (T - 1) + B * K * (T - 1) * (T - 2) // 2
    return naive, vectorized


@torch.no_grad()
def floor_time(policy: GRUPolicy, rows: int, device: torch.device) -> float:
    """Bare logits matmul + float32 softmax over ``rows`` rows, in the rollouts' chunk size."""
    chunk = 2**62 if device.type != "cpu" else max(16, CPU_CHUNK_ELEMENTS // policy.n_items)
    chunk = min(chunk, rows)
    w, b = policy.head.weight.to(device), policy.head.bias.to(device)
    h = torch.randn(chunk, w.shape[1], device=device)
    sync(device)
    start = time.perf_counter()
    for first in range(0, rows, chunk):
        torch.softmax(torch.addmm(b, h[: min(chunk, rows - first)], w.T), dim=-1)
    sync(device)
    return time.perf_counter() - start


def run(cfg: Config, *, repeats: int, chunk_rows: int | None, seed: int, device: str) -> bool:
    policy, energy, seqs = build(cfg, seed)
    kw = dict(n_rollouts=cfg.rollouts, chunk_rows=chunk_rows)
    naive_rows, vec_rows = logit_rows(cfg)

    def gen(k: int) -> torch.Generator:
        return torch.Generator().manual_seed(k)

    calls = {
        "naive": lambda r: naive_mc_q_values(
            policy, energy, seqs, n_rollouts=cfg.rollouts, generator=gen(seed + 1 + r)
        ),
        "vectorized (naive stream)": lambda r: mc_q_values(
            policy, energy, seqs, generator=gen(seed + 1 + r), stream="naive", **kw
        ),
        "vectorized float64": lambda r: mc_q_values(
            policy, energy, seqs, generator=gen(seed + 10_001 + r), precision="float64", **kw
        ),
        "vectorized": lambda r: mc_q_values(policy, energy, seqs, generator=gen(seed + 10_001 + r), **kw),
    }
    times: dict[str, list[float]] = {name: [] for name in [*calls, "floor"]}
    outputs: dict[str, torch.Tensor] = {}
    for r in range(repeats):  # interleaved, so that load changes hit every method alike
        for name, call in calls.items():
            seconds, q = timed(lambda call=call, r=r: call(r))
            times[name].append(seconds)
            outputs.setdefault(name, q)
        times["floor"].append(floor_time(policy, vec_rows, CPU))
    floor = min(times["floor"])
    per_row = floor / vec_rows
    floors = {name: per_row * (naive_rows if name == "naive" else vec_rows) for name in times}
    print(
        f"\nB={cfg.batch}  T={cfg.horizon}  K={cfg.rollouts}  V={cfg.items}  "
        f"(GRUPolicy 32/32 float32, CNNEnergy 16·(2,3,4)×16, CPU, threads={torch.get_num_threads()}, "
        f"chunk_rows={'auto' if chunk_rows is None else chunk_rows})"
    )
    best_naive = min(times["naive"])
    print(f"{'method':<28}{'best (s)':>10}{'floor (s)':>11}{'/floor':>8}{'naive/':>8}   all repeats (s)")
    for name, ts in times.items():
        print(
            f"{name:<28}{min(ts):>10.3f}{floors[name]:>11.3f}{min(ts) / floors[name]:>7.2f}x"
            f"{best_naive / min(ts):>7.1f}x   " + " ".join(f"{t:.3f}" for t in ts)
        )
    print(
        f"rows of V logits: naive {naive_rows:,}  vectorized {vec_rows:,}  (x{naive_rows / vec_rows:.1f} "
        f"fewer); floor = matmul + softmax over the vectorized rows; naive's floor scaled by rows"
    )
    if device != "cpu" and torch.cuda.is_available():
        run_device(cfg, policy, energy, seqs, repeats, vec_rows, seed)
    return check(cfg, outputs)


def run_device(cfg: Config, policy, energy, seqs, repeats: int, vec_rows: int, seed: int) -> None:
    """The vectorized pass and its floor on the GPU (float32 draws, on-device generator)."""
    dev = torch.device("cuda")
    policy, energy, seqs = policy.to(dev), energy.to(dev), seqs.to(dev)
    g = torch.Generator(device=dev).manual_seed(seed)
    vec, flo = [], []
    for _ in range(repeats + 1):  # the first repeat warms up kernels and the allocator
        call = lambda: mc_q_values(policy, energy, seqs, n_rollouts=cfg.rollouts, generator=g)  # noqa: E731
        vec.append(timed(call, dev)[0])
        flo.append(floor_time(policy, vec_rows, dev))
    v, f = min(vec[1:]), min(flo[1:])
    name = torch.cuda.get_device_name(dev)
    print(f"{'vectorized (cuda)':<28}{v:>10.3f}{f:>11.3f}{v / f:>7.2f}x   ({name})")
    policy.cpu(), energy.cpu()


def check(cfg: Config, outputs: dict[str, torch.Tensor]) -> bool:
    naive_q, same_q = outputs["naive"], outputs["vectorized (naive stream)"]
    f64_q, fresh_q = outputs["vectorized float64"], outputs["vectorized"]
    diff = (same_q - naive_q).abs()
    flips = int((diff > SAME_STREAM_TOL).sum())
    small = diff[diff <= SAME_STREAM_TOL]
    print(
        f"identical stream: {naive_q.numel() - flips}/{naive_q.numel()} Q entries equal "
        f"(max |diff| among them {float(small.max()) if small.numel() else 0.0:.1e}; "
        f"{flips} differ by a float32 logit flip)"
    )
    prec = float((fresh_q - f64_q).abs().max())
    print(f"float32 vs float64 draws, one stream: max |ΔQ| = {prec:.1e} (same items; log p within ~1e-5)")
    d = (fresh_q - naive_q)[:, :-1]  # (B, T−1); column T is exact in both
    se = d.std(dim=0) / math.sqrt(cfg.batch)
    z = d.mean(dim=0) / se
    last = float((fresh_q[:, -1] - naive_q[:, -1]).abs().max())
    print(
        f"independent streams: mean Q per t, max |z| = {float(z.abs().max()):.2f} over "
        f"t=1..{cfg.horizon - 1} (bound {Z_BOUND}); t=T exact in both (max |diff| {last:.1e})"
    )
    ok = flips <= max(1, naive_q.numel() // 100) and float(z.abs().max()) <= Z_BOUND and last < 1e-3
    ok = ok and prec < 1e-3
    print("checks: " + ("ok" if ok else "FAILED"))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", "--quick", action="store_true", help="B=8, T=6, K=4, V=50; seconds")
    parser.add_argument("--batch", type=int, default=64, help="B, sequences per batch")
    parser.add_argument("--horizon", type=int, default=20, help="T, sequence length")
    parser.add_argument("--rollouts", type=int, default=16, help="K, Monte-Carlo rollouts per prefix")
    parser.add_argument("--items", type=int, nargs="+", default=[5000], help="one or more V")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best is kept")
    parser.add_argument("--chunk-rows", type=int, default=None, help="sampling chunk (default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: also time the GPU")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fast:
        configs, repeats = [Config(8, 6, 4, 50)], 1
    else:
        configs = [Config(args.batch, args.horizon, args.rollouts, v) for v in args.items]
        repeats = args.repeats
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"CPU threads={torch.get_num_threads()}, cuda={'yes' if torch.cuda.is_available() else 'no'}"
    )
    ok = True
    for cfg in configs:
        ok &= run(cfg, repeats=repeats, chunk_rows=args.chunk_rows, seed=args.seed, device=args.device)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
