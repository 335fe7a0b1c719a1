"""Throughput of EB-SeqGAN training: sequences per second of one adversarial round.

One round = ``g_steps`` generator steps (B sampled sequences, K rollouts per prefix, policy
gradient of eq. 14) + ``d_steps`` energy steps (B real + B fake sequences, eq. 3). The table
reports seconds per round, generator and energy step times separately, and sequences/s counted as
the sequences the round generates or scores: B·(1 + (T−1)·K) per g-step and 2B per d-step.

    python benchmarks/bench_trainer.py            # SeqGAN preset sizes (V 5000, T 20, B 64, K 16)
    python benchmarks/bench_trainer.py --quick    # small sizes, seconds
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from gan_equiv.train.config import apply_overrides, seqgan_oracle_preset
from gan_equiv.train.trainer import Trainer


def time_call(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: runs in seconds")
    parser.add_argument("--device", default="cpu", help="where to run: cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [(200, 20, 64, 4), (1000, 20, 64, 16), (5000, 20, 64, 16)]
    if args.quick:
        sizes = [(50, 8, 16, 2)]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}"
    )
    header = (
        f"{'V':>6} {'T':>3} {'B':>4} {'K':>3} {'energy':>7} {'g-step s':>9} {'d-step s':>9} "
        f"{'round s':>8} {'seq/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for V, T, B, K in sizes:
        for energy in ("cnn", "autoencoder"):
            overrides = {
                "n_items": V,
                "horizon": T,
                "batch_size": B,
                "n_rollouts": K,
                "device": args.device,
                "energy.kind": energy,
                "progress": False,
                "out_dir": "outputs/bench_trainer",
            }
            if args.quick:
                overrides.update({"energy.filter_sizes": "1,2,4", "energy.num_filters": "8,8,8"})
            config = apply_overrides(seqgan_oracle_preset(), overrides)
            data = torch.randint(0, V, (max(4 * B, 256), T))
            trainer = Trainer(config, data)
            g = time_call(trainer.generator_step, args.repeats)
            d = time_call(trainer.energy_step, args.repeats)
            round_s = config.g_steps * g + config.d_steps * d
            seqs = config.g_steps * B * (1 + (T - 1) * K) + config.d_steps * 2 * B
            print(
                f"{V:>6} {T:>3} {B:>4} {K:>3} {energy:>7} {g:9.3f} {d:9.3f} {round_s:8.3f} "
                f"{seqs / round_s:9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
