"""The SeqGAN oracle loader allocates no more than its file holds: shapes and dtypes are checked
against TARGET_LSTM's parameter list before any array is built, sub-array and object dtypes are
refused, and a 100 GiB request in a tiny pickle is refused without allocating."""

from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gan_equiv.models import oracle as oracle_mod
from gan_equiv.models.oracle import SEQGAN_PARAM_NAMES, _seqgan_shapes, load_seqgan_oracle_params

GIB = 1 << 30
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own _reconstruct, as pickles name it


class ForgedArray:
    """Pickles as numpy's reconstruct protocol with a state we choose: (shape, dtype, raw bytes)."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, raw: bytes | list) -> None:
        self.shape, self.dtype, self.raw = shape, dtype, raw

    def __reduce__(self):
        return (_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.raw))


def params(V: int = 7, E: int = 3, H: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in _seqgan_shapes(V, E, H).values()]


def peak_bytes_while(fn) -> tuple[int, BaseException | None]:
    """Peak traced allocation (numpy arrays included) while ``fn`` runs, and what it raised."""
    tracemalloc.start()
    try:
        fn()
        raised = None
    except Exception as err:
        raised = err
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


def test_the_allocation_probe_sees_numpy_arrays() -> None:
    peak, _ = peak_bytes_while(lambda: np.ones(8 << 20))  # 64 MiB
    assert peak >= 64 << 20  # so a small peak below means nothing large was allocated


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_100_gib_request_in_a_tiny_pickle_is_refused_without_allocating(
    tmp_path: Path, protocol: int
) -> None:
    E = H = 32
    V = 100 * GIB // (E * 8)  # g_embeddings alone claims 100 GiB of float64
    forged = [ForgedArray(s, np.dtype("f8"), b"\0" * 8) for s in _seqgan_shapes(V, E, H).values()]
    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle.dumps(forged, protocol=protocol))
    assert path.stat().st_size < 4096
    peak, err = peak_bytes_while(lambda: load_seqgan_oracle_params(path))
    assert isinstance(err, ValueError)
    assert f"entry 0 (g_embeddings) claims ({V}, 32) float64 = {100 * GIB} bytes but carries 8" in str(err)
    assert peak < 1 << 20, peak


@pytest.mark.parametrize(
    ("dtype", "raw", "what"),
    [
        (np.dtype(("f8", (16_000, 16_000))), b"\0" * 8, "a sub-array dtype"),  # 2 GiB per element
        (np.dtype(object), [0.0], "is object"),
        (np.dtype([("a", "f4"), ("b", "f4")]), b"\0" * 8, "a structured dtype"),
        (np.dtype("U4"), b"\0" * 16, "is str128"),
    ],
)
def test_non_numeric_dtypes_are_refused_before_building(
    tmp_path: Path, dtype: np.dtype, raw: object, what: str
) -> None:
    entries: list[object] = params()
    entries[0] = ForgedArray((50,), dtype, raw)  # 50 elements: 100 GiB with the sub-array dtype
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(entries, protocol=2))
    peak, err = peak_bytes_while(lambda: load_seqgan_oracle_params(path))
    assert isinstance(err, ValueError) and "entry 0 (g_embeddings)" in str(err) and what in str(err), err
    assert peak < 1 << 20, peak


def test_shapes_are_checked_against_the_parameter_list_before_any_array_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = []
    real = np.frombuffer
    monkeypatch.setattr(oracle_mod.np, "frombuffer", lambda *a, **k: built.append(1) or real(*a, **k))
    path = tmp_path / "p.pkl"
    bad = params()
    bad[13] = np.zeros((4, 8), np.float32)  # Wo must be (H, V) = (4, 7)
    path.write_bytes(pickle.dumps(bad))
    with pytest.raises(
        ValueError, match=r"entry 13 \(Wo\) has shape \(4, 8\), expected \(4, 7\) for V=7, E=3, H=4"
    ):
        load_seqgan_oracle_params(path)
    path.write_bytes(pickle.dumps(params()))
    with pytest.raises(
        ValueError, match=r"entry 0 \(g_embeddings\) has shape \(7, 3\), expected \(5000, 3\)"
    ):
        load_seqgan_oracle_params(path, n_items=5000)
    with pytest.raises(ValueError, match=r"entry 1 \(Wi\) has shape \(3, 4\), expected \(3, 32\)"):
        load_seqgan_oracle_params(path, hidden_dim=32)
    assert built == []  # every refusal came before the first array was built
    assert len(load_seqgan_oracle_params(path, n_items=7, embed_dim=3, hidden_dim=4)) == 15
    assert len(built) == 15


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_byte_order_fortran_order_and_integer_dtypes_round_trip(tmp_path: Path, protocol: int) -> None:
    original = params(seed=protocol)
    original[0] = np.asfortranarray(original[0].astype(">f8"))  # big-endian, column-major
    original[3] = np.arange(4, dtype=np.int16)
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(original, protocol=protocol))
    loaded = load_seqgan_oracle_params(path)
    for name, a, b in zip(SEQGAN_PARAM_NAMES, loaded, original, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b)
        assert a.flags.writeable and a.flags.owndata  # copies, not views into the file's bytes


def test_the_file_size_is_capped_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(params()))
    size = path.stat().st_size
    monkeypatch.setattr(oracle_mod, "NumpyArrayUnpickler", lambda *a: pytest.fail("the file was unpickled"))
    with pytest.raises(ValueError, match=rf"is {size} bytes, above max_bytes = {size - 1}"):
        load_seqgan_oracle_params(path, max_bytes=size - 1)


def test_entries_that_are_not_arrays_are_named(tmp_path: Path) -> None:
    path = tmp_path / "p.pkl"
    entries: list[object] = params()
    entries[4] = [1.0, 2.0]
    path.write_bytes(pickle.dumps(entries))
    with pytest.raises(ValueError, match=r"entry 4 \(Wf\) is list, not a numeric array"):
        load_seqgan_oracle_params(path)
    path.write_bytes(pickle.dumps(ForgedArray((3,), np.dtype("f8"), b"\0" * 24)))
    with pytest.raises(ValueError, match="must hold a list of 15 arrays, got ArraySpec"):
        load_seqgan_oracle_params(path)
