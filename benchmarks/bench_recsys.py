"""Training speed of the MLE generators under the ``recbole`` preset.

``python benchmarks/bench_recsys.py train [--users 943 --items 1682 --length 100 --threads 2
--device cpu|cuda --batches 5]`` builds a synthetic log of ML-100K's shape, packs it into one
example per target position (context 50; :func:`gan_equiv.recsys.sequential.prefix_examples`,
no Python loop per example) and times ``--batches`` MLE batches of 2048 rows for the GRU and
SASRec generators: training examples (targets) per second.

Reading logs and the protocols at scale are timed by ``benchmarks/bench_readers.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gan_equiv.models.policies import GRUPolicy
from gan_equiv.models.sasrec import SASRecPolicy
from gan_equiv.recsys.logs import Ragged
from gan_equiv.recsys.report import max_rss_mib
from gan_equiv.recsys.sequential import prefix_examples


def synthetic_rows(n_users: int, n_items: int, mean_length: int, seed: int = 0) -> Ragged:
    """Random per-user rows (lengths geometric-ish around ``mean_length``, at least 5)."""
    rng = np.random.default_rng(seed)
    lengths = np.maximum(rng.exponential(mean_length, n_users).astype(np.int64), 5)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Ragged(rng.integers(n_items, size=int(offsets[-1])), offsets)


def bench_train(args: argparse.Namespace) -> None:
    """Examples per second of masked MLE steps for GRU (64/128) and SASRec (RecBole sizes)."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = synthetic_rows(args.users, args.items, args.length)
    start = time.perf_counter()
    ex = prefix_examples(rows, context=50)
    took = time.perf_counter() - start
    print(f"packed {ex.n_examples} examples into {ex.items.shape[0]} rows in {took:.2f} s")
    items = torch.as_tensor(ex.items, device=device)
    mask = torch.as_tensor(ex.targets, device=device)
    for name, policy in (
        ("gru", GRUPolicy(args.items, 51, embed_dim=64, hidden_dim=128)),
        ("sasrec", SASRecPolicy(args.items, 51)),
    ):
        policy = policy.to(device).train()
        opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        n_targets, elapsed = 0, 0.0
        for b in range(args.batches + 1):  # the first batch warms up
            pick = torch.randint(items.shape[0], (2048,), generator=gen).to(device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            m = mask[pick]
            nll = -(policy.step_log_probs(items[pick]) * m).sum() / m.sum()
            opt.zero_grad(set_to_none=True)
            nll.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if b:
                elapsed += time.perf_counter() - t0
                n_targets += int(m.sum())
        print(f"{name:7s} {args.device}, {args.threads} threads: {n_targets / elapsed:,.0f} examples/s")
    print(f"peak memory (max RSS) {max_rss_mib():.0f} MiB")


def main() -> None:
    """Parse the sub-benchmark and its sizes, then run it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("train",), help="the sub-benchmark (train: MLE examples/s)")
    parser.add_argument("--users", type=int, default=943)
    parser.add_argument("--items", type=int, default=1682)
    parser.add_argument("--length", type=int, default=100, help="mean interactions per user")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    bench_train(args)


if __name__ == "__main__":
    main()
