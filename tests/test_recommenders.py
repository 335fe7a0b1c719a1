"""Recommenders, ranking and multi-step metrics (hand-computed cases, ties included), the protocol,
and smoke runs of the ``evaluate`` command and examples/movielens.py on tiny synthetic files."""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script

from gan_equiv.models.policies import GRUPolicy
from gan_equiv.recsys.evaluate import add_evaluate_arguments, add_evaluate_parser, config_from_args
from gan_equiv.recsys.histories import PAD, Histories
from gan_equiv.recsys.logs import Ragged
from gan_equiv.recsys.metrics import (
    catalogue_coverage,
    distinct_items,
    list_recall,
    multi_step_metrics,
    next_item_metrics,
)
from gan_equiv.recsys.preprocessing import build_sequences
from gan_equiv.recsys.protocol import GAN_OBJECTIVE, build_model, run_protocols
from gan_equiv.recsys.readers import write_interactions
from gan_equiv.recsys.recommenders import (
    MarkovRecommender,
    PopularityRecommender,
    Recommender,
    TrainData,
    policy_scores,
)
from gan_equiv.recsys.settings import (
    DEFAULTS,
    GAN_DEFAULTS,
    MLE_DEFAULTS,
    OPTIONS,
    EvaluationConfig,
    ProtocolConfig,
    movielens_reduced,
    updated,
)
from gan_equiv.recsys.synthetic import synthetic_log
from gan_equiv.train.config import TrainConfig


def ragged(rows: list[list[int]]) -> Ragged:
    lengths = [len(r) for r in rows]
    return Ragged(
        np.array([x for r in rows for x in r], dtype=np.int64), np.concatenate([[0], np.cumsum(lengths)])
    )


def train_data(rows: list[list[int]], n_items: int) -> TrainData:
    r = ragged(rows)
    return TrainData(
        train=r,
        windows=np.zeros((0, 2), dtype=np.int64),
        valid_history=Histories.from_ragged(r),
        valid_target=torch.zeros(len(rows), dtype=torch.long),
        n_items=n_items,
        horizon=2,
    )


class Cyclic(Recommender):
    """Scripted scores from the last item i: 2 for (i+1) mod V, 1 for (i+2) mod V, 0 elsewhere."""

    name = "cyclic"

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.n_items = n_items

    def scores(self, histories: Histories) -> torch.Tensor:
        last = histories.last_items()
        s = torch.zeros(len(histories), self.n_items, dtype=torch.float64)
        rows = torch.arange(len(histories))
        s[rows, (last + 1) % self.n_items] = 2.0
        s[rows, (last + 2) % self.n_items] = 1.0
        return s


# --- histories -------------------------------------------------------------------------------


def test_histories_alignment_append_and_seen() -> None:
    h = Histories.from_ragged(ragged([[1, 2, 3], [], [4]]))
    assert h.items.tolist() == [[1, 2, 3], [PAD, PAD, PAD], [PAD, PAD, 4]]
    assert h.lengths.tolist() == [3, 0, 1]
    assert h.last_items().tolist() == [3, PAD, 4]
    assert h.tail(2).tolist() == [[2, 3], [PAD, PAD], [PAD, 4]]
    assert h.tail(5).tolist()[2] == [PAD, PAD, PAD, PAD, 4]
    h2 = h.append(torch.tensor([0, 5, 1]))
    assert h2.last_items().tolist() == [0, 5, 1] and h2.lengths.tolist() == [4, 1, 2]
    seen = h2.seen_mask(6)
    assert seen.tolist()[1] == [False, False, False, False, False, True]
    assert seen.sum(dim=1).tolist() == [4, 1, 2]


# --- models ----------------------------------------------------------------------------------


