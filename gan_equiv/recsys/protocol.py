"""The evaluation protocol: every model fitted on the same splits with the same seed, then scored.

:func:`run_protocols` runs, for each requested protocol,

- ``next`` — leave-one-out: models fit on train, the validation item selects the MLE epoch, the
  test item is ranked against all V items from history = train + validation
  (:func:`gan_equiv.recsys.metrics.next_item_metrics`);
- ``multistep`` — each user's last n_max = max(steps) items are the future, the item before them
  is validation, the rest train; models are refit on that train part and generate n_max items
  greedily from history = train + validation (:func:`gan_equiv.recsys.metrics.multi_step_metrics`).

Settings come from one :class:`~gan_equiv.recsys.settings.EvaluationConfig`; the results are an
:class:`~gan_equiv.recsys.report.EvaluationReport`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from gan_equiv.recsys.histories import Histories
from gan_equiv.recsys.logs import UserSequences
from gan_equiv.recsys.metrics import multi_step_metrics, next_item_metrics
from gan_equiv.recsys.preprocessing import TailSplit, Windows, split_tail, summarize, training_windows
from gan_equiv.recsys.recommend import save_recommender
from gan_equiv.recsys.recommenders import (
    EBSeqGANRecommender,
    GRURecommender,
    MarkovRecommender,
    PopularityRecommender,
    Recommender,
    SASRecRecommender,
    TrainData,
)
from gan_equiv.recsys.report import EvaluationReport, json_safe, max_rss_mib
from gan_equiv.recsys.sequential import prefix_examples
from gan_equiv.recsys.settings import MODELS, EvaluationConfig

#: The MLE model each adversarial model starts from.
GAN_INIT = {"ebseqgan": "mle", "ebseqgan_sasrec": "sasrec", "seqgan": "mle", "gan_gcl": "mle"}
#: The trainer's ``objective`` of each adversarial model (the GAN ⇄ IRL family, docs/family.md).
GAN_OBJECTIVE = {"ebseqgan": "ebgan", "ebseqgan_sasrec": "ebgan", "seqgan": "seqgan", "gan_gcl": "gan_gcl"}


def build_model(name: str, config: EvaluationConfig, *, mle: GRURecommender | None = None) -> Recommender:
    """A fresh model by name (``ebseqgan`` / ``ebseqgan_sasrec`` need the fitted ``mle`` / ``sasrec``
    model they start from, passed as ``mle``)."""
    if name == "pop":
        return PopularityRecommender()
    if name == "markov":
        return MarkovRecommender(alpha=config.protocol.markov_alpha)
    if name == "mle":
        return GRURecommender(config.mle, patience=config.protocol.patience)
    if name == "sasrec":
        p = config.protocol
        return SASRecRecommender(config.mle, patience=p.patience, settings=p.sasrec)
    if name in GAN_INIT:
        if mle is None:
            raise ValueError(f"{name} starts from the fitted {GAN_INIT[name]} model; pass mle=")
        gan = replace(config.gan, objective=GAN_OBJECTIVE[name])  # same settings, its own objective
        return EBSeqGANRecommender(mle, gan, name=name)
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def train_data(
    split: TailSplit, config: EvaluationConfig, seqs: UserSequences, protocol: str, *, exclude_seen: bool
) -> tuple[TrainData, Windows]:
    """What every model of one protocol fits on: the train prefixes, their windows of length T,
    and the validation history and item (the first held-out item after the train prefix)."""
    p = config.protocol
    windows = training_windows(split.train, horizon=p.horizon, stride=p.stride)
    data = TrainData(
        train=split.train,
        windows=windows.items,
        valid_history=Histories.from_ragged(split.train),
        valid_target=torch.as_tensor(split.valid.values[split.valid.offsets[:-1]]),
        n_items=seqs.n_items,
        horizon=p.horizon,
        seed=p.seed,
        source=seqs.source,
        out_dir=str(Path(p.out_dir) / protocol),
        exclude_seen=exclude_seen,
        prefixes=prefix_examples(split.train, context=p.horizon - 1) if p.examples == "prefixes" else None,
        select_metric=p.select_metric,
    )
    return data, windows


def _score(
    model: Recommender,
    protocol: str,
    data: TrainData,
    split: TailSplit,
    config: EvaluationConfig,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics row, curves) of one fitted model under one protocol."""
    p, exclude = config.protocol, data.exclude_seen
    test_history = Histories.from_ragged(split.history("test"))
    if protocol == "next":
        valid = next_item_metrics(model, data.valid_history, data.valid_target, ks=p.ks, exclude_seen=exclude)
        row = next_item_metrics(
            model,
            test_history,
            torch.as_tensor(split.test.values),
            ks=p.ks,
            exclude_seen=exclude,
            batch_size=p.eval_batch_size,
        )
        row["valid_NDCG@10"] = valid.get("NDCG@10", float("nan"))
        return row, {}
    future = split.test.values.reshape(-1, max(p.steps))
    ms = multi_step_metrics(
        model,
        test_history,
        future,
        steps=p.steps,
        k=p.hit_k,
        exclude_seen=exclude,
        batch_size=p.eval_batch_size,
    )
    return ms.row(), {"hit_model": ms.hit_model.tolist(), "hit_data": ms.hit_data.tolist()}


