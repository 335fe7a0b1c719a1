"""The ``recbole`` preset: one example per target position (two routes to the same examples and
the same loss), the preset's settings, a tiny end-to-end run with GRU and SASRec, and the
``recommend`` call on the saved models."""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_equiv.models.policies import GRUPolicy
from gan_equiv.models.sasrec import SASRecPolicy
from gan_equiv.recsys.evaluate import add_evaluate_arguments, config_from_args
from gan_equiv.recsys.histories import Histories
from gan_equiv.recsys.logs import InteractionLog, Ragged
from gan_equiv.recsys.preprocessing import build_sequences, k_core, leave_one_out, training_windows
from gan_equiv.recsys.protocol import run_protocols
from gan_equiv.recsys.recommend import (
    add_recommend_parser,
    load_recommender,
    recommend,
    recommend_command,
    save_recommender,
)
from gan_equiv.recsys.recommenders import policy_scores
from gan_equiv.recsys.sequential import masked_mle_epoch, prefix_examples, target_log_probs
from gan_equiv.recsys.settings import DEFAULTS, recbole_preset, updated
from gan_equiv.recsys.synthetic import synthetic_log


def ragged(rows: list[list[int]]) -> Ragged:
    lengths = [len(r) for r in rows]
    return Ragged(
        np.array([x for r in rows for x in r], dtype=np.int64), np.concatenate([[0], np.cumsum(lengths)])
    )


def brute_examples(rows: list[list[int]], C: int) -> list[tuple[tuple[int, ...], int]]:
    return sorted((tuple(r[max(0, t - C) : t]), r[t]) for r in rows for t in range(1, len(r)))


def packed_examples(ex, C: int) -> list[tuple[tuple[int, ...], int]]:
    out = []
    for items, mask in zip(ex.items, ex.targets, strict=True):
        for j in np.flatnonzero(mask):
            out.append((tuple(int(x) for x in items[max(0, j - C) : j]), int(items[j])))
    return sorted(out)


# --- the vectorized protocol against a per-user reference ------------------------------------


def per_user_protocol(user, item, time, line, *, k: int, T: int, stride: int):
    """The protocol written one user at a time: k-core by repeated counting, each user's items by
    (time, line), contiguous ids by first appearance, leave-one-out, windows, histories."""
    keep = list(range(len(user)))
    while True:
        u_count = {u: sum(user[r] == u for r in keep) for u in set(user)}
        i_count = {i: sum(item[r] == i for r in keep) for i in set(item)}
        new = [r for r in keep if u_count[user[r]] >= k and i_count[item[r]] >= k]
        if new == keep:
            break
        keep = new
    users = sorted({user[r] for r in keep})  # codes are first appearance in the file
    items = sorted({item[r] for r in keep})
    seqs = []
    for u in users:
        rows = sorted((r for r in keep if user[r] == u), key=lambda r: (time[r], line[r]))
        seqs.append([items.index(item[r]) for r in rows])
    kept = [s for s in seqs if len(s) >= 3]
    train, valid, test = [s[:-2] for s in kept], [s[-2] for s in kept], [s[-1] for s in kept]
    windows = []
    for s in train:
        starts = list(range(0, len(s) - T + 1, stride))
        if len(s) >= T and starts[-1] != len(s) - T:
            starts.append(len(s) - T)
        windows += [s[a : a + T] for a in starts]
    width = max(len(s) for s in train) if train else 0
    histories = [[-1] * (width - len(s)) + s for s in train]
    return seqs, train, valid, test, windows, histories


@st.composite
def small_logs(draw: st.DrawFn):
    n = draw(st.integers(1, 40))
    user = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    item = draw(st.lists(st.integers(0, 7), min_size=n, max_size=n))
    time = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))  # many ties
    lines = list(range(2, n + 2))
    line = lines if draw(st.booleans()) else draw(st.permutations(lines))  # file order, or shuffled
    return user, item, time, line


