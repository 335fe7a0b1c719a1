"""SeqGAN's synthetic oracle: a random LSTM that generates the training data of the oracle benchmark.

- :class:`LSTMOracle` — SeqGAN's target LSTM (Yu et al. 2017): embedding + explicit LSTM gates +
  softmax, every parameter N(0, 1), V = 5000, T = 20, emb = hidden = 32 by default. It implements
  the :class:`~gan_equiv.models.policies.SequencePolicy` interface, so it samples, scores and rolls out
  like any generator. :func:`oracle_dataset` draws the training set in batches.
- :func:`load_seqgan_oracle_params` reads SeqGAN's published ``target_params_py3.pkl`` (a pickled
  list of 15 numpy arrays) with a restricted unpickler that admits numpy arrays and nothing else;
  :meth:`LSTMOracle.from_seqgan_params` maps them onto the oracle exactly.
"""

from __future__ import annotations

import codecs
import os
import pickle
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
        """An oracle holding SeqGAN's 15 arrays (V, E, H read from their shapes), frozen.

        Raises ``ValueError`` naming the array for a wrong count, shape, dtype or non-finite entry.
        """
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
                f"SeqGAN parameters 0 (g_embeddings) and 1 (Wi) must be matrices, "
                f"got shapes {emb.shape} and {wi.shape}"
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

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's multiarray._reconstruct
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # numpy's numeric._frombuffer (protocol 5)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` restricted to latin-1: how protocol ≤ 2 pickles store bytes."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r} (only latin1)")
    return codecs.encode(text, "latin1")


#: The only globals :class:`NumpyArrayUnpickler` resolves: what pickled numpy arrays reference.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy < 2 pickles
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy ≥ 2 pickles
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("_codecs", "encode"): _latin1_encode,  # bytes in protocols 0–2
}


class NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays (and plain lists, tuples, dicts, numbers, strings)
    and refuses every other global — no pickle code beyond :data:`ALLOWED_GLOBALS` ever runs.

    Python-2 pickles load too (``encoding='latin1'``, numpy's convention for them).
    """

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


def load_seqgan_oracle_params(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Read SeqGAN's ``target_params_py3.pkl`` (a pickled list of 15 arrays) safely.

    Uses :class:`NumpyArrayUnpickler`: a file that references anything but numpy arrays raises
    ``pickle.UnpicklingError`` naming the refused global. The content is checked to be a list of
    15 numeric arrays (``ValueError`` otherwise); shapes are checked by
    :meth:`LSTMOracle.from_seqgan_params`.
    """
    with open(path, "rb") as fh:
        obj = NumpyArrayUnpickler(fh).load()
    n = len(SEQGAN_PARAM_NAMES)
    if not isinstance(obj, (list, tuple)) or len(obj) != n:
        got = f"{len(obj)} entries" if isinstance(obj, (list, tuple)) else type(obj).__name__
        raise ValueError(f"{os.fspath(path)!r} must hold a list of {n} arrays, got {got}")
    for k, arr in enumerate(obj):
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
            what = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
            raise ValueError(
                f"{os.fspath(path)!r}: entry {k} ({SEQGAN_PARAM_NAMES[k]}) is {what}, not a numeric array"
            )
    return list(obj)


def load_seqgan_oracle(
    path: str | os.PathLike[str], *, horizon: int = 20, dtype: torch.dtype = torch.float32
) -> LSTMOracle:
    """SeqGAN's published oracle from ``target_params_py3.pkl`` (start token 0, as SeqGAN)."""
    return LSTMOracle.from_seqgan_params(load_seqgan_oracle_params(path), horizon=horizon, dtype=dtype)
