"""Logs the size users have: columnar reading against pandas' bare CSV read, and the protocols at scale.

One run on one synthetic RecBole ``.inter`` file (users with heavy-tailed history lengths, items
drawn from a power law, timestamps with ties, rows in random file order) reports, as ratios
measured in the same process:

- reading: :func:`gan_equiv.recsys.readers.read_recbole` (pandas' C parser plus token codes, line
  numbers and checks) ÷ pandas' own bare ``read_csv(path, sep="\\t")`` of the same file — the
  target is at most 3×; optionally the gzip file and the streaming parser (``engine="python"``);
- the protocols, vectorized: k-core, per-user histories, leave-one-out and the RecBole examples
  (:func:`~gan_equiv.recsys.sequential.prefix_examples`), each timed;
- popularity and Markov under both protocols (next-item leave-one-out and multi-step, this
  project's 5-core preset) end to end through :func:`gan_equiv.recsys.evaluate.run_evaluation`
  (read, filter, split, fit, rank all V items): the target is under a minute on 1M rows, 2 cores;
- peak memory (``resource.getrusage`` max RSS) after each stage.

    python benchmarks/bench_readers.py --gzip --python-engine   # 1M rows, 6040 users, 3706 items (ml-1m)
    python benchmarks/bench_readers.py --rows 25000000 --users 162541 --items 59047 \
        --no-evaluate --no-examples                               # ml-25m's size
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gan_equiv.recsys.evaluate import run_evaluation
from gan_equiv.recsys.preprocessing import build_sequences, k_core, leave_one_out, training_windows
from gan_equiv.recsys.readers import LogSource, read_recbole
from gan_equiv.recsys.report import max_rss_mib
from gan_equiv.recsys.sequential import prefix_examples
from gan_equiv.recsys.settings import DEFAULTS, updated


def write_log(path: Path, *, rows: int, users: int, items: int, seed: int = 0) -> Path:
    """A synthetic RecBole file: per-user lengths lognormal (≥ 5), items ~ rank^(−0.8), timestamps
    increasing per user with 10% ties, ratings 1–5, rows shuffled (file order ≠ time order)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.0, users)
    lengths = np.maximum(np.round(weights / weights.sum() * rows), 5).astype(np.int64)
    lengths[np.argmax(lengths)] += rows - lengths.sum()  # exactly ``rows`` in all
    user = np.repeat(np.arange(users), lengths)
    popularity = np.arange(1, items + 1, dtype=np.float64) ** -0.8
    item = rng.choice(items, size=rows, p=popularity / popularity.sum())
    gaps = rng.integers(1, 5000, size=rows) * (rng.random(rows) >= 0.1)  # (rows,), 10% ties
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    time_ = 9 * 10**8 + rng.integers(0, 10**7, size=users)[user] + np.cumsum(gaps) - np.cumsum(gaps)[starts]
    order = rng.permutation(rows)
    frame = pd.DataFrame(
        {
            "user_id:token": user[order],
            "item_id:token": item[order],
            "rating:float": rng.integers(1, 6, size=rows),
            "timestamp:float": time_[order],
        }
    )
    frame.to_csv(path, sep="\t", index=False)
    return path


def timed(label: str, fn, results: dict[str, float]):
    """Run ``fn``, record and print its wall time and the peak memory so far."""
    start = time.perf_counter()
    out = fn()
    results[label] = time.perf_counter() - start
    print(f"{label:<44s} {results[label]:8.2f} s   peak RSS {max_rss_mib():8.0f} MiB", flush=True)
    return out