@settings(max_examples=80, deadline=None)
@given(small_logs(), st.integers(0, 3), st.integers(2, 4), st.integers(1, 3), st.integers(1, 3))
def test_vectorized_protocol_equals_the_per_user_reference(case, k, T, stride, C):
    user, item, time, line = case
    log = InteractionLog(
        user=np.array(user, dtype=np.int64),
        item=np.array(item, dtype=np.int64),
        timestamp=np.array(time, dtype=np.float64),
        rating=None,
        line=np.array(line, dtype=np.int64),
        user_tokens=tuple(f"u{u}" for u in range(6)),
        item_tokens=tuple(f"i{i}" for i in range(8)),
    )
    seqs, train, valid, test, windows, histories = per_user_protocol(
        user, item, time, line, k=k, T=T, stride=stride
    )
    filtered = k_core(log, min_user=k, min_item=k) if k > 1 else log
    if len(filtered) == 0:
        assert seqs == []
        return
    got = build_sequences(filtered)
    assert [got.seqs.row(r).tolist() for r in range(got.n_users)] == seqs
    split = leave_one_out(got)
    assert [split.train.row(r).tolist() for r in range(split.train.n_rows)] == train
    assert split.valid.values.tolist() == valid and split.test.values.tolist() == test
    got_windows = training_windows(split.train, horizon=T, stride=stride).items.tolist()
    assert got_windows == windows
    assert Histories.from_ragged(split.train).items.tolist() == histories
    assert packed_examples(prefix_examples(split.train, context=C), C) == brute_examples(train, C)


@pytest.mark.parametrize("C", [1, 2, 3, 6])
def test_prefix_examples_are_one_per_target_with_its_history(C):
    rows = [[4, 1, 3, 0, 2, 5, 1], [2], [0, 3], [5, 4, 3, 2, 1, 0, 2, 4, 1], []]
    ex = prefix_examples(ragged(rows), context=C)
    assert ex.items.shape[1] == C + 1
    assert ex.n_examples == sum(max(len(r) - 1, 0) for r in rows)
    assert packed_examples(ex, C) == brute_examples(rows, C)


@pytest.mark.parametrize("kind", ["gru", "sasrec"])
def test_target_log_probs_equal_teacher_forcing(kind):
    torch.manual_seed(0)
    V, T = 6, 5
    policy = (
        GRUPolicy(V, T, embed_dim=4, hidden_dim=4, dtype=torch.float64)
        if kind == "gru"
        else SASRecPolicy(V, T, embed_dim=4, n_heads=2, inner_dim=8, dropout=0.0, dtype=torch.float64)
    ).eval()
    items = torch.randint(V, (7, T))
    mask = torch.rand(7, T) < 0.5
    assert torch.allclose(
        target_log_probs(policy, items, mask), policy.step_log_probs(items)[mask], atol=1e-12
    )


