"""The ``evaluate`` command: sequential recommendation on a real interaction log.

``python -m gan_equiv evaluate --data PATH --format recbole|movielens|csv [--user-col … --item-col …
--time-col … --rating-col …] [--models pop markov mle ebseqgan] [--out results.csv results.json]``

Reads the log (columnar, plain or gzip; a malformed row is reported with file and line), prints its summary,
applies the optional rating threshold and the k-core filter, runs the protocol of
:func:`gan_equiv.recsys.protocol.run_protocols` (next-item leave-one-out ranking and multi-step
generation; same splits and seed for every model), prints the tables and writes them as CSV and/or
JSON. Trainer logs and checkpoints go under ``--run-dir``.

The options are derived from the schema: each row of :data:`gan_equiv.recsys.settings.OPTIONS`
(and of :data:`COMMAND_OPTIONS`) names a flag, the dotted field(s) it sets and its help; the type,
choices and default come from the dataclass field (:func:`add_options`), and
:func:`config_from_args` reads the parsed values back into an
:class:`~gan_equiv.recsys.settings.EvaluationConfig`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
import typing
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch

from gan_equiv.recsys.preprocessing import preprocess, summarize
from gan_equiv.recsys.protocol import run_protocols
from gan_equiv.recsys.readers import InteractionFormatError
from gan_equiv.recsys.report import EvaluationReport
from gan_equiv.recsys.settings import (
    DEFAULTS,
    OPTIONS,
    PRESETS,
    EvaluationConfig,
    Option,
    option_group,
    preset,
    updated,
)
from gan_equiv.train.config import apply_overrides


@dataclass(frozen=True, kw_only=True)
class CommandOptions:
    """What only the command uses: output files, CPU threads, quietness, extra TrainConfig keys."""

    out: tuple[str, ...] = ()
    threads: int | None = None
    quiet: bool = False
    set: tuple[str, ...] = ()


COMMAND_OPTIONS: tuple[Option, ...] = option_group(
    "output",
    [
        ("--out", "out", "write the results: *.csv (table) and/or *.json"),
        ("--threads", "threads", "torch CPU threads (1 is fastest when small)"),
        ("--quiet", "quiet", "print only the tables"),
        (
            "--set",
            "set",
            "extra TrainConfig keys as KEY=VALUE, for the EB-SeqGAN run (or mle.KEY for the MLE run), "
            "e.g. --set d_steps=5 energy.dropout=0.1",
        ),
    ],
)


def dest(option: Option) -> str:
    """The argparse destination of an option: its flag without dashes (``--k-core`` → ``k_core``)."""
    return option.flag[2:].replace("-", "_")


def _field(root: Any, key: str) -> tuple[Any, Any]:
    """(annotated type, value) of the dotted field ``key`` of the dataclass ``root``."""
    obj, tp = root, None
    for part in key.split("."):
        tp = typing.get_type_hints(type(obj))[part]
        obj = getattr(obj, part)
    return tp, obj


def _argument(tp: Any, default: Any) -> dict[str, Any]:
    """argparse keywords for a field of type ``tp``: Optional → its type, tuple → nargs="+",
    Literal → choices, bool → --flag/--no-flag."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    kwargs: dict[str, Any] = {"default": default}
    if typing.get_origin(tp) is tuple:
        tp = typing.get_args(tp)[0]
        kwargs.update(nargs="+", default=list(default))
    if typing.get_origin(tp) is Literal:
        kwargs["choices"] = typing.get_args(tp)
        tp = type(kwargs["choices"][0])
    if tp is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = tp
    return kwargs


def add_options(
    parser: argparse.ArgumentParser, table: Sequence[Option], defaults: Any, *, required: Sequence[str] = ()
) -> argparse.ArgumentParser:
    """Add one option per row of ``table``; type, choices and default from the field of ``defaults``."""
    groups: dict[str, Any] = {}
    for option in table:
        group = groups.setdefault(option.group, parser.add_argument_group(option.group))
        tp, default = _field(defaults, option.keys[0])
        kwargs = _argument(tp, default)
        keys = ", ".join(option.keys)
        kwargs["help"] = f"{option.help} [{keys}; default: {default!r}]".replace("%", "%%")
        group.add_argument(option.flag, dest=dest(option), required=option.flag in required, **kwargs)
    return parser


def add_evaluate_arguments(
    parser: argparse.ArgumentParser, defaults: EvaluationConfig = DEFAULTS, *, data_required: bool = True
) -> argparse.ArgumentParser:
    """Add the ``evaluate`` options to ``parser`` with the defaults of ``defaults`` (a preset)."""
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="5core",
        help="starting point of every option below: 5core (this project's defaults: 5-core, seen items "
        "masked, windows) or recbole (RecBole's sequential defaults; docs/recommendation.md); "
        "options given explicitly override it [default: '5core']",
    )
    add_options(parser, OPTIONS, defaults, required=("--data",) if data_required else ())
    return add_options(parser, COMMAND_OPTIONS, CommandOptions())


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


