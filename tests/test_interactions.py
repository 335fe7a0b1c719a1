"""Readers, containers, preprocessing, splits and windows of gan_equiv.recsys (synthetic files only)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from gan_equiv.recsys import protocol
from gan_equiv.recsys.evaluate import add_evaluate_parser
from gan_equiv.recsys.logs import IdMap, InteractionLog, Ragged
from gan_equiv.recsys.preprocessing import (
    build_sequences,
    filter_min_rating,
    k_core,
    leave_one_out,
    preprocess,
    split_tail,
    summarize,
    training_windows,
)
from gan_equiv.recsys.readers import (
    InteractionFormatError,
    LogSource,
    load_interactions,
    read_csv,
    read_movielens,
    read_recbole,
    write_interactions,
)
from gan_equiv.recsys.synthetic import synthetic_log


def token_rows(log: InteractionLog) -> list[tuple]:
    """(user token, item token, timestamp, rating) per row, in file order."""
    ratings = log.rating if log.rating is not None else [None] * len(log)
    return [
        (log.user_tokens[u], log.item_tokens[i], float(t), None if r is None else float(r))
        for u, i, t, r in zip(log.user, log.item, log.timestamp, ratings, strict=True)
    ]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["recbole", "movielens", "csv"])
def test_round_trip_each_format(tmp_path: Path, fmt: str) -> None:
    log = synthetic_log(n_users=15, n_items=20, min_length=5, max_length=12, seed=3)
    path = write_interactions(log, tmp_path / f"log.{fmt}", fmt=fmt)  # type: ignore[arg-type]
    back = load_interactions(path, fmt=fmt, rating_col="rating" if fmt == "csv" else None)  # type: ignore[arg-type]
    assert token_rows(back) == token_rows(log)
    assert back.line.tolist() == list(
        range(2 if fmt != "movielens" else 1, len(log) + (2 if fmt != "movielens" else 1))
    )
    assert summarize(back) == summarize(log)


def test_recbole_extra_columns_any_order_and_no_rating(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.inter",
        "timestamp:float\tgenre:token_seq\titem_id:token\tuser_id:token\n5\ta b\ti1\tu1\n\n3.5\tc\ti2\tu1\n",
    )
    log = read_recbole(path)
    assert log.rating is None
    assert token_rows(log) == [("u1", "i1", 5.0, None), ("u1", "i2", 3.5, None)]
    assert log.line.tolist() == [2, 4]  # physical lines; the blank line is skipped


def test_movielens_double_colon_and_csv_quoting_iso(tmp_path: Path) -> None:
    ml = read_movielens(write(tmp_path / "ratings.dat", "1::10::5::100\n2::11::3::90\n"), sep="::")
    assert token_rows(ml) == [("1", "10", 100.0, 5.0), ("2", "11", 90.0, 3.0)]
    path = write(
        tmp_path / "x.csv",
        'who;what;when;stars\n"a;b";"item, 1";2020-01-01T00:00:10;4\nc;item2;2020-01-01T00:00:00+00:00;2\n',
    )
    log = read_csv(
        path,
        user_col="who",
        item_col="what",
        time_col="when",
        rating_col="stars",
        delimiter=";",
        time_format="iso",
    )
    assert token_rows(log) == [("a;b", "item, 1", 1577836810.0, 4.0), ("c", "item2", 1577836800.0, 2.0)]


def test_log_source_is_the_one_place_of_the_reading_options(tmp_path: Path) -> None:
    log = synthetic_log(n_users=8, n_items=12, min_length=3, max_length=6, seed=2)
    path = write_interactions(log, tmp_path / "log.tsv", fmt="csv", delimiter="\t")
    source = LogSource(path=str(path), fmt="csv", rating_col="rating", delimiter="\t")
    via_source = source.load()
    via_function = load_interactions(path, fmt="csv", rating_col="rating", delimiter="\t")
    assert token_rows(via_source) == token_rows(via_function) == token_rows(log)
    with pytest.raises(ValueError, match="unknown time_format 'unix'"):
        LogSource(path=str(path), fmt="csv", time_format="unix")  # type: ignore[arg-type]


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InteractionFormatError, match="does not exist"):
        read_recbole(tmp_path / "nope.inter")
    with pytest.raises(ValueError, match="unknown format"):
        load_interactions(tmp_path / "x", fmt="parquet")  # type: ignore[arg-type]


# --- summary ---------------------------------------------------------------------------------


RECBOLE_HEAD = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def small_log(tmp_path: Path) -> InteractionLog:
    # user a: t=1 (x), t=2 (y), t=2 (z), t=3 (x again); user b: t=5 (y), t=4 (z)
    text = RECBOLE_HEAD + "a\tx\t5\t1\na\ty\t4\t2\nb\ty\t3\t5\na\tz\t1\t2\nb\tz\t2\t4\na\tx\t5\t3\n"
    return read_recbole(write(tmp_path / "s.inter", text))


def test_summary_hand_computed(tmp_path: Path) -> None:
    s = summarize(small_log(tmp_path))
    assert (s.n_users, s.n_items, s.n_interactions) == (2, 3, 6)
    assert s.density == pytest.approx(6 / 6)
    assert s.mean_length == 3.0
    assert s.length_percentiles[0] == 2 and s.length_percentiles[100] == 4 and s.length_percentiles[50] == 3
    assert s.tie_share == pytest.approx(2 / 6)  # a's two rows at t=2
    assert s.repeat_share == pytest.approx(1 / 6)  # a's second x
    assert "interactions 6" in s.format()


# --- preprocessing ---------------------------------------------------------------------------


def test_sequences_are_chronological_with_file_order_ties(tmp_path: Path) -> None:
    seqs = build_sequences(small_log(tmp_path))
    rows = {seqs.users.tokens[r]: seqs.items.decode(seqs.seqs.row(r)) for r in range(seqs.n_users)}
    assert rows == {"a": ["x", "y", "z", "x"], "b": ["z", "y"]}  # y before z at t=2: file order
    assert seqs.seqs.times.tolist() == [1, 2, 2, 3, 4, 5]


def test_synthetic_ties_follow_generation_order() -> None:
    log = synthetic_log(n_users=30, n_items=40, tie_rate=0.4, seed=1)
    assert summarize(log).tie_share > 0.2
    seqs = build_sequences(log)
    # the generator never repeats an item within a user: the file-order tie rule must recover that
    for r in range(seqs.n_users):
        assert len(set(seqs.seqs.row(r).tolist())) == seqs.seqs.lengths[r]


def test_id_map_round_trip(tmp_path: Path) -> None:
    log = synthetic_log(n_users=12, n_items=30, min_length=4, max_length=8, seed=2)
    seqs = build_sequences(log)
    assert sorted(seqs.items.encode(seqs.items.tokens)) == list(range(seqs.n_items))
    assert seqs.items.decode(seqs.items.encode(["i3", seqs.items.tokens[0]])) == ["i3", seqs.items.tokens[0]]
    m = IdMap(("b", "a"))
    assert m.index == {"b": 0, "a": 1} and m.decode([1, 0]) == ["a", "b"]
    with pytest.raises(KeyError, match="unknown token 'zz'"):
        m.encode(["zz"])
    # every (user, item, time) of the log comes back through the maps
    raw = sorted(
        (log.user_tokens[u], log.item_tokens[i], t)
        for u, i, t in zip(log.user, log.item, log.timestamp, strict=True)
    )
    back = sorted(
        (seqs.users.tokens[u], seqs.items.tokens[i], t)
        for u, i, t in zip(seqs.seqs.row_ids(), seqs.seqs.values, seqs.seqs.times, strict=True)
    )
    assert raw == back


def naive_k_core(pairs: list[tuple[int, int]], k_user: int, k_item: int) -> list[tuple[int, int]]:
    rows = list(pairs)
    while True:
        users = {u: sum(1 for x, _ in rows if x == u) for u, _ in rows}
        items = {i: sum(1 for _, y in rows if y == i) for _, i in rows}
        kept = [(u, i) for u, i in rows if users[u] >= k_user and items[i] >= k_item]
        if kept == rows:
            return kept
        rows = kept


def test_k_core_iterates_until_stable() -> None:
    # round 1 drops u1 and u2 (2 interactions each); that leaves item c with 1, so round 2 drops
    # it; u0 keeps a, b, b and u3 keeps a, b, a: stable
    rows = [
        ("u0", "a"),
        ("u0", "b"),
        ("u1", "c"),
        ("u1", "a"),
        ("u2", "c"),
        ("u2", "b"),
        ("u3", "a"),
        ("u3", "b"),
    ]
    rows = [*rows, ("u0", "c"), ("u3", "a"), ("u0", "b")]
    log = InteractionLog(
        user=np.array([int(u[1]) for u, _ in rows]),
        item=np.array(["abc".index(i) for _, i in rows]),
        timestamp=np.arange(len(rows), dtype=float),
        rating=None,
        line=np.arange(1, len(rows) + 1),
        user_tokens=("u0", "u1", "u2", "u3"),
        item_tokens=("a", "b", "c"),
    )
    got = k_core(log, min_user=3, min_item=2)
    pairs = list(zip(got.user.tolist(), got.item.tolist(), strict=True))
    assert pairs == naive_k_core(list(zip(log.user.tolist(), log.item.tolist(), strict=True)), 3, 2)
    assert set(got.user.tolist()) == {0, 3} and set(got.item.tolist()) == {0, 1}
    assert k_core(log, min_user=4, min_item=2).user.size == 0  # the cascade can empty the log


@pytest.mark.parametrize("seed", range(5))
def test_k_core_matches_naive_on_random_logs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 120
    user, item = rng.integers(0, 15, n), rng.integers(0, 20, n)
    log = InteractionLog(
        user,
        item,
        np.zeros(n),
        None,
        np.arange(1, n + 1),
        tuple(map(str, range(15))),
        tuple(map(str, range(20))),
    )
    got = k_core(log, min_user=5, min_item=4)
    want = naive_k_core(list(zip(user.tolist(), item.tolist(), strict=True)), 5, 4)
    assert list(zip(got.user.tolist(), got.item.tolist(), strict=True)) == want
    if len(got):
        assert np.bincount(got.user).max(initial=0) >= 5
        assert np.all(np.bincount(got.user)[np.unique(got.user)] >= 5)
        assert np.all(np.bincount(got.item)[np.unique(got.item)] >= 4)


def test_rating_threshold(tmp_path: Path) -> None:
    log = small_log(tmp_path)
    kept = filter_min_rating(log, min_rating=4)
    assert kept.rating.tolist() == [5, 4, 5]
    seqs = preprocess(log, min_rating=4)
    assert seqs.n_users == 1 and seqs.n_items == 2
    no_ratings = InteractionLog(
        log.user, log.item, log.timestamp, None, log.line, log.user_tokens, log.item_tokens
    )
    with pytest.raises(ValueError, match="needs ratings"):
        filter_min_rating(no_ratings, min_rating=4)


# --- ragged rows, splits, windows ------------------------------------------------------------


def test_ragged_helpers() -> None:
    r = Ragged(np.array([1, 2, 3, 4, 5, 6]), np.array([0, 3, 3, 6]))
    assert r.lengths.tolist() == [3, 0, 3]
    assert r.positions().tolist() == [0, 1, 2, 0, 1, 2]
    assert r.take(np.array([2, 0])).values.tolist() == [4, 5, 6, 1, 2, 3]
    other = Ragged(np.array([7, 8]), np.array([0, 1, 2, 2]))
    both = r.concat(other)
    assert [both.row(i).tolist() for i in range(3)] == [[1, 2, 3, 7], [8], [4, 5, 6]]
    assert r.padded(width=2).tolist() == [[2, 3], [-1, -1], [5, 6]]
    assert r.padded().tolist() == [[1, 2, 3], [-1, -1, -1], [4, 5, 6]]


def test_leave_one_out_has_no_future_leak() -> None:
    seqs = build_sequences(synthetic_log(n_users=40, n_items=30, tie_rate=0.3, seed=4))
    split = leave_one_out(seqs)
    assert split.n_dropped == 0
    for r in range(split.train.n_rows):
        full = seqs.seqs.row(split.users[r])
        parts = [split.train.row(r), split.valid.row(r), split.test.row(r)]
        assert np.array_equal(np.concatenate(parts), full)
        assert len(parts[1]) == 1 and len(parts[2]) == 1
        t_train = split.train.times[split.train.offsets[r] : split.train.offsets[r + 1]]
        t_valid = split.valid.times[split.valid.offsets[r] : split.valid.offsets[r + 1]]
        t_test = split.test.times[split.test.offsets[r] : split.test.offsets[r + 1]]
        assert t_train.max() <= t_valid.min() <= t_valid.max() <= t_test.min()


def test_split_tail_drops_short_users_and_keeps_order() -> None:
    seqs = build_sequences(synthetic_log(n_users=30, n_items=30, min_length=5, max_length=15, seed=5))
    split = split_tail(seqs, n_valid=1, n_test=10)
    lengths = seqs.seqs.lengths
    assert split.n_dropped == int((lengths < 12).sum())
    assert np.all(split.test.lengths == 10) and np.all(split.valid.lengths == 1)
    assert np.array_equal(split.train.lengths, lengths[split.users] - 11)
    hist = split.history("test")
    for r in range(hist.n_rows):
        assert np.array_equal(hist.row(r), seqs.seqs.row(split.users[r])[:-10])
        t = hist.times[hist.offsets[r] : hist.offsets[r + 1]]
        assert t.max() <= split.test.times[split.test.offsets[r]]


def test_training_windows_hand_case() -> None:
    train = Ragged(np.arange(100, 111), np.array([0, 6, 8, 11]))  # rows of length 6, 2, 3
    w = training_windows(train, horizon=3, stride=2)
    # row 0: starts 0, 2 and the tail window starting at 3; row 1 too short; row 2: start 0
    assert w.items.tolist() == [[100, 101, 102], [102, 103, 104], [103, 104, 105], [108, 109, 110]]
    assert w.rows.tolist() == [0, 0, 0, 2] and w.n_short_rows == 1
    w1 = training_windows(train, horizon=3)
    assert len(w1.items) == 4 + 1
    with pytest.raises(ValueError):
        training_windows(train, horizon=0)


def test_windows_come_only_from_training_prefixes() -> None:
    seqs = build_sequences(synthetic_log(n_users=30, n_items=30, seed=6))
    split = leave_one_out(seqs)
    w = training_windows(split.train, horizon=5, stride=1)
    assert len(w.items) == int(np.maximum(split.train.lengths - 4, 0).sum())
    for window, row in zip(w.items, w.rows, strict=True):
        train_row = split.train.row(row).tolist()
        starts = [s for s in range(len(train_row) - 4) if train_row[s : s + 5] == window.tolist()]
        assert starts, "every window is a substring of its user's training prefix"


# --- user errors of evaluate: raised before any model is fitted ------------------------------


def evaluate_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gan_equiv")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["evaluate", *argv])


@pytest.fixture
def no_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any model built during the test fails it: the error must come first."""
    monkeypatch.setattr(protocol, "build_model", lambda *a, **k: pytest.fail("a model was built first"))


