"""SequenceSpace: index order, encode/decode, chunked enumeration, the size guard, input checks."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import spaces

from maxent_il import checks
from maxent_il.space import EnumerationTooLargeError, SequenceSpace, validate_sequences


def product_table(space: SequenceSpace) -> np.ndarray:
    """All sequences with s_1 most significant, built by itertools (an independent route)."""
    rows = list(itertools.product(range(space.n_items), repeat=space.horizon))
    return np.asarray(rows, dtype=np.int64).reshape(space.size, space.horizon)


# --- size and index order -----------------------------------------------------------------------
@given(spaces())
def test_size_is_v_to_the_t_and_all_sequences_are_in_base_v_order(space: SequenceSpace) -> None:
    table = space.all_sequences()
    assert space.size == space.n_items**space.horizon == table.shape[0]
    assert table.dtype == np.int64
    np.testing.assert_array_equal(table, product_table(space))
    # index(S) = Σ_t s_t V^(T−t), computed with Python integers
    weights = [space.n_items ** (space.horizon - t) for t in range(1, space.horizon + 1)]
    expected = [sum(int(s) * w for s, w in zip(row, weights, strict=True)) for row in table]
    np.testing.assert_array_equal(space.encode(table), expected)


@given(spaces())
def test_encode_decode_round_trip(space: SequenceSpace) -> None:
    idx = np.arange(space.size)
    np.testing.assert_array_equal(space.encode(space.decode(idx)), idx)
    table = product_table(space)
    np.testing.assert_array_equal(space.decode(space.encode(table)), table)


@given(spaces(), st.data())
def test_sequences_sharing_a_prefix_form_one_block_of_indices(
    space: SequenceSpace, data: st.DataObject
) -> None:
    t = data.draw(st.integers(1, space.horizon))
    table = space.all_sequences()
    prefix_index = np.arange(space.size) // space.n_items ** (space.horizon - t)
    np.testing.assert_array_equal(prefix_index, SequenceSpace(space.n_items, t).encode(table[:, :t]))


def test_large_space_index_uses_exact_integers() -> None:
    space = SequenceSpace(7, 20)  # 7^20 ≈ 8e16 still fits int64
    seq = np.full((1, 20), 6)
    assert space.size == 7**20
    assert int(space.encode(seq)[0]) == 7**20 - 1
    np.testing.assert_array_equal(space.decode([7**20 - 1]), seq)


# --- chunked enumeration --------------------------------------------------------------------------
@given(spaces(), st.integers(1, 300))
def test_iter_chunks_covers_the_space_once_in_order(space: SequenceSpace, chunk_size: int) -> None:
    starts, chunks = [], []
    for start, seqs in space.iter_chunks(chunk_size=chunk_size):
        assert 1 <= seqs.shape[0] <= chunk_size
        assert seqs.shape[1] == space.horizon
        starts.append(start)
        chunks.append(seqs)
    np.testing.assert_array_equal(starts, np.arange(0, space.size, chunk_size))
    np.testing.assert_array_equal(np.concatenate(chunks), product_table(space))


@settings(max_examples=15)
@given(
    st.sampled_from([(2, 16), (3, 10), (5, 6), (4, 4), (1, 3)]),
    st.data(),
)
def test_decode_range_equals_decode_of_the_index_range(vt: tuple[int, int], data: st.DataObject) -> None:
    space = SequenceSpace(*vt)
    start = data.draw(st.integers(0, space.size))
    stop = data.draw(st.integers(start, min(space.size, start + 40_000)))
    np.testing.assert_array_equal(
        space.decode_range(start, stop), space.decode(np.arange(start, stop, dtype=np.int64))
    )


def test_decode_range_rejects_ranges_outside_the_space() -> None:
    space = SequenceSpace(2, 3)
    with pytest.raises(ValueError, match=r"outside 0\.\.8"):
        space.decode_range(3, 9)
    with pytest.raises(ValueError, match="outside"):
        space.decode_range(5, 4)


def test_iter_chunks_rejects_a_non_positive_chunk_size() -> None:
    with pytest.raises(ValueError, match=r"chunk_size must be a positive integer .*, got 0"):
        list(SequenceSpace(2, 2).iter_chunks(chunk_size=0))


def test_decode_rejects_indices_outside_the_space() -> None:
    space = SequenceSpace(3, 2)
    with pytest.raises(ValueError, match=r"sequence index 9 is outside 0\.\.8"):
        space.decode([0, 9])
    with pytest.raises(ValueError, match="sequence index -1"):
        space.decode([-1])


# --- the size guard -------------------------------------------------------------------------------
def test_check_enumerable_names_v_t_size_memory_and_the_dp_path() -> None:
    space = SequenceSpace(10, 10)
    with pytest.raises(EnumerationTooLargeError) as info:
        space.check_enumerable()
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "V=10, T=10" in message
    assert "V^T=1.000e+10" in message
    assert "soft_bellman" in message and "dynamic-programming" in message
    gib = float(re.search(r"about ([0-9.e+]+) GiB", message).group(1))
    assert gib == pytest.approx(space.bytes_to_materialize() / 2**30, rel=1e-2)
    assert space.bytes_to_materialize() == 10**10 * 8 * 11


@pytest.mark.parametrize("call", ["all_sequences", "iter_chunks"])
def test_enumeration_entry_points_refuse_a_too_large_space(call: str) -> None:
    space = SequenceSpace(2, 3)
    with pytest.raises(EnumerationTooLargeError, match=r"V=2, T=3 gives V\^T=8\.000e\+00"):
        result = getattr(space, call)(max_sequences=7)
        list(result)
    assert getattr(space, call)(max_sequences=8) is not None  # exactly at the limit is allowed


def test_space_parameters_must_be_positive_integers() -> None:
    for bad in (0, -2, 2.5, True, "3"):
        with pytest.raises(ValueError, match="n_items must be a positive integer"):
            SequenceSpace(bad, 2)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="horizon must be a positive integer"):
            SequenceSpace(2, bad)  # type: ignore[arg-type]
    assert SequenceSpace(np.int64(3), np.int32(2)).size == 9


# --- known bugs ----------------------------------------------------------------------------------
#: Known bugs in space.validate_sequences (reported; remove the marks when fixed).


# --- input validation -----------------------------------------------------------------------------
def test_validate_accepts_lists_arrays_one_flat_sequence_and_integral_floats() -> None:
    space = SequenceSpace(3, 2)
    expected = np.array([[0, 2], [1, 1]])
    for given_ in (
        [[0, 2], [1, 1]],
        expected.astype(np.int32),
        expected.astype(np.float64),
        [np.array([0, 2]), (1, 1)],
    ):
        out = space.validate(given_)
        assert out.dtype == np.int64 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(space.validate([2, 0]), [[2, 0]])


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ([[0, 3]], r"sequences\[0, 1\] = 3 is outside the item range 0\.\.2 \(V=3\)"),
        ([[0, 1], [-1, 0]], r"sequences\[1, 0\] = -1 is outside the item range"),
        ([[0, 1], [1]], r"ragged sequences: row 0 has length 2 but row 1 has length 1"),
        ([], r"sequences is empty"),
        (np.zeros((0, 2), dtype=np.int64), r"sequences is empty \(shape \(0, 2\)\)"),
        pytest.param([[0.5, 1.0]], r"sequences\[0, 0\] = 0\.5 is not an integer item id"),
        pytest.param([[0.0, np.nan]], r"sequences\[0, 1\] = nan is not an integer item id"),
        ([["a", "b"]], r"must hold integer item ids, got dtype <U1"),
        ("ab", r"must hold integer item ids"),
        ([[True, False]], r"must hold integer item ids, got dtype bool"),
        ([[0, None]], r"must hold integer item ids, got dtype object"),
        ([[0, 1, 2]], r"have length 3 but the horizon is T=2"),
        (np.zeros((2, 2, 2), dtype=np.int64), r"must have shape \(N, T\), got shape \(2, 2, 2\)"),
        pytest.param([[0, 1], [[0], 1]], r"sequences\[1\] is not a flat sequence"),
    ],
)
def test_validate_rejects_bad_input_naming_the_value(bad: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        SequenceSpace(3, 2).validate(bad)


def test_validate_uses_the_given_name_and_any_horizon_when_none() -> None:
    with pytest.raises(ValueError, match=r"demos\[0, 0\] = 5"):
        validate_sequences([[5]], n_items=3, name="demos")
    out = validate_sequences([[0, 1, 2, 0]], n_items=3, horizon=None)
    assert out.shape == (1, 4)


def test_encode_validates_its_input() -> None:
    with pytest.raises(ValueError, match="outside the item range"):
        SequenceSpace(2, 2).encode([[0, 2]])


# --- maxent_il.checks: one signature (value, name, *, hint) -----------------------------------------
@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (checks.positive_int, [1, np.int64(7)], [0, -1, 2.5, True, "3", None]),
        (checks.non_negative_int, [0, 4], [-1, 1.0, False]),
        (checks.finite_float, [0, -2.5, np.float32(1)], [np.nan, np.inf, True, "x", None]),
        (checks.positive_float, [1e-9, 3], [0.0, -1.0, np.nan, np.inf, "big"]),
        (checks.non_negative_float, [0.0, 2], [-0.1, np.nan, -np.inf, "big"]),
    ],
)
def test_scalar_checks_accept_return_canonical_and_name_the_bad_value(check, good, bad) -> None:
    for value in good:
        out = check(value, "x")
        assert out == value and type(out) in (int, float)
    for value in bad:
        pattern = rf"^x must be .* \(what it is for\), got {re.escape(repr(value))}$"
        with pytest.raises(ValueError, match=pattern):
            check(value, "x", hint="what it is for")


def test_vector_and_choice_checks_name_the_entry_and_the_options() -> None:
    out = checks.finite_vector([1, 2], "theta", dim=2)
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"theta must have shape \(3,\) \(d\), got \(2,\)"):
        checks.finite_vector([1, 2], "theta", dim=3, hint="d")
    with pytest.raises(ValueError, match=r"theta\[1\] = nan is not finite"):
        checks.finite_vector([1, np.nan], "theta", dim=2)
    assert checks.probability_vector([0.25, 0.75], "q", size=2).sum() == 1.0
    with pytest.raises(ValueError, match=r"q sums to 0\.5, not 1"):
        checks.probability_vector([0.25, 0.25], "q", size=2)
    assert checks.choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"unknown mode 'c'; choose one of 'a', 'b'"):
        checks.choice("c", "mode", ("a", "b"))