def _overrides(pairs: Sequence[str]) -> dict[str, dict[str, str]]:
    """``KEY=VALUE`` pairs by run: ``mle.KEY`` goes to the MLE run, ``gan.KEY`` or ``KEY`` to the GAN."""
    out: dict[str, dict[str, str]] = {"mle": {}, "gan": {}}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r}")
        run, _, rest = key.partition(".")
        if run in out and rest:
            out[run][rest] = value.strip()
        else:
            out["gan"][key] = value.strip()
    return out


def config_from_args(args: argparse.Namespace, defaults: EvaluationConfig = DEFAULTS) -> EvaluationConfig:
    """The :class:`EvaluationConfig` the parsed options describe (``--set`` keys applied last).

    With ``--preset recbole`` the preset replaces ``defaults``; an option whose value differs
    from its parser default (the value of ``defaults``) overrides the preset.
    """
    name = getattr(args, "preset", "5core")
    base = defaults if name == "5core" else preset(name)
    changes: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(args, dest(option))
        value = tuple(value) if isinstance(value, list) else value
        if base is not defaults and value == _field(defaults, option.keys[0])[1]:
            continue  # left at the parser default: the preset decides
        for key in option.keys:
            changes[key] = value
    config = updated(base, changes)
    extra = _overrides(getattr(args, "set", ()))
    return replace(
        config,
        mle=apply_overrides(config.mle, extra["mle"]) if extra["mle"] else config.mle,
        gan=apply_overrides(config.gan, extra["gan"]) if extra["gan"] else config.gan,
    )


def writable_folder(folder: str | Path, *, option: str) -> Path:
    """Create ``folder`` (and its parents) and write a probe file in it; a ValueError naming the
    option, the path and the fix when that fails."""
    path = Path(folder or ".")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_check_"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(
            f"{option} {str(path)!r} cannot be written ({reason}); choose a folder you can write to"
        ) from None
    return path


def check_outputs(paths: Sequence[str]) -> None:
    """Refuse, before any work, ``--out`` files that cannot be written: the name must end in ``.csv``
    or ``.json``, must not be a folder, and its folder must be creatable and writable."""
    for path in paths:
        if not str(path).endswith((".csv", ".json")):
            raise ValueError(f"--out {path!r} must end in .csv or .json; e.g. --out results.csv results.json")
        if Path(path).is_dir():
            raise ValueError(f"--out {path!r} is a folder; give a file name such as {path}/results.csv")
        writable_folder(Path(path).parent, option=f"the folder of --out {path!r}")


def run_evaluation(config: EvaluationConfig, *, echo: Any = print) -> EvaluationReport:
    """Check the run folder, load, summarize, filter (rating threshold, k-core), check every
    protocol's split, and run the protocol. Every user error (a bad file, a filter or split that
    leaves nothing, an unwritable folder) is raised before any model is fitted."""
    say = echo or (lambda _: None)
    start = time.perf_counter()
    source, p = config.source, config.protocol
    writable_folder(p.out_dir, option="--run-dir")
    log = source.load()
    raw = summarize(log)
    say(f"read {source.path} ({source.fmt}) in {time.perf_counter() - start:.2f} s\n{raw.format()}")
    seqs = preprocess(log, min_rating=p.min_rating, min_user=p.k_core, min_item=p.k_core)
    kept = summarize(seqs)
    rating = f"rating >= {p.min_rating}, " if p.min_rating is not None else ""
    say(f"after {rating}{p.k_core}-core filtering:\n{kept.format()}")
    say(f"exclude seen items from rankings: {p.resolve_exclude_seen(kept.repeat_share)}")
    report = run_protocols(seqs, config, echo=say)
    report.data["raw_summary"] = asdict(raw)
    report.data["filters"] = {"min_rating": p.min_rating, "k_core": p.k_core}
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


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` unless None; fewer than 1 exits with a message."""
    if threads is None:
        return
    if threads < 1:
        raise SystemExit(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def evaluate_command(args: argparse.Namespace) -> int:
    """Handler of ``python -m gan_equiv evaluate``: run, print the tables, write ``--out`` files.

    Returns 0, or 2 with the message on stderr when the data file is missing or malformed; other
    user errors (options, filters, splits, unwritable outputs) are ValueErrors raised before any
    model is fitted.
    """
    check_outputs(args.out)
    set_threads(args.threads)
    try:
        report = run_evaluation(config_from_args(args), echo=None if args.quiet else print)
    except InteractionFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print()
    print(result_tables(report))
    t = report.timings
    print(f"\nwall time {t['total_wall_s']:.1f} s, peak memory (max RSS) {t['max_rss_mib']:.0f} MiB")
    for path in args.out:
        print(f"wrote {report.write(path)}")
    return 0