def recbole_file(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    path.write_text(RECBOLE_HEAD + "".join(f"{u}\t{i}\t4\t{t}\n" for u, i, t in rows))
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ks", "0", "-5"], r"ks entry \(--ks\) must be a positive integer \(give cut-offs .*got 0"),
        (["--horizon", "0"], r"horizon \(--horizon\) must be a positive integer .*got 0"),
        (["--steps", "0"], r"steps entry \(--steps\) must be a positive integer .*got 0"),
        (["--k-core", "-1"], r"k_core must be a non-negative integer \(use 0 or more for --k-core\), got -1"),
    ],
)
def test_bad_options_are_value_errors_naming_value_and_fix(tmp_path: Path, no_fitting, argv, message):
    args = evaluate_args("--data", str(tmp_path / "log.inter"), "--run-dir", str(tmp_path / "runs"), *argv)
    with pytest.raises(ValueError, match=message):
        args.func(args)


def test_filters_and_splits_that_leave_nothing_are_refused_first(tmp_path: Path, no_fitting) -> None:
    runs = str(tmp_path / "runs")
    every_item_once = recbole_file(tmp_path / "a.inter", [(f"u{k % 3}", f"i{k}", k) for k in range(12)])
    args = evaluate_args("--data", str(every_item_once), "--k-core", "5", "--run-dir", runs)
    with pytest.raises(ValueError, match=r"k-core filter .* removed all 12 interactions .*lower --k-core"):
        args.func(args)
    one_each = recbole_file(tmp_path / "b.inter", [(f"u{k}", "i0", k) for k in range(6)])
    args = evaluate_args("--data", str(one_each), "--k-core", "0", "--run-dir", runs)
    with pytest.raises(ValueError, match=r"every one of the 6 users has fewer than 3 .*the longest has 1"):
        args.func(args)
    four_each = recbole_file(tmp_path / "c.inter", [(f"u{k % 3}", f"i{k}", k) for k in range(12)])
    args = evaluate_args(
        "--data", str(four_each), "--k-core", "0", "--steps", "5", "--horizon", "2", "--run-dir", runs
    )
    with pytest.raises(ValueError, match=r"protocol 'multistep'.*fewer than 7 .*lower --steps \(now 5\)"):
        args.func(args)
    args = evaluate_args("--data", str(four_each), "--k-core", "0", "--protocols", "next", "--run-dir", runs)
    with pytest.raises(ValueError, match=r"no training prefix has T=10 items .*lower --horizon"):
        args.func(args)


def test_unwritable_outputs_and_unreadable_data_are_refused_first(tmp_path: Path, no_fitting, capsys) -> None:
    data = recbole_file(tmp_path / "ok.inter", [(f"u{k % 3}", f"i{k % 5}", k) for k in range(30)])
    blocker, runs = tmp_path / "plain_file", str(tmp_path / "runs")
    blocker.write_text("not a folder")
    (tmp_path / "out.csv").mkdir()
    outs = [
        (blocker / "r.csv", "cannot be written"),
        (tmp_path / "out.csv", "is a folder"),
        ("r.txt", "must end"),
    ]
    for out, message in outs:
        args = evaluate_args("--data", str(data), "--run-dir", runs, "--out", str(out))
        with pytest.raises(ValueError, match=message):
            args.func(args)
    args = evaluate_args("--data", str(data), "--run-dir", str(blocker / "runs"))
    with pytest.raises(ValueError, match=r"--run-dir .* cannot be written"):
        args.func(args)
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)))
    for path, message in [(tmp_path / "no.inter", "does not exist"), (binary, "line 1: contains a NUL byte")]:
        args = evaluate_args("--data", str(path), "--run-dir", runs)
        assert args.func(args) == 2
        assert message in capsys.readouterr().err