def protocol_splits(seqs: UserSequences, config: EvaluationConfig) -> dict[str, TailSplit]:
    """The split of every protocol of ``config``, each checked before any model is fitted.

    ``next`` holds out 1 test item, ``multistep`` max(steps); each also 1 validation item and keeps
    at least 1 training item, so a user needs n_test + 2 interactions. A protocol that no user can
    serve, or a generator that would get no training example (no prefix of T items for windows, no
    prefix of 2 items for one example per target), is a ValueError naming the value and the fix.
    """
    p = config.protocol
    lengths = seqs.seqs.lengths
    longest = int(lengths.max(initial=0))
    out: dict[str, TailSplit] = {}
    for protocol in p.protocols:
        n_test = 1 if protocol == "next" else max(p.steps)
        split = split_tail(seqs, n_valid=1, n_test=n_test)
        if split.train.n_rows == 0:
            fix = (
                "leave-one-out needs 3 interactions per user (train, validation, test); use a log with "
                "longer histories"
                if protocol == "next"
                else f"lower --steps (now {' '.join(map(str, p.steps))}) or use --protocols next"
            )
            raise ValueError(
                f"protocol {protocol!r}: every one of the {seqs.n_users} users has fewer than {n_test + 2} "
                f"interactions (the longest has {longest}); {fix}"
            )
        trained = [m for m in p.models if m not in ("pop", "markov")]
        train_lengths = split.train.lengths
        windowed = [m for m in trained if p.examples == "windows" or m in GAN_INIT]  # EB-SeqGAN: windows
        if windowed and not (train_lengths >= p.horizon).any():
            raise ValueError(
                f"protocol {protocol!r}: no training prefix has T={p.horizon} items (the longest has "
                f"{int(train_lengths.max())}), so {', '.join(windowed)} get no training window; lower "
                "--horizon" + (" or use --examples prefixes" if p.examples == "windows" else "")
            )
        if trained and not (train_lengths >= 2).any():
            raise ValueError(
                f"protocol {protocol!r}: every training prefix has one item, so {', '.join(trained)} get "
                "no (history, next item) example; use a log with longer histories"
            )
        out[protocol] = split
    return out


def run_protocols(
    seqs: UserSequences, config: EvaluationConfig, *, echo: Callable[[str], None] | None = print
) -> EvaluationReport:
    """Fit every requested model on each protocol's split (same split, same seed) and evaluate.

    ``next``: leave-one-out; models fit on train, validation item for selection, test item ranked
    with history = train + validation. ``multistep``: the last n_max = max(steps) items of each user
    are the future, the item before them is validation, the rest train; models are refit on that
    train part and generate n_max items from history = train + validation. ``ebseqgan`` always
    starts from the ``mle`` model of the same protocol (fitted even if ``mle`` is not reported).
    ``exclude_seen="auto"`` masks seen items iff no (user, item) pair of ``seqs`` repeats.
    """
    say = echo or (lambda _: None)
    p = config.protocol
    start_all = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {m: {"model": m} for m in p.models}
    curves: dict[str, dict[str, Any]] = {m: {} for m in p.models}
    timings: dict[str, Any] = {}
    summary = summarize(seqs)
    exclude = p.resolve_exclude_seen(summary.repeat_share)
    data_info: dict[str, Any] = {"summary": asdict(summary), "source": seqs.source, "exclude_seen": exclude}
    needed = {GAN_INIT[m] for m in p.models if m in GAN_INIT}
    fit_order = [m for m in MODELS if m in p.models or m in needed]
    splits = protocol_splits(seqs, config)  # every protocol checked before any model is fitted
    for protocol, split in splits.items():
        data, windows = train_data(split, config, seqs, protocol, exclude_seen=exclude)
        data_info[protocol] = {
            "users": split.train.n_rows,
            "dropped_users": split.n_dropped,
            "train_interactions": int(split.train.values.size),
            "windows": int(windows.items.shape[0]),
            "users_without_window": windows.n_short_rows,
        }
        say(
            f"[{protocol}] {split.train.n_rows} users ({split.n_dropped} dropped), "
            f"{split.train.values.size} train interactions, "
            f"{windows.items.shape[0]} windows of T={p.horizon} "
            f"({windows.n_short_rows} users too short for a window)"
        )
        fitted: dict[str, Recommender] = {}
        for name in fit_order:
            torch.manual_seed(p.seed)
            t0 = time.perf_counter()
            init = fitted.get(GAN_INIT.get(name, ""))
            model = build_model(name, config, mle=init)  # type: ignore[arg-type]
            model.fit(data)
            fit_s = time.perf_counter() - t0
            policy = getattr(model, "policy", None)
            if policy is not None:
                path = save_recommender(Path(data.out_dir) / name / "model.pt", policy, seqs.items.tokens)
                timings[f"{protocol}/{name}/model"] = str(path)
            fitted[name] = model
            timings[f"{protocol}/{name}"] = {"fit_s": fit_s, **model.timings, "max_rss_mib": max_rss_mib()}
            if name not in p.models:
                continue
            t0 = time.perf_counter()
            metrics, model_curves = _score(model, protocol, data, split, config)
            row = rows[name]
            row.update(metrics)
            curves[name].update(model_curves)
            if model.log:
                curves[name][f"{protocol}_training"] = model.log
            row[f"fit_s_{protocol}"] = fit_s
            timings[f"{protocol}/{name}"]["eval_s"] = time.perf_counter() - t0
            say(f"[{protocol}] {name}: fit {fit_s:.1f} s; " + _short(row, protocol))
    timings["wall_s"] = time.perf_counter() - start_all
    timings["max_rss_mib"] = max_rss_mib()
    return EvaluationReport(
        rows=[rows[m] for m in p.models],
        curves=curves,
        data=data_info,
        settings=json_safe(asdict(config)),
        timings=timings,
    )


def _short(row: dict[str, Any], protocol: str) -> str:
    keys = (
        ("HR@10", "NDCG@10", "MRR@10")
        if protocol == "next"
        else ("recall_n10", "hit10_model_n10", "hit10_data_n10")
    )
    return ", ".join(f"{k}={row[k]:.4f}" for k in keys if k in row)