def test_popularity_and_markov_hand_computed() -> None:
    data = train_data([[0, 1, 2], [1, 2]], n_items=4)
    pop = PopularityRecommender().fit(data)
    assert pop.scores(Histories.from_ragged(ragged([[3], []]))).tolist() == [[1, 2, 2, 0]] * 2
    markov = MarkovRecommender(alpha=1.0).fit(data)
    # pairs (0,1), (1,2), (1,2); pop = [.2, .4, .4, 0]
    s = markov.scores(Histories.from_ragged(ragged([[0, 1], [2, 3], [], [0]])))
    p = np.array([0.2, 0.4, 0.4, 0.0])
    np.testing.assert_allclose(s[0].numpy(), (np.array([0, 0, 2, 0]) + p) / 3)
    np.testing.assert_allclose(s[1].numpy(), p)  # item 3 never precedes anything: back-off
    np.testing.assert_allclose(s[2].numpy(), p)  # empty history: popularity
    np.testing.assert_allclose(s[3].numpy(), (np.array([0, 1, 0, 0]) + p) / 2)
    assert np.allclose(s.sum(dim=1).numpy(), 1.0)
    with pytest.raises(ValueError, match="alpha"):
        MarkovRecommender(alpha=0)


def test_policy_scores_match_next_item_log_probs() -> None:
    torch.manual_seed(0)
    policy = GRUPolicy(7, 4, embed_dim=5, hidden_dim=6)
    h = Histories.from_ragged(ragged([[1, 2, 3, 4, 5], [6], [0, 2, 6]]))
    got = policy_scores(policy, h)
    want_full = policy.next_item_log_probs(torch.tensor([[3, 4, 5], [0, 2, 6]]))  # last T−1 = 3 items
    want_short = policy.next_item_log_probs(torch.tensor([[6]]))
    torch.testing.assert_close(got[[0, 2]], want_full.detach())
    torch.testing.assert_close(got[1:2], want_short.detach())


# --- next-item metrics -----------------------------------------------------------------------


