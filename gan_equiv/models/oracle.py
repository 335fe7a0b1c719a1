"""SeqGAN's synthetic oracle: a random LSTM that generates the training data of the oracle benchmark.

- :class:`LSTMOracle` — SeqGAN's target LSTM (Yu et al. 2017): embedding + explicit LSTM gates +
  softmax, every parameter N(0, 1), V = 5000, T = 20, emb = hidden = 32 by default. It implements
  the :class:`~gan_equiv.models.policies.SequencePolicy` interface, so it samples, scores and rolls out
  like any generator. :func:`oracle_dataset` draws the training set in batches.
- :func:`load_seqgan_oracle_params` reads SeqGAN's published ``target_params_py3.pkl`` (a pickled
  list of 15 numpy arrays) with a restricted unpickler that admits numpy arrays only and checks
  every shape and dtype against SeqGAN's parameter list before building one (so it allocates no
  more than the file holds); :meth:`LSTMOracle.from_seqgan_params` maps them onto the oracle.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import pickle
import re
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gan_equiv.checks import positive_float, positive_int
from gan_equiv.models.policies import SequencePolicy

# =============================================================================================
# SeqGAN's synthetic oracle
# =============================================================================================

#: SeqGAN's TARGET_LSTM parameter order (the 15 arrays of ``target_params_py3.pkl``).
SEQGAN_PARAM_NAMES: tuple[str, ...] = (
    "g_embeddings",
    "Wi", "Ui", "bi",
    "Wf", "Uf", "bf",
    "Wog", "Uog", "bog",
    "Wc", "Uc", "bc",
    "Wo", "bo",
)  # fmt: skip


def _seqgan_shapes(V: int, E: int, H: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"g_embeddings": (V, E)}
    for gate in ("i", "f", "og", "c"):
        shapes[f"W{gate}"], shapes[f"U{gate}"], shapes[f"b{gate}"] = (E, H), (H, H), (H,)
    shapes["Wo"], shapes["bo"] = (H, V), (V,)
    return shapes


class LSTMOracle(SequencePolicy):
    """SeqGAN's target LSTM as a :class:`SequencePolicy` (the synthetic-data oracle).

    One step from (h, c) with input embedding x (SeqGAN's TARGET_LSTM, gate by gate)::

        i = σ(x Wi + h Ui + bi),   f = σ(x Wf + h Uf + bf),   o = σ(x Wog + h Uog + bog),
        c̃ = tanh(x Wc + h Uc + bc),   c' = f ⊙ c + i ⊙ c̃,   h' = o ⊙ tanh(c'),
        logits = h' Wo + bo.

    Start: h = c = 0, and the first input is the embedding of item ``start_token`` (SeqGAN feeds
    START_TOKEN = 0, which shares item 0's embedding row — there is no separate start row, which
    is what makes the 15-array mapping exact). The state is [h, c] after the start token and the
    items so far, shape (N, 2H). Parameters are named as in SeqGAN (:data:`SEQGAN_PARAM_NAMES`)
    and, when ``seed`` is given, drawn N(0, init_std²) in that order from a seeded generator
    (SeqGAN's ``init_matrix`` is ``tf.random_normal(stddev=1.0)``; its published oracle is one
    such draw, which :meth:`from_seqgan_params` loads).
    """

    def __init__(
        self,
        n_items: int = 5000,
        horizon: int = 20,
        *,
        embed_dim: int = 32,
        hidden_dim: int = 32,
        start_token: int = 0,
        seed: int | None = None,
        init_std: float = 1.0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(n_items, horizon)
        E = positive_int(embed_dim, "embed_dim")
        H = positive_int(hidden_dim, "hidden_dim")
        if isinstance(start_token, bool) or not 0 <= int(start_token) < n_items:
            raise ValueError(f"start_token {start_token!r} is outside 0..{n_items - 1} (V={n_items})")
        std = positive_float(init_std, "init_std")
        self.embed_dim, self.hidden_dim, self.start_token = E, H, int(start_token)
        gen = torch.Generator()
        if seed is not None:
            gen.manual_seed(int(seed))
        else:
            gen.seed()
        for name, shape in _seqgan_shapes(self.n_items, E, H).items():  # SeqGAN order
            draw = torch.randn(shape, generator=gen, dtype=torch.float64) * std
            self.register_parameter(name, nn.Parameter(draw.to(dtype)))

    # --- SequencePolicy interface ------------------------------------------------------------
    def _step(self, state: Tensor, items: Tensor) -> Tensor:
        p = dict(self.named_parameters())
        x = p["g_embeddings"][items]
        h, c = state.split(self.hidden_dim, dim=-1)
        W = torch.cat([p["Wi"], p["Wf"], p["Wog"], p["Wc"]], dim=1)  # (E, 4H)
        U = torch.cat([p["Ui"], p["Uf"], p["Uog"], p["Uc"]], dim=1)  # (H, 4H)
        b = torch.cat([p["bi"], p["bf"], p["bog"], p["bc"]])
        i, f, o, g = (x @ W + h @ U + b).split(self.hidden_dim, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return torch.cat([h, c], dim=-1)

    def initial_state(self, n: int) -> Tensor:
        emb = self.get_parameter("g_embeddings")
        zeros = torch.zeros(n, 2 * self.hidden_dim, dtype=emb.dtype, device=emb.device)
        start = torch.full((n,), self.start_token, dtype=torch.long, device=emb.device)
        return self._step(zeros, start)

    def logits(self, state: Tensor) -> Tensor:
        return state[..., : self.hidden_dim] @ self.get_parameter("Wo") + self.get_parameter("bo")

    def advance(self, state: Tensor, items: Tensor) -> Tensor:
        return self._step(state, items)

    # --- SeqGAN parameter exchange -----------------------------------------------------------
    def to_seqgan_params(self) -> list[np.ndarray]:
        """The 15 parameters as numpy arrays in SeqGAN's TARGET_LSTM order."""
        return [self.get_parameter(n).detach().cpu().numpy().copy() for n in SEQGAN_PARAM_NAMES]

    @classmethod
    def from_seqgan_params(
        cls,
        params: Any,
        *,
        horizon: int = 20,
        start_token: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> LSTMOracle:
        """An oracle holding SeqGAN's 15 arrays (V, E, H read from their shapes), frozen. Raises
        ``ValueError`` naming the array for a wrong count, shape, dtype or non-finite entry."""
        if not isinstance(params, (list, tuple)) or len(params) != len(SEQGAN_PARAM_NAMES):
            got = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
            raise ValueError(
                f"SeqGAN oracle parameters must be a list of {len(SEQGAN_PARAM_NAMES)} arrays "
                f"{SEQGAN_PARAM_NAMES}, got {got}"
            )
        arrays = []
        for k, (name, value) in enumerate(zip(SEQGAN_PARAM_NAMES, params, strict=True)):
            arr = np.asarray(value)
            if arr.dtype.kind not in "fiu":
                raise ValueError(f"SeqGAN parameter {k} ({name}) has non-numeric dtype {arr.dtype}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"SeqGAN parameter {k} ({name}) has non-finite entries")
            arrays.append(arr)
        emb, wi = arrays[0], arrays[1]
        if emb.ndim != 2 or wi.ndim != 2:
            raise ValueError(
                f"SeqGAN parameters 0 (g_embeddings), 1 (Wi) must be matrices: {emb.shape}, {wi.shape}"
            )
        (V, E), H = emb.shape, wi.shape[1]
        shapes = _seqgan_shapes(V, E, H)
        for k, (name, arr) in enumerate(zip(SEQGAN_PARAM_NAMES, arrays, strict=True)):
            if arr.shape != shapes[name]:
                raise ValueError(
                    f"SeqGAN parameter {k} ({name}) has shape {arr.shape}, expected {shapes[name]} "
                    f"for V={V}, E={E}, H={H}"
                )
        oracle = cls(V, horizon, embed_dim=E, hidden_dim=H, start_token=start_token, seed=0, dtype=dtype)
        with torch.no_grad():
            for name, arr in zip(SEQGAN_PARAM_NAMES, arrays, strict=True):
                oracle.get_parameter(name).copy_(torch.as_tensor(arr, dtype=torch.float64))
        return oracle.requires_grad_(False).eval()


def make_oracle(
    *,
    n_items: int = 5000,
    horizon: int = 20,
    embed_dim: int = 32,
    hidden_dim: int = 32,
    seed: int = 0,
    start_token: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> LSTMOracle:
    """A frozen SeqGAN-style oracle (SeqGAN's sizes by default), every parameter N(0, 1) from ``seed``.

    The same seed gives the same oracle on every device and dtype (draws are made in float64 on the
    CPU, then cast and moved).
    """
    oracle = LSTMOracle(
        n_items,
        horizon,
        embed_dim=embed_dim,
        hidden_dim=hidden_dim,
        start_token=start_token,
        seed=seed,
        dtype=dtype,
    )
    if device is not None:
        oracle = oracle.to(device)
    return oracle.requires_grad_(False).eval()


@torch.no_grad()
def oracle_dataset(
    oracle: SequencePolicy, n: int = 10_000, *, seed: int = 0, batch_size: int = 2048
) -> Tensor:
    """n i.i.d. sequences from ``oracle``: int64 (n, T) on the oracle's device.

    Generated ``batch_size`` sequences at a time (each batch one vectorized pass of T steps) from a
    generator seeded with ``seed`` on the oracle's device; the result depends on (seed, batch_size).
    """
    n = positive_int(n, "n")
    batch_size = positive_int(batch_size, "batch_size")
    gen = torch.Generator(device=oracle.device)
    gen.manual_seed(int(seed))
    parts = [oracle.sample(min(batch_size, n - start), generator=gen) for start in range(0, n, batch_size)]
    return torch.cat(parts, dim=0)


# --- restricted loading of SeqGAN's published parameters ------------------------------------

#: Largest parameter file :func:`load_seqgan_oracle_params` reads by default (SeqGAN's is ~1.4 MB).
DEFAULT_MAX_ORACLE_BYTES = 1 << 30


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` restricted to latin-1: how protocol ≤ 2 pickles store bytes."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r} (only latin1)")
    return codecs.encode(text, "latin1")


class _DTypeSpec:
    """A pickled ``numpy.dtype`` recorded, never built: code and state (order, sub-array, fields)."""

    def __init__(self, code: Any = None, align: Any = False, copy: Any = True) -> None:
        self.code = code.decode("latin1") if isinstance(code, bytes) else code
        self.state: tuple[Any, ...] = ()

    def __setstate__(self, state: Any) -> None:
        self.state = tuple(state) if isinstance(state, tuple) else (state,)

    def __repr__(self) -> str:
        return f"dtype({self.code!r})"

    def resolve(self) -> tuple[np.dtype | None, str]:
        """(the numeric dtype, or None when refused; what it is, for messages)."""
        state = (*self.state, None, None, None, None, None)
        if state[2] is not None:
            return None, f"a sub-array dtype {state[2]!r}"
        if state[3] is not None or state[4] is not None:
            return None, "a structured dtype"
        try:  # a plain code such as 'f4' (builds no array)
            dtype = np.dtype(self.code) if re.fullmatch(r"[A-Za-z]\d{0,2}", str(self.code)) else None
        except (TypeError, ValueError):
            dtype = None
        if dtype is None or dtype.kind not in "fiu":
            return None, f"dtype code {self.code!r}" if dtype is None else dtype.name
        return (dtype.newbyteorder(state[1]) if state[1] in ("<", ">") else dtype), dtype.name


class _ArraySpec:
    """A pickled ``numpy.ndarray`` as recorded, never built: shape, dtype, order and data bytes."""

    def __init__(self, shape: Any = None, dtype: Any = None, fortran: Any = False, data: Any = None) -> None:
        self.shape, self.dtype, self.fortran, self.data = shape, dtype, fortran, data

    def __setstate__(self, state: Any) -> None:  # numpy's (version, shape, dtype, is_fortran, raw)
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("an ndarray state of unknown form")
        self.shape, self.dtype, self.fortran, self.data = state[-4:]

    def checked(self: Any, label: str) -> tuple[np.dtype, tuple[int, ...]]:
        """Its numeric dtype and shape (``self`` may be anything unpickled); else ``ValueError``."""
        if not isinstance(self, _ArraySpec):
            raise ValueError(f"{label} is {type(self).__name__}, not a numeric array")
        dtype, what = self.dtype.resolve() if isinstance(self.dtype, _DTypeSpec) else (None, "untyped")
        shape = self.shape if isinstance(self.shape, tuple) and len(self.shape) <= 8 else ()
        if dtype is None or shape != self.shape or not all(type(d) is int and d >= 0 for d in shape):
            raise ValueError(
                f"{label} is {what if dtype is None else f'shaped {shape!r}'}, not a numeric array"
            )
        return dtype, shape

    def build(self, label: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """The array, once its data holds exactly shape × item-size bytes (else ``ValueError``)."""
        data = self.data.encode("latin1") if isinstance(self.data, str) else self.data  # Python-2 pickles
        carried = len(data) if isinstance(data, (bytes, bytearray)) else 0
        claimed = math.prod(shape) * dtype.itemsize
        if carried != claimed:
            raise ValueError(
                f"{label} claims {shape} {dtype.name} = {claimed} bytes but carries {carried}; the file "
                "is damaged or not SeqGAN's target_params_py3.pkl (nothing was allocated)"
            )
        return np.frombuffer(data, dtype).reshape(shape, order="F" if self.fortran else "C").copy()


_NDARRAY = object()  # stands for numpy.ndarray while unpickling (the class is never handed out)


def _reconstruct(subtype: Any, shape: Any = None, code: Any = None) -> _ArraySpec:
    """``numpy.core.multiarray._reconstruct`` recorded; its state follows."""
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("only plain numpy.ndarray may be unpickled here")
    return _ArraySpec()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> _ArraySpec:
    """``numpy.core.numeric._frombuffer`` (pickle protocol 5) recorded, not built."""
    return _ArraySpec(shape, dtype, order == "F", buf)


#: The only globals :class:`NumpyArrayUnpickler` resolves — each to a recorder, never to numpy.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy < 2 pickles
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy ≥ 2 pickles
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTypeSpec,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1_encode,  # bytes in protocols 0–2
}


class NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that records numpy arrays without building them (plain lists, tuples, dicts,
    numbers and strings load as usual) and refuses every other global: no code beyond
    :data:`ALLOWED_GLOBALS` runs. Python-2 pickles load too (``encoding='latin1'``, as numpy's)."""

    def __init__(self, file: Any) -> None:
        super().__init__(file, encoding="latin1")

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: only numpy arrays may be unpickled here"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"refused persistent id {pid!r}")


def load_seqgan_oracle_params(
    path: str | os.PathLike[str],
    *,
    n_items: int | None = None,
    embed_dim: int | None = None,
    hidden_dim: int | None = None,
    max_bytes: int = DEFAULT_MAX_ORACLE_BYTES,
) -> list[np.ndarray]:
    """Read SeqGAN's ``target_params_py3.pkl`` (a pickled list of 15 arrays in
    :data:`SEQGAN_PARAM_NAMES` order) safely, allocating no more than the file's own bytes.

    :class:`NumpyArrayUnpickler` refuses any global but numpy's array machinery (``UnpicklingError``
    naming it). Before any array is built, each must be a plain numeric array (no object, sub-array
    or structured dtype) of its TARGET_LSTM shape — (V, E), (E, H), (H, H), (H,) … (H, V), (V,), with
    V, E, H from the first two entries or ``n_items``, ``embed_dim``, ``hidden_dim`` — carrying
    exactly shape × item-size bytes; else ``ValueError`` naming the entry. Files above ``max_bytes``
    are not read.
    """
    where, n = repr(os.fspath(path)), len(SEQGAN_PARAM_NAMES)
    size = os.stat(path).st_size
    if size > max_bytes:
        raise ValueError(f"{where} is {size} bytes, above max_bytes = {max_bytes} (SeqGAN's file is 1.4 MB)")
    with open(path, "rb") as fh:
        obj = NumpyArrayUnpickler(io.BytesIO(fh.read())).load()
    if not isinstance(obj, (list, tuple)) or len(obj) != n:
        got = f"{len(obj)} entries" if isinstance(obj, (list, tuple)) else type(obj).__name__.strip("_")
        raise ValueError(f"{where} must hold a list of {n} arrays, got {got}")
    labels = [f"{where}: entry {k} ({name})" for k, name in enumerate(SEQGAN_PARAM_NAMES)]
    checked = [_ArraySpec.checked(spec, label) for label, spec in zip(labels, obj, strict=True)]
    shapes = [shape for _, shape in checked]
    if len(shapes[0]) != 2 or len(shapes[1]) != 2:
        raise ValueError(f"{where}: entries 0 (g_embeddings) and 1 (Wi) must be matrices, got {shapes[:2]}")
    found = (*shapes[0], shapes[1][1])  # V, E, H
    V, E, H = (
        n if n is not None else d for n, d in zip((n_items, embed_dim, hidden_dim), found, strict=True)
    )
    expected = _seqgan_shapes(int(V), int(E), int(H))
    for label, name, shape in zip(labels, SEQGAN_PARAM_NAMES, shapes, strict=True):
        if shape != expected[name]:
            raise ValueError(f"{label} has shape {shape}, expected {expected[name]} for V={V}, E={E}, H={H}")
    return [spec.build(label, *c) for label, spec, c in zip(labels, obj, checked, strict=True)]


def load_seqgan_oracle(
    path: str | os.PathLike[str],
    *,
    horizon: int = 20,
    n_items: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> LSTMOracle:
    """SeqGAN's published oracle from ``target_params_py3.pkl`` (start token 0, as SeqGAN); with
    ``n_items`` the file must have that many items (:func:`load_seqgan_oracle_params`)."""
    params = load_seqgan_oracle_params(path, n_items=n_items)
    return LSTMOracle.from_seqgan_params(params, horizon=horizon, dtype=dtype)