def test_masked_epoch_loss_is_the_mean_per_example_nll():
    rows = [[0, 1, 2, 3, 4, 1], [2, 3], [4, 0, 1]]
    C = 3
    ex = prefix_examples(ragged(rows), context=C)
    torch.manual_seed(0)
    policy = GRUPolicy(5, C + 1, embed_dim=4, hidden_dim=4, dtype=torch.float64)
    opt = torch.optim.SGD(policy.parameters(), lr=0.0)  # no change: the epoch loss is a pure evaluation
    loss = masked_mle_epoch(policy, ex, opt, batch_size=2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        direct = [
            -float(policy.next_item_log_probs(torch.tensor([list(h)]))[0, y]) if h else None
            for h, y in brute_examples(rows, C)
        ]
    assert loss == pytest.approx(float(np.mean(direct)), rel=1e-6)  # the epoch loss is float32


def test_recbole_preset_settings_and_flag():
    cfg = recbole_preset()
    p = cfg.protocol
    assert (p.k_core, p.exclude_seen, p.horizon, p.examples) == (0, "no", 51, "prefixes")
    assert (p.select_metric, p.patience, p.protocols, p.ks) == ("MRR@10", 10, ("next",), (10, 20))
    assert DEFAULTS.protocol.k_core == 5 and DEFAULTS.protocol.examples == "windows"  # kept under 5core
    parser = add_evaluate_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--data", "x.inter", "--preset", "recbole", "--patience", "4"])
    got = config_from_args(args)
    assert got.protocol.patience == 4 and got.protocol.horizon == 51 and got.protocol.k_core == 0
    assert config_from_args(parser.parse_args(["--data", "x.inter"])).protocol.k_core == 5


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("recbole")
    seqs = build_sequences(synthetic_log(n_users=30, n_items=15, min_length=6, max_length=12, seed=1))
    gen = replace(DEFAULTS.mle.generator, embed_dim=8, hidden_dim=8)
    config = updated(
        recbole_preset(),
        {
            "protocol.horizon": 5,
            "protocol.models": ("pop", "markov", "mle", "sasrec", "ebseqgan_sasrec"),
            "protocol.patience": 2,
            "protocol.out_dir": str(out),
            "protocol.sasrec": replace(
                DEFAULTS.protocol.sasrec, embed_dim=8, inner_dim=8, n_layers=1, dropout=0.1
            ),
            "mle.pretrain_g_epochs": 3,
            "mle.batch_size": 32,
            "mle.generator": gen,
            "gan.generator": gen,
            "gan.pretrain_d_steps": 2,
            "gan.adversarial_rounds": 2,
            "gan.eval_every": 1,
            "gan.n_rollouts": 2,
            "gan.batch_size": 8,
            "gan.energy": replace(DEFAULTS.gan.energy, embed_dim=4, filter_sizes=(1, 2), num_filters=(4, 4)),
        },
    )
    torch.set_num_threads(1)
    return run_protocols(seqs, config, echo=None), seqs, out


def test_recbole_run_reports_every_model(tiny_run):
    report, _, _ = tiny_run
    assert [r["model"] for r in report.rows] == ["pop", "markov", "mle", "sasrec", "ebseqgan_sasrec"]
    for row in report.rows:
        for key in ("HR@10", "NDCG@10", "MRR@10", "HR@20", "MRR@20"):
            assert 0.0 <= row[key] <= 1.0
        assert row["HR@10"] <= row["HR@20"] and row["MRR@10"] <= row["HR@10"]
    assert not report.data["exclude_seen"]
    assert "valid_MRR@10" in report.curves["sasrec"]["next_training"][0]


def test_recommend_returns_model_probabilities_and_honours_exclusions(tiny_run):
    _, seqs, out = tiny_run
    for name in ("mle", "sasrec", "ebseqgan_sasrec"):
        model = load_recommender(out / "next" / name / "model.pt")
        history = list(seqs.items.tokens[:3])
        recs = recommend(model, history, k=5, exclude=[history[0], seqs.items.tokens[7]])
        assert len(recs) == 5
        assert all(r.token not in (history[0], seqs.items.tokens[7]) for r in recs)
        probs = [r.probability for r in recs]
        assert probs == sorted(probs, reverse=True)
        direct = policy_scores(model.policy, Histories(torch.tensor([[0, 1, 2]]))).exp()[0].double()
        assert probs[0] == pytest.approx(float(direct[recs[0].item]), rel=1e-5)
        assert float(direct.sum()) == pytest.approx(1.0, abs=1e-5)


def test_save_load_round_trip_and_command(tmp_path, capsys):
    torch.manual_seed(0)
    policy = SASRecPolicy(6, 4, embed_dim=8, inner_dim=8, n_layers=1, dropout=0.0).eval()
    tokens = tuple(f"m{i}" for i in range(6))
    path = save_recommender(tmp_path / "m.pt", policy, tokens)
    model = load_recommender(path)
    h = Histories(torch.tensor([[-1, 3, 1]]))
    assert torch.allclose(policy_scores(policy, h), policy_scores(model.policy, h))
    sub = argparse.ArgumentParser().add_subparsers()
    parser = add_recommend_parser(sub)
    args = parser.parse_args(
        ["--checkpoint", str(path), "--user-history", "m3,m1", "--k", "3", "--exclude", "m2"]
    )
    assert recommend_command(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all("m2" not in line for line in lines[1:])
    bad = parser.parse_args(["--checkpoint", str(path), "--user-history", "nope"])
    assert recommend_command(bad) == 2
    assert "not in the model's catalogue" in capsys.readouterr().err


def test_saved_recommenders_are_sealed_and_any_flipped_bit_is_refused(tmp_path):
    """The model.pt of a recommender carries the SHA-256 seal of the trainer's checkpoints: seeded
    single-bit flips anywhere in the file are all refused, and a plain torch.save file too."""
    from gan_equiv.train.checkpoint import CheckpointError

    policy = SASRecPolicy(6, 4, embed_dim=8, inner_dim=8, n_layers=1, dropout=0.0)
    path = save_recommender(tmp_path / "m.pt", policy, tuple(f"m{i}" for i in range(6)))
    good = path.read_bytes()
    rng = torch.Generator().manual_seed(0)
    for position in torch.randint(len(good) * 8, (40,), generator=rng).tolist():
        flipped = bytearray(good)
        flipped[position // 8] ^= 1 << (position % 8)
        path.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError):
            load_recommender(path)
    torch.save({"format": "x"}, path)
    with pytest.raises(CheckpointError, match="without the SHA-256 seal"):
        load_recommender(path)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary behind