def test_next_item_metrics_ties_and_exclusion() -> None:
    pop = PopularityRecommender().fit(train_data([[0, 0, 0, 1, 2, 4, 4]], n_items=5))  # counts 3,1,1,0,2
    h = Histories.from_ragged(ragged([[0]]))
    target = torch.tensor([2])
    # history item 0 masked: scores [-inf, 1, 1, 0, 2]; target ties with item 1 → rank 2 or 3
    m = next_item_metrics(pop, h, target, ks=(1, 2, 3))
    assert m["HR@1"] == 0 and m["HR@2"] == pytest.approx(0.5) and m["HR@3"] == pytest.approx(1.0)
    assert m["NDCG@2"] == pytest.approx(0.5 / math.log2(3))
    assert m["MRR@2"] == pytest.approx(0.25)
    assert m["MRR@3"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    # without exclusion item 0 (count 3) is ranked above too: rank 3 or 4
    m = next_item_metrics(pop, h, target, ks=(2, 3), exclude_seen=False)
    assert m["HR@2"] == 0 and m["HR@3"] == pytest.approx(0.5)
    # chunking does not change the means
    h3 = Histories.from_ragged(ragged([[0], [1], [4]]))
    t3 = torch.tensor([2, 4, 0])
    a = next_item_metrics(pop, h3, t3, ks=(2,))
    b = next_item_metrics(pop, h3, t3, ks=(2,), batch_size=1)
    assert a == pytest.approx(b)


# --- multi-step metrics ----------------------------------------------------------------------


def test_list_recall_coverage_distinct() -> None:
    assert list_recall([[1, 3, 4]], [[1, 1, 2]]) == pytest.approx(0.5)  # distinct truth {1, 2}
    assert list_recall([[1, 2], [5, 6]], [[2, 1], [7, 8]]) == pytest.approx(0.5)
    assert list_recall([[1, 1, 1]], [[1, 2, 3]]) == pytest.approx(1 / 3)
    assert distinct_items([[1, 2], [2, 3]]) == 3
    assert catalogue_coverage([[1, 2], [2, 3]], 6) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        list_recall([[1]], [[1], [2]])


def test_multi_step_hand_computed_with_ties() -> None:
    """Two users, V = 5, the scripted Cyclic model; worked out by hand in the comments."""
    model = Cyclic(5)
    h = Histories.from_ragged(ragged([[0], [2]]))
    future = torch.tensor([[1, 3, 4], [0, 4, 1]])
    # user A, model-fed: ranks of the targets 1, 2, 2 (generates 1, 2, 3); data-fed: 1, 2, 1.
    # user B, model-fed: target 0 ties with item 1 at score 0 behind 3 and 4 → rank 3 or 4; then
    #   ranks 1, 2 (generates 3, 4, 0); data-fed: rank 3|4, then 4 ties with 3 behind 1 → rank 2|3,
    #   then rank 1.
    r1 = multi_step_metrics(model, h, future, steps=(1, 3), k=1)
    np.testing.assert_allclose(r1.hit_model, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(r1.hit_data, [0.5, 0.0, 1.0])
    assert r1.generated.tolist() == [[1, 2, 3], [3, 4, 0]]
    assert r1.recall == pytest.approx({1: 0.5, 3: 2 / 3})
    assert r1.coverage == pytest.approx({1: 0.4, 3: 1.0})
    assert r1.distinct == {1: 2, 3: 5}
    r3 = multi_step_metrics(model, h, future, steps=(3,), k=3)
    np.testing.assert_allclose(r3.hit_model, [0.75, 1.0, 1.0])
    np.testing.assert_allclose(r3.hit_data, [0.75, 1.0, 1.0])
    r2 = multi_step_metrics(model, h, future, steps=(3,), k=2)
    np.testing.assert_allclose(r2.hit_data, [0.5, 0.75, 1.0])  # B at step 2: rank 2|3 → 1/2
    row = r1.row()
    assert row["hit1_model_n3"] == pytest.approx(1 / 3) and row["hit1_data_n3"] == pytest.approx(0.5)
    assert row["recall_n1"] == pytest.approx(0.5) and row["distinct_n3"] == 5
    # position 1 with a data-fed prefix is the next-item HR@k
    assert r1.hit_data[0] == pytest.approx(next_item_metrics(model, h, future[:, 0], ks=(1,))["HR@1"])
    # chunked evaluation gives the same numbers
    r1b = multi_step_metrics(model, h, future, steps=(1, 3), k=1, batch_size=1)
    np.testing.assert_allclose(r1b.hit_model, r1.hit_model)
    assert r1b.generated.tolist() == r1.generated.tolist()


def test_multi_step_without_exclusion_repeats_and_checks_shape() -> None:
    pop = PopularityRecommender().fit(train_data([[0, 0, 1]], n_items=3))
    r = multi_step_metrics(
        pop, Histories.from_ragged(ragged([[2]])), [[0, 1]], steps=(2,), k=1, exclude_seen=False
    )
    assert r.generated.tolist() == [[0, 0]]  # greedy, no masking: the top item again
    r = multi_step_metrics(pop, Histories.from_ragged(ragged([[2]])), [[0, 1]], steps=(2,), k=1)
    assert r.generated.tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="future must be"):
        multi_step_metrics(pop, Histories.from_ragged(ragged([[2]])), [[0]], steps=(2,))


# --- protocol and commands -------------------------------------------------------------------

TINY_GENERATOR = replace(MLE_DEFAULTS.generator, embed_dim=8, hidden_dim=8)
TINY = updated(
    DEFAULTS,
    {
        "protocol.horizon": 4,
        "protocol.steps": (2, 3),
        "mle.generator": TINY_GENERATOR,
        "gan.generator": TINY_GENERATOR,
        "mle.pretrain_g_epochs": 2,
        "mle.batch_size": 64,
        "mle.g_optim.lr": 1e-2,
        "gan.energy.embed_dim": 4,
        "gan.energy.filter_sizes": (1, 2),
        "gan.energy.num_filters": (4, 4),
        "gan.pretrain_d_steps": 2,
        "gan.adversarial_rounds": 2,
        "gan.n_rollouts": 2,
        "gan.eval_every": 1,
    },
)


def test_protocol_rows_and_same_split(tmp_path: Path) -> None:
    seqs = build_sequences(synthetic_log(n_users=40, n_items=30, max_length=20, seed=7))
    report = run_protocols(seqs, updated(TINY, {"protocol.out_dir": str(tmp_path)}), echo=None)
    assert [r["model"] for r in report.rows] == ["pop", "markov", "mle", "ebseqgan"]
    for row in report.rows:
        for key in (
            "HR@10",
            "NDCG@20",
            "MRR@10",
            "recall_n3",
            "hit10_model_n2",
            "coverage_n3",
            "distinct_n2",
        ):
            assert key in row
            assert 0 <= row[key] <= (1 if key != "distinct_n2" else seqs.n_items)
    assert report.data["next"]["users"] == 40 and report.data["multistep"]["users"] == 40
    assert len(report.curves["mle"]["hit_model"]) == 3
    assert report.curves["ebseqgan"]["next_training"][-1]["round"] == 2
    # the GAN starts from the MLE GRU: with no adversarial step its ranking is the MLE ranking
    frozen = updated(
        TINY,
        {
            "protocol.protocols": ("next",),
            "protocol.models": ("mle", "ebseqgan"),
            "protocol.out_dir": str(tmp_path / "b"),
            "gan.pretrain_d_steps": 0,
            "gan.adversarial_rounds": 0,
        },
    )
    a, b = run_protocols(seqs, frozen, echo=None).rows
    assert a["NDCG@10"] == b["NDCG@10"] and a["HR@20"] == b["HR@20"]
    json.dumps(report.to_dict())
    with pytest.raises(ValueError, match="unknown model"):
        ProtocolConfig(models=("bert4rec",))


def test_the_family_runs_under_the_protocol_with_one_setting_each(tmp_path: Path) -> None:
    """seqgan and gan_gcl are the EB-SeqGAN loop with another objective: the same MLE start and GAN
    settings; with no adversarial step all three rank exactly as the MLE GRU they start from."""
    seqs = build_sequences(synthetic_log(n_users=40, n_items=30, max_length=20, seed=7))
    family = ("mle", "ebseqgan", "seqgan", "gan_gcl")
    config = updated(TINY, {"protocol.protocols": ("next",), "protocol.models": family})
    report = run_protocols(seqs, updated(config, {"protocol.out_dir": str(tmp_path / "a")}), echo=None)
    assert [r["model"] for r in report.rows] == list(family)
    frozen = updated(
        config,
        {"protocol.out_dir": str(tmp_path / "b"), "gan.pretrain_d_steps": 0, "gan.adversarial_rounds": 0},
    )
    rows = run_protocols(seqs, frozen, echo=None).rows
    assert len({(r["NDCG@10"], r["HR@20"]) for r in rows}) == 1
    with pytest.raises(ValueError, match="gan_gcl starts from the fitted mle model"):
        build_model("gan_gcl", config)
    assert GAN_OBJECTIVE["gan_gcl"] == "gan_gcl" and GAN_OBJECTIVE["seqgan"] == "seqgan"


def evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_equiv")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_evaluate_command_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    log = synthetic_log(n_users=40, n_items=30, max_length=20, seed=8)
    path = write_interactions(log, tmp_path / "log.csv", fmt="csv")
    text = path.read_text().replace("user_id,item_id,rating,timestamp", "uid,iid,stars,ts")
    path.write_text(text)
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    argv = [
        "evaluate", "--data", str(path), "--format", "csv", "--user-col", "uid", "--item-col", "iid",
        "--time-col", "ts", "--rating-col", "stars", "--min-rating", "2", "--k-core", "3",
        "--horizon", "4", "--epochs", "2", "--embed-dim", "8", "--hidden-dim", "8", "--rounds", "2",
        "--d-pretrain", "2", "--n-rollouts", "2", "--steps", "2", "3", "--run-dir", str(tmp_path / "runs"),
        "--set", "energy.filter_sizes=1,2", "energy.num_filters=4,4", "--out", str(out_csv), str(out_json),
    ]  # fmt: skip
    args = evaluate_parser().parse_args(argv)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "next item (leave-one-out, full ranking)" in out and "multi-step" in out
    with out_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == ["pop", "markov", "mle", "ebseqgan"]
    assert float(rows[1]["HR@10"]) > 0
    saved = json.loads(out_json.read_text())
    assert saved["settings"]["gan"]["energy"]["filter_sizes"] == [1, 2]
    assert saved["settings"]["gan"]["energy"]["num_filters"] == [4, 4]
    assert saved["settings"]["mle"]["generator"] == saved["settings"]["gan"]["generator"]
    assert saved["data"]["filters"] == {"min_rating": 2.0, "k_core": 3}
    assert time.perf_counter() - start < 30


def test_evaluate_command_reports_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "u.data"
    path.write_text("1\t2\t5\t100\n1\t3\t4\n")
    args = evaluate_parser().parse_args(["evaluate", "--data", str(path), "--format", "movielens"])
    assert args.func(args) == 2
    assert f"{path}, line 2: expected 4 fields" in capsys.readouterr().err


def test_movielens_example_fast(tmp_path: Path) -> None:
    report = load_script("examples/movielens.py").main(["--fast", "--out-dir", str(tmp_path), "--quiet"])
    assert {r["model"] for r in report.rows} == {"pop", "markov", "mle", "ebseqgan"}
    for name in ("results.json", "results.csv", "results.md"):
        assert (tmp_path / name).exists()
    assert "per MLE epoch" in (tmp_path / "results.md").read_text()


# --- one schema ------------------------------------------------------------------------------


def flat(obj: object, prefix: str = "") -> dict[str, object]:
    """Dotted key → value of a nested dataclass (tuples kept)."""
    out: dict[str, object] = {}
    for key, value in (asdict(obj) if prefix == "" else obj).items():  # type: ignore[union-attr]
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_options_are_derived_from_the_schema() -> None:
    """Parsing no option but --data gives the defaults back: one table, no second copy of a default."""
    args = evaluate_parser().parse_args(["evaluate", "--data", "log.inter"])
    assert config_from_args(args) == updated(DEFAULTS, {"source.path": "log.inter"})
    flags = [o.flag for o in OPTIONS]
    assert len(flags) == len(set(flags))
    for option in OPTIONS:  # every dotted key exists, and every key of one option shares a default
        values = {repr(flat(DEFAULTS)[key]) for key in option.keys}
        assert len(values) == 1, option
    # a preset given as defaults changes the parsed defaults, and flags still win over it
    parser = add_evaluate_arguments(argparse.ArgumentParser(), movielens_reduced(), data_required=False)
    assert config_from_args(parser.parse_args([]), movielens_reduced()) == movielens_reduced()
    cfg = config_from_args(parser.parse_args(["--stride", "3", "--embed-dim", "12"]), movielens_reduced())
    assert cfg.protocol.stride == 3 and cfg.mle.generator.embed_dim == cfg.gan.generator.embed_dim == 12


def test_presets_are_defaults_plus_differences() -> None:
    base, reduced = flat(DEFAULTS), flat(movielens_reduced())
    assert {k for k in base if base[k] != reduced[k]} == {
        "protocol.stride",
        "protocol.patience",
        "mle.pretrain_g_epochs",
    }
    mle, gan = flat(MLE_DEFAULTS), flat(GAN_DEFAULTS)
    assert mle["margin"] == gan["margin"] == flat(TrainConfig())["margin"]  # the EBGAN m, written once
    assert MLE_DEFAULTS.generator == GAN_DEFAULTS.generator


def test_schema_errors_name_value_and_fix() -> None:
    with pytest.raises(ValueError, match="EB-SeqGAN starts from the MLE policy"):
        updated(DEFAULTS, {"gan.generator.hidden_dim": 7})
    with pytest.raises(ValueError, match=r"unknown key 'protocol\.windw'"):
        updated(DEFAULTS, {"protocol.windw": 3})
    with pytest.raises(ValueError, match="horizon T must be at least 2"):
        ProtocolConfig(horizon=1)
    with pytest.raises(ValueError, match="unknown exclude_seen 'maybe'"):
        ProtocolConfig(exclude_seen="maybe")  # type: ignore[arg-type]
    assert ProtocolConfig(steps=(10, 5, 5)).steps == (5, 10)
    assert ProtocolConfig().resolve_exclude_seen(0.0) and not ProtocolConfig().resolve_exclude_seen(0.1)
    assert not ProtocolConfig(exclude_seen="no").resolve_exclude_seen(0.0)


def test_set_routes_keys_to_the_mle_or_gan_run() -> None:
    argv = ["evaluate", "--data", "x", "--set", "mle.g_optim.weight_decay=0.5", "d_steps=7", "gan.margin=3"]
    cfg = config_from_args(evaluate_parser().parse_args(argv))
    assert cfg.mle.g_optim.weight_decay == 0.5 and cfg.gan.g_optim.weight_decay == 0.0
    assert cfg.gan.d_steps == 7 and cfg.gan.margin == 3.0 and cfg.mle.d_steps == MLE_DEFAULTS.d_steps
    assert isinstance(cfg, EvaluationConfig)