def protocol_stages(log, results: dict[str, float], *, examples: bool = True) -> None:
    """Time k-core, histories, leave-one-out, windows and RecBole examples on the read log."""
    core = timed("5-core filter", lambda: k_core(log, min_user=5, min_item=5), results)
    seqs = timed("per-user histories (build_sequences)", lambda: build_sequences(core), results)
    split = timed("leave-one-out split", lambda: leave_one_out(seqs), results)
    timed("windows of T=10", lambda: training_windows(split.train, horizon=10), results)
    if examples:
        timed("RecBole examples (context 50)", lambda: prefix_examples(split.train, context=50), results)
    else:  # M rows of 51 items (int64) and 51 flags: report the size instead of building them
        n_rows = int((split.train.lengths >= 2).sum() + np.maximum(split.train.lengths - 51, 0).sum())
        print(f"RecBole examples (context 50) skipped: {n_rows} rows, {n_rows * 51 * 9 / 2**30:.1f} GiB")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parse the sizes, write the file, time every stage; returns the timings (seconds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="interactions [default: 1000000]")
    parser.add_argument("--users", type=int, default=6040, help="users [default: 6040, ml-1m]")
    parser.add_argument("--items", type=int, default=3706, help="items [default: 3706, ml-1m]")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads [default: 2]")
    parser.add_argument("--dir", default=None, help="folder of the synthetic file [default: a temporary one]")
    parser.add_argument("--gzip", action="store_true", help="also time reading the gzip file")
    parser.add_argument("--python-engine", action="store_true", help="also time the streaming parser")
    parser.add_argument(
        "--no-examples", dest="examples", action="store_false", help="skip building the RecBole examples"
    )
    parser.add_argument(
        "--no-evaluate", dest="evaluate", action="store_false", help="skip pop/Markov under both protocols"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import pandas as pd

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "synthetic.inter"
        print(f"{args.rows} rows, {args.users} users, {args.items} items; torch threads {args.threads}")
        timed(
            "write the synthetic file",
            lambda: write_log(path, rows=args.rows, users=args.users, items=args.items),
            results,
        )
        print(f"file size {path.stat().st_size / 2**20:.0f} MiB")
        timed("pandas bare read_csv (reference)", lambda: pd.read_csv(path, sep="\t"), results)
        log = timed("read_recbole (columnar)", lambda: read_recbole(path), results)
        if args.gzip:
            packed = path.with_suffix(".inter.gz")
            packed.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
            timed(
                "pandas bare read_csv of the .gz (reference)", lambda: pd.read_csv(packed, sep="\t"), results
            )
            timed("read_recbole of the .gz", lambda: read_recbole(packed), results)
        if args.python_engine:
            timed(
                "read_recbole (engine='python', streaming)",
                lambda: read_recbole(path, engine="python"),
                results,
            )
        protocol_stages(log, results, examples=args.examples)
        del log
        if args.evaluate:
            config = updated(
                DEFAULTS,
                {
                    "source": LogSource(path=str(path), fmt="recbole"),
                    "protocol.models": ("pop", "markov"),
                    "protocol.out_dir": str(Path(tmp) / "runs"),
                },
            )
            timed(
                "pop + Markov, both protocols (5-core preset)",
                lambda: run_evaluation(config, echo=None),
                results,
            )
    ratio = results["read_recbole (columnar)"] / results["pandas bare read_csv (reference)"]
    print(f"\nreading ÷ pandas bare read_csv: {ratio:.2f}x (target <= 3x)")
    if args.gzip:
        gz = results["read_recbole of the .gz"] / results["pandas bare read_csv of the .gz (reference)"]
        print(f"gzip reading ÷ pandas bare read_csv of the .gz: {gz:.2f}x")
    if args.python_engine:
        slow = results["read_recbole (engine='python', streaming)"] / results["read_recbole (columnar)"]
        print(f"streaming parser ÷ columnar reader: {slow:.1f}x")
    if args.evaluate:
        both = results["pop + Markov, both protocols (5-core preset)"]
        print(f"pop + Markov, both protocols: {both:.1f} s (target < 60 s)")
    print(f"peak memory (max RSS): {max_rss_mib():.0f} MiB")
    return results


if __name__ == "__main__":
    main()
