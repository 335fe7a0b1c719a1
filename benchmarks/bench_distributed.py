"""Throughput of data-parallel EB-SeqGAN training: 1 process vs N processes (torch.distributed).

Each setup runs in fresh processes that this script starts as torchrun would (RANK, WORLD_SIZE, …;
gloo on loopback for N > 1, one CPU thread per process unless ``--threads``). Rank 0 times, after
a warm-up call, the best of ``--repeats``:

- an MLE epoch: sequences/s = training sequences / epoch time;
- an adversarial round (``g_steps`` generator steps + ``d_steps`` energy steps): sequences/s counted
  as in bench_trainer.py, B·(1 + (T−1)·K) per g-step and 2B per d-step (B the *global* batch).

The 1-process rows use the plain trainer (no process group); "1 process, 2 threads" shows what the
same two cores give without data parallelism.

    python benchmarks/bench_distributed.py            # V 1000, T 20, B 64, K 16
    python benchmarks/bench_distributed.py --quick    # small sizes, about 20 s
    python benchmarks/bench_distributed.py --device cuda --worlds 1,2   # one GPU per process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gan_equiv.train.config import apply_overrides, seqgan_oracle_preset
from gan_equiv.train.distributed import DistContext, barrier, init_from_env, shutdown
from gan_equiv.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
RESULT_TAG = "bench_distributed result: "


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _best_time(fn: Any, repeats: int, ctx: DistContext | None) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if ctx is not None:
            barrier(ctx)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def _worker(spec: dict[str, Any]) -> None:
    """One process of a setup, started like torchrun starts it (RANK, WORLD_SIZE, … in the env)."""
    torch.set_num_threads(spec["threads"])
    ctx = init_from_env(spec["device"])  # None for one process: the plain trainer
    try:
        config = apply_overrides(seqgan_oracle_preset(), spec["overrides"])
        data = torch.randint(config.n_items, (spec["n_train"], config.horizon), generator=torch.Generator())
        trainer = Trainer(config, data, distributed=ctx)
        mle = _best_time(trainer.mle_epoch, spec["repeats"], ctx)
        g = _best_time(trainer.generator_step, spec["repeats"], ctx)
        d = _best_time(trainer.energy_step, spec["repeats"], ctx)
        if trainer.is_main:
            result = {"mle_s": mle, "g_s": g, "d_s": d, "g_steps": config.g_steps, "d_steps": config.d_steps}
            print(RESULT_TAG + json.dumps(result), flush=True)
    finally:
        shutdown(ctx)


def run_setup(world: int, threads: int, spec: dict[str, Any]) -> dict[str, float]:
    """Time one setup in ``world`` fresh processes (gloo/nccl on loopback); rank 0's timings."""
    spec = {**spec, "threads": threads}
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "OMP_NUM_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode != 0 for p in procs):
        codes = [p.returncode for p in procs]
        raise SystemExit(f"a process of the {world}-process setup failed: exit codes {codes}")
    line = next(ln for ln in outputs[0].splitlines() if ln.startswith(RESULT_TAG))
    return json.loads(line[len(RESULT_TAG) :])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run: cpu or cuda")
    parser.add_argument("--worlds", default="1,2", help="process counts to compare, e.g. 1,2,4")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is kept")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one process of a setup
    args = parser.parse_args(argv)
    if args.worker:
        _worker(json.loads(args.worker))
        return
    V, T, B, K, n_train = (50, 8, 16, 2, 512) if args.quick else (1000, 20, 64, 16, 2048)
    overrides: dict[str, Any] = {
        "n_items": V,
        "horizon": T,
        "batch_size": B,
        "n_rollouts": K,
        "device": args.device,
        "progress": False,
        "out_dir": "outputs/bench_distributed",
        "energy.dropout": 0.0,
    }
    if args.quick:
        overrides.update({"energy.filter_sizes": "1,2,4", "energy.num_filters": "8,8,8"})
    spec = {"overrides": overrides, "n_train": n_train, "repeats": args.repeats, "device": args.device}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load:.1f} at start, torch {torch.__version__}, device {args.device}"
    )
    print(f"V={V} T={T} B={B} K={K} N={n_train}, CNN energy, GRU generator; best of {args.repeats}")
    setups = [(1, args.threads, f"1 process, {args.threads} thread(s)")]
    worlds = [int(w) for w in args.worlds.split(",") if w.strip()]
    if args.device == "cpu" and 2 in worlds:
        setups.append((1, 2 * args.threads, f"1 process, {2 * args.threads} threads"))
    setups += [(w, args.threads, f"{w} processes × {args.threads} thread(s)") for w in worlds if w > 1]
    header = (
        f"{'setup':<28} {'MLE epoch s':>11} {'MLE seq/s':>10} {'×':>5} {'round s':>8} {'round seq/s':>11} "
        f"{'×':>5}"
    )
    print(header)
    print("-" * len(header))
    base: tuple[float, float] | None = None
    for world, threads, label in setups:
        r = run_setup(world, threads, spec)
        round_s = r["g_steps"] * r["g_s"] + r["d_steps"] * r["d_s"]
        seqs = r["g_steps"] * B * (1 + (T - 1) * K) + r["d_steps"] * 2 * B
        base = base or (r["mle_s"], round_s)
        print(
            f"{label:<28} {r['mle_s']:11.3f} {n_train / r['mle_s']:10.0f} {base[0] / r['mle_s']:5.2f} "
            f"{round_s:8.3f} {seqs / round_s:11.0f} {base[1] / round_s:5.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
