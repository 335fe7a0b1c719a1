"""The ``evaluate`` command: sequential recommendation on a real interaction log.

``python -m gan_equiv evaluate --data PATH --format recbole|movielens|csv [--user-col … --item-col …
--time-col … --rating-col …] [--models pop markov mle ebseqgan] [--out results.csv results.json]``

Reads the log (streaming; malformed rows are reported with file and line), prints its summary,
applies the optional rating threshold and the k-core filter, runs the protocol of
:func:`gan_equiv.recsys.recommenders.run_protocols` (next-item leave-one-out ranking and multi-step
generation; same splits and seed for every model), prints the tables and writes them as CSV and/or
JSON. Trainer logs and checkpoints go under ``--run-dir``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch

from gan_equiv.recsys.interactions import (
    FORMATS,
    InteractionFormatError,
    load_interactions,
    preprocess,
    summarize,
)
from gan_equiv.recsys.recommenders import (
    MODELS,
    PROTOCOLS,
    EvaluationReport,
    GANSettings,
    GRUSettings,
    ProtocolSettings,
    run_protocols,
)

#: Defaults of the command (``add_evaluate_arguments`` takes replacements, e.g. for examples).
DEFAULTS: dict[str, Any] = {
    "k_core": 5,
    "horizon": 10,
    "stride": 1,
    "epochs": 10,
    "patience": 3,
    "embed_dim": 64,
    "hidden_dim": 64,
    "lr": 2e-3,
    "batch_size": 256,
    "rounds": 50,
    "d_pretrain": 50,
    "n_rollouts": 8,
    "seed": 0,
    "run_dir": "runs/recommendation",
}


def add_evaluate_arguments(parser: argparse.ArgumentParser, **defaults: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` options to ``parser``; keyword arguments replace :data:`DEFAULTS`."""
    d = {**DEFAULTS, **defaults}
    data = parser.add_argument_group("data")
    data.add_argument("--data", required="data" not in d, default=d.get("data"), help="interaction file")
    data.add_argument("--format", dest="fmt", choices=FORMATS, default=d.get("fmt", "recbole"))
    data.add_argument("--user-col", default="user_id", help="user field/column (recbole, csv)")
    data.add_argument("--item-col", default="item_id", help="item field/column (recbole, csv)")
    data.add_argument("--time-col", default="timestamp", help="timestamp field/column (recbole, csv)")
    data.add_argument("--rating-col", default=None, help="rating column (csv; recbole reads 'rating')")
    data.add_argument("--delimiter", default=None, help="field separator (movielens: tab; csv: ',')")
    data.add_argument("--time-format", choices=("numeric", "iso"), default="numeric", help="csv timestamps")
    data.add_argument("--min-rating", type=float, default=None, help="keep ratings >= this (e.g. 4)")
    data.add_argument("--k-core", type=int, default=d["k_core"], help="min interactions per user and item")
    proto = parser.add_argument_group("protocol")
    proto.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    proto.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    proto.add_argument("--horizon", type=int, default=d["horizon"], help="window length T")
    proto.add_argument("--stride", type=int, default=d["stride"], help="window stride")
    proto.add_argument("--ks", type=int, nargs="+", default=[10, 20], help="cut-offs of HR/NDCG/MRR")
    proto.add_argument("--steps", type=int, nargs="+", default=[5, 10], help="multi-step list lengths n")
    proto.add_argument("--hit-k", type=int, default=10, help="k of the per-position hit@k")
    proto.add_argument(
        "--exclude-seen",
        choices=("auto", "yes", "no"),
        default="auto",
        help="mask history items in rankings (auto: yes iff the log has no repeated user-item pair)",
    )
    proto.add_argument("--markov-alpha", type=float, default=1.0)
    proto.add_argument("--seed", type=int, default=d["seed"])
    gru = parser.add_argument_group("MLE GRU")
    gru.add_argument("--epochs", type=int, default=d["epochs"])
    gru.add_argument("--patience", type=int, default=d["patience"])
    gru.add_argument("--embed-dim", type=int, default=d["embed_dim"])
    gru.add_argument("--hidden-dim", type=int, default=d["hidden_dim"])
    gru.add_argument("--lr", type=float, default=d["lr"])
    gru.add_argument("--batch-size", type=int, default=d["batch_size"])
    gan = parser.add_argument_group("EB-SeqGAN")
    gan.add_argument("--energy", choices=("cnn", "autoencoder"), default="cnn")
    gan.add_argument("--rounds", type=int, default=d["rounds"])
    gan.add_argument("--d-pretrain", type=int, default=d["d_pretrain"])
    gan.add_argument("--n-rollouts", type=int, default=d["n_rollouts"])
    gan.add_argument("--entropy-weight", type=float, default=1.0)
    gan.add_argument("--margin", type=float, default=10.0)
    gan.add_argument("--g-lr", type=float, default=1e-4)
    gan.add_argument("--d-lr", type=float, default=1e-3)
    gan.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra TrainConfig keys for the EB-SeqGAN trainer, e.g. --set d_steps=5 energy.dropout=0.1",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", nargs="+", default=[], help="write the results: *.csv (table) and/or *.json")
    out.add_argument("--run-dir", default=d["run_dir"], help="trainer logs and checkpoints")
    out.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest when small)")
    out.add_argument("--quiet", action="store_true", help="print only the tables")
    return parser


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``evaluate`` subcommand (its handler is :func:`evaluate_command`)."""
    parser = subparsers.add_parser(
        "evaluate",
        help="sequential recommendation on an interaction log: pop, Markov, MLE GRU, EB-SeqGAN",
        description=__doc__.splitlines()[0],
    )
    add_evaluate_arguments(parser)
    parser.set_defaults(func=evaluate_command)
    return parser


def _overrides(pairs: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r}")
        out.append((key.strip().replace("-", "_"), value.strip()))
    return tuple(out)


def settings_from_args(args: argparse.Namespace, *, exclude_seen: bool) -> ProtocolSettings:
    """The :class:`ProtocolSettings` the parsed options describe."""
    return ProtocolSettings(
        models=tuple(args.models),
        protocols=tuple(args.protocols),
        horizon=args.horizon,
        stride=args.stride,
        ks=tuple(args.ks),
        steps=tuple(sorted(set(args.steps))),
        hit_k=args.hit_k,
        exclude_seen=exclude_seen,
        markov_alpha=args.markov_alpha,
        seed=args.seed,
        out_dir=args.run_dir,
        gru=GRUSettings(
            embed_dim=args.embed_dim,
            hidden_dim=args.hidden_dim,
            lr=args.lr,
            batch_size=args.batch_size,
            epochs=args.epochs,
            patience=args.patience,
        ),
        gan=GANSettings(
            energy=args.energy,
            rounds=args.rounds,
            d_pretrain_steps=args.d_pretrain,
            n_rollouts=args.n_rollouts,
            entropy_weight=args.entropy_weight,
            margin=args.margin,
            g_lr=args.g_lr,
            d_lr=args.d_lr,
            overrides=_overrides(args.set),
        ),
    )


def run_evaluation(args: argparse.Namespace) -> EvaluationReport:
    """Load, summarize, filter, and run the protocol for parsed ``evaluate`` options."""
    say = (lambda _: None) if args.quiet else print
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    log = load_interactions(
        args.data,
        fmt=args.fmt,
        user_col=args.user_col,
        item_col=args.item_col,
        time_col=args.time_col,
        rating_col=args.rating_col,
        delimiter=args.delimiter,
        time_format=args.time_format,
    )
    raw = summarize(log)
    say(f"read {args.data} ({args.fmt}) in {time.perf_counter() - start:.2f} s\n{raw.format()}")
    seqs = preprocess(log, min_rating=args.min_rating, min_user=args.k_core, min_item=args.k_core)
    kept = summarize(seqs)
    rating = f"rating >= {args.min_rating}, " if args.min_rating is not None else ""
    say(f"after {rating}{args.k_core}-core filtering:\n{kept.format()}")
    exclude = {"yes": True, "no": False}.get(args.exclude_seen, kept.repeat_share == 0.0)
    say(f"exclude seen items from rankings: {exclude}")
    settings = settings_from_args(args, exclude_seen=exclude)
    report = run_protocols(seqs, settings, echo=say)
    report.data["raw_summary"] = raw.__dict__
    report.data["filters"] = {"min_rating": args.min_rating, "k_core": args.k_core}
    report.timings["total_wall_s"] = time.perf_counter() - start
    return report


def result_tables(report: EvaluationReport) -> str:
    """The next-item table and the multi-step table as text."""
    cols = report.columns()
    parts = []
    next_cols = [c for c in cols if "@" in c and not c.startswith("valid")] + [
        c for c in cols if c.startswith("valid")
    ]
    if next_cols:
        parts.append("next item (leave-one-out, full ranking):\n" + report.table(["model", *next_cols]))
    multi = [c for c in cols if c.startswith(("recall_", "hit", "coverage_", "distinct_"))]
    if multi:
        parts.append(
            "multi-step (greedy generation; model-fed vs data-fed):\n" + report.table(["model", *multi])
        )
    return "\n\n".join(parts)


def evaluate_command(args: argparse.Namespace) -> int:
    """Handler of ``python -m gan_equiv evaluate``: run, print the tables, write ``--out`` files.

    Returns 0, or 2 with the message on stderr when the data file is missing or malformed.
    """
    for path in args.out:
        if not path.endswith((".csv", ".json")):
            raise SystemExit(f"--out {path!r} must end in .csv or .json")
    try:
        report = run_evaluation(args)
    except (InteractionFormatError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print()
    print(result_tables(report))
    t = report.timings
    print(f"\nwall time {t['total_wall_s']:.1f} s, peak memory (max RSS) {t['max_rss_mib']:.0f} MiB")
    for path in args.out:
        print(f"wrote {report.write(path)}")
    return 0
