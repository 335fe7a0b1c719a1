"""EB-SeqGAN vs behaviour cloning on MovieLens-100K (or any log): the recommendation results table.

Runs the whole protocol of ``python -m gan_equiv evaluate`` — popularity, first-order Markov, the
MLE GRU (behaviour cloning) and EB-SeqGAN started from it; next-item leave-one-out full ranking
and multi-step greedy generation (model-fed vs data-fed) — and writes ``results.json`` (everything),
``results.csv`` (the table) and ``results.md`` (tables, settings, seed, wall time, peak memory,
time per epoch) to ``--out-dir``.

Getting ML-100K: ``pip download recbole==1.2.1 --no-deps -d /tmp/recbole`` and
``unzip /tmp/recbole/recbole-1.2.1-py3-none-any.whl 'recbole/dataset_example/ml-100k/*' -d /tmp/recbole``
give ``/tmp/recbole/recbole/dataset_example/ml-100k/ml-100k.inter``; or take ``u.data`` from
https://grouplens.org/datasets/movielens/100k/ and pass ``--format movielens``.

The defaults are the reduced size documented in docs/recommendation.md (2 CPU cores, a few
minutes): T = 10, window stride 2, GRU 64/64 for ≤ 8 epochs, 50 adversarial rounds with K = 8.
A bigger run: ``--stride 1 --epochs 30 --patience 5 --horizon 20 --rounds 300 --n-rollouts 16``.
``--fast`` runs a smoke test on a synthetic log written to the output folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from gan_equiv.recsys.evaluate import (
    add_evaluate_arguments,
    config_from_args,
    result_tables,
    run_evaluation,
    set_threads,
)
from gan_equiv.recsys.readers import write_interactions
from gan_equiv.recsys.report import EvaluationReport
from gan_equiv.recsys.settings import EvaluationConfig, movielens_reduced, smoke_preset
from gan_equiv.recsys.synthetic import synthetic_log


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, EvaluationConfig]:
    """The ``evaluate`` options with the reduced ML-100K preset as defaults (the smoke preset with
    ``--fast``), plus --out-dir and --fast; returns the options and the configuration."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--fast", action="store_true", help="synthetic log, tiny sizes: a smoke test")
    fast = pre.parse_known_args(argv)[0].fast
    preset = smoke_preset() if fast else movielens_reduced()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_evaluate_arguments(parser, preset, data_required=False)
    parser.add_argument(
        "--out-dir",
        default="outputs/movielens",
        help="folder of the results; trainer runs go to OUT_DIR/runs",
    )
    parser.add_argument("--fast", action="store_true", help="synthetic log, tiny sizes: a smoke test")
    args = parser.parse_args(argv)
    config = config_from_args(args, preset)
    config = replace(config, protocol=replace(config.protocol, out_dir=str(Path(args.out_dir) / "runs")))
    if fast:
        path = write_interactions(
            synthetic_log(n_users=60, n_items=30, seed=config.protocol.seed),
            Path(args.out_dir) / "synthetic.inter",
            fmt="recbole",
        )
        config = replace(config, source=replace(config.source, path=str(path), fmt="recbole"))
    elif not config.source.path:
        parser.error("--data PATH is required (e.g. ml-100k.inter), unless --fast")
    return args, config


def markdown(report: EvaluationReport, command: str) -> str:
    """results.md: the two tables, the settings, the timings and the command."""
    t = report.timings
    epoch = {k: v for k, v in t.items() if isinstance(v, dict) and "epoch_s" in v}
    rounds = {k: v for k, v in t.items() if isinstance(v, dict) and "round_s" in v}
    cols = report.columns()
    next_cols = [c for c in cols if "@" in c]
    multi = [c for c in cols if c.startswith(("recall_", "hit", "coverage_", "distinct_"))]
    lines = [
        f"# Results: {report.data['source']}",
        "",
        f"Command: `{command}`",
        "",
        f"Seed {report.settings['protocol']['seed']}; wall time {t['total_wall_s']:.1f} s; "
        "peak memory (max RSS) "
        f"{t['max_rss_mib']:.0f} MiB; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{platform.processor() or platform.machine()}.",
        "",
        "## Next item (leave-one-out, full ranking)",
        "",
        report.table(["model", *next_cols], markdown=True),
        "",
        "## Multi-step (greedy, model-fed vs data-fed)",
        "",
        report.table(["model", *multi], markdown=True),
        "",
        "## Time per epoch / round",
        "",
    ]
    lines += [
        f"- {k}: {v['epoch_s']:.2f} s per MLE epoch ({v['epochs']} epochs run)"
        for k, v in sorted(epoch.items())
    ]
    lines += [f"- {k}: {v['round_s']:.2f} s per adversarial round" for k, v in sorted(rounds.items())]
    lines += ["", "## Data", "", "```", json.dumps(report.data, indent=1, default=str), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> EvaluationReport:
    """Run the protocol, print the tables, write results.json/.csv/.md; returns the report."""
    args, config = parse_args(argv)
    out = Path(args.out_dir)
    command = "python examples/movielens.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    set_threads(args.threads)
    report = run_evaluation(config, echo=None if args.quiet else print)
    print()
    print(result_tables(report))
    t = report.timings
    print(f"\nwall time {t['total_wall_s']:.1f} s, peak memory (max RSS) {t['max_rss_mib']:.0f} MiB")
    out.mkdir(parents=True, exist_ok=True)
    report.write(out / "results.json")
    report.write(out / "results.csv")
    (out / "results.md").write_text(markdown(report, command))
    print(f"wrote {out / 'results.json'}, {out / 'results.csv'}, {out / 'results.md'}")
    return report


if __name__ == "__main__":
    main()
