"""The space of item sequences S = s_1 … s_T over a vocabulary of V items.

Every exact quantity in the project is a sum over this space, which has V^T members. Sequences are
numbered in base V with s_1 as the most significant digit, so that

    index(S) = Σ_t s_t · V^(T−t),          0 ≤ index < V^T,

and the sequences sharing a prefix s_1 … s_t form one contiguous block of indices (the prefix
``index // V^(T−t)``). Enumeration happens in chunks of consecutive indices, each chunk decoded
with a handful of vectorized integer operations; there is no Python loop over sequences.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from maxent_il.checks import positive_int

#: Default largest space that exact enumeration will walk through (about 3.4e7 sequences).
DEFAULT_MAX_SEQUENCES = 2**25
#: Default number of sequences decoded at once by chunked enumeration (tuned on 2 CPU cores:
#: small enough for a chunk's working arrays to stay near the cache, large enough to amortize
#: the per-chunk overhead; see docs/benchmarks.md).
DEFAULT_CHUNK_SIZE = 2**14
#: Size of the block freed by :func:`prime_allocator`: above every chunk's temporaries at the
#: default chunk size, below glibc's 32 MiB cap on its dynamic mmap threshold.
PRIME_ALLOCATOR_BYTES = 16 * 2**20
#: Largest block template (rows) that :meth:`SequenceSpace.decode_range` precomputes and caches.
MAX_TEMPLATE_ROWS = 2**14


class EnumerationTooLargeError(ValueError):
    """Raised when V^T is too large to enumerate; the message names V, T, V^T and the memory."""


@dataclass(frozen=True)
class SequenceSpace:
    """All item sequences of length ``horizon`` (T) over ``n_items`` (V) items.

    Attributes:
        n_items: V, the number of distinct items; items are the integers 0 … V−1.
        horizon: T, the length of every sequence.
    """

    n_items: int
    horizon: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_items", positive_int(self.n_items, "n_items", hint="V, the items"))
        object.__setattr__(self, "horizon", positive_int(self.horizon, "horizon", hint="T, the length"))

    @property
    def size(self) -> int:
        """V^T, the number of sequences (an exact Python integer, never overflows)."""
        return self.n_items**self.horizon

    def bytes_to_materialize(self) -> int:
        """Memory (bytes) of one float64 per sequence plus the (V^T, T) int64 sequence table."""
        return self.size * 8 * (1 + self.horizon)

    def check_enumerable(self, *, max_sequences: int = DEFAULT_MAX_SEQUENCES) -> None:
        """Raise :class:`EnumerationTooLargeError` when V^T exceeds ``max_sequences``.

        The message names V, T, V^T and the memory that materializing the space would take, and
        points to the dynamic-programming path, which handles decomposable features at any size.
        Sizes are exact Python integers shown through log10, so any V^T (even far beyond the
        float64 range) gets this error, never an OverflowError.
        """
        max_sequences = positive_int(max_sequences, "max_sequences", hint="the enumeration limit")
        if self.size > max_sequences:
            raise EnumerationTooLargeError(
                f"exact enumeration refused: V={self.n_items}, T={self.horizon} gives "
                f"V^T={format_count(self.size)} sequences (limit max_sequences="
                f"{format_count(max_sequences)}); materializing them would take about "
                f"{format_bytes(self.bytes_to_materialize())}. For decomposable features "
                "('last', 'time_last', 'history') use the dynamic-programming path "
                "(maxent_il.dynamic.soft_bellman), or pass a larger max_sequences."
            )

    def decode(self, indices: Any) -> np.ndarray:
        """Sequences for the given indices: int64 array of shape (N, T)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.size):
            bad = idx[(idx < 0) | (idx >= self.size)][0]
            raise ValueError(f"sequence index {bad} is outside 0..{self.size - 1} (V^T - 1)")
        out = np.empty((idx.size, self.horizon), dtype=np.int64)
        rest = idx.copy()
        for col in range(self.horizon - 1, -1, -1):  # loop over T columns, vectorized over N
            rest, out[:, col] = np.divmod(rest, self.n_items)
        return out

    def decode_range(self, start: int, stop: int) -> np.ndarray:
        """Sequences of the consecutive indices start … stop−1: int64 array of shape (stop−start, T).

        Equal to ``decode(np.arange(start, stop))`` but much faster. The trailing k digits of
        consecutive indices cycle through all V^k suffixes and the leading T−k digits are constant
        within each block of V^k indices, so each block is one copy of a cached (V^k, T) template
        (suffix digits in the last k columns) plus a broadcast of its T−k head digits; only the
        few heads are decoded by integer division. No Python loop over sequences or blocks.
        """
        if not 0 <= start <= stop <= self.size:
            raise ValueError(f"index range {start}..{stop} is outside 0..{self.size} (V^T)")
        V, T = self.n_items, self.horizon
        n = stop - start
        out = np.empty((n, T), dtype=np.int64)
        if n == 0:
            return out
        k = _suffix_digits(V, T, n)
        block = V**k
        template = _block_template(V, T, k)  # (V^k, T), read-only
        head_lo, r_lo = divmod(start, block)
        head_hi, r_hi = divmod(stop, block)  # block head_hi holds the last r_hi indices
        n_heads = head_hi - head_lo + (1 if r_hi else 0)
        heads = SequenceSpace(V, T - k).decode(np.arange(head_lo, head_lo + n_heads)) if k < T else None
        lead = out[:, : T - k]  # the head digits (empty when k = T)
        if head_lo == head_hi:  # the whole range lies inside one block
            out[:] = template[r_lo:r_hi]
            if heads is not None:
                lead[:] = heads[0]
            return out
        row, h = 0, 0
        if r_lo:  # partial first block
            row, h = block - r_lo, 1
            out[:row] = template[r_lo:]
            if heads is not None:
                lead[:row] = heads[0]
        n_full = head_hi - head_lo - h
        full = out[row : row + n_full * block].reshape(n_full, block, T)
        full[:] = template
        if heads is not None:
            full[:, :, : T - k] = heads[h : h + n_full, None, :]
        row += n_full * block
        if r_hi:  # partial last block
            out[row:] = template[:r_hi]
            if heads is not None:
                lead[row:] = heads[-1]
        return out

    def encode(self, sequences: Any) -> np.ndarray:
        """Indices of validated sequences: int64 array of shape (N,)."""
        seqs = self.validate(sequences)
        if self.size > np.iinfo(np.int64).max:
            raise EnumerationTooLargeError(
                f"V^T={format_count(self.size)} does not fit an int64 index (V={self.n_items}, "
                f"T={self.horizon}); sequences of this space cannot be numbered, use the "
                "dynamic-programming path (maxent_il.dynamic.soft_bellman)"
            )
        idx = np.zeros(seqs.shape[0], dtype=np.int64)
        for col in range(self.horizon):  # loop over T columns, vectorized over N
            idx = idx * self.n_items + seqs[:, col]
        return idx

    def iter_chunks(
        self,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_sequences: int = DEFAULT_MAX_SEQUENCES,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, sequences)`` over the whole space in index order.

        ``sequences`` has shape (n, T) with n ≤ chunk_size and holds indices start … start+n−1.
        """
        chunk_size = positive_int(chunk_size, "chunk_size", hint="sequences decoded at once")
        self.check_enumerable(max_sequences=max_sequences)
        if self.size > chunk_size:
            prime_allocator()
        for start in range(0, self.size, chunk_size):
            yield start, self.decode_range(start, min(start + chunk_size, self.size))

    def all_sequences(self, *, max_sequences: int = DEFAULT_MAX_SEQUENCES) -> np.ndarray:
        """Every sequence, shape (V^T, T), in index order."""
        self.check_enumerable(max_sequences=max_sequences)
        return self.decode_range(0, self.size)

    def validate(self, sequences: Any, *, name: str = "sequences") -> np.ndarray:
        """Check a batch of sequences and return it as a C-contiguous int64 array (N, T).

        Raises ``ValueError`` naming the offending value for ragged or empty input, non-integer
        values, a wrong length, or items outside 0 … V−1.
        """
        return validate_sequences(sequences, n_items=self.n_items, horizon=self.horizon, name=name)


def format_count(n: int) -> str:
    """An exact non-negative integer in scientific notation via log10 (never overflows a float).

    Like ``f"{n:.3e}"`` but for any size, e.g. 8 → ``'8.000e+00'``, 10**400 → ``'1.000e+400'``.
    """
    if n == 0:
        return "0.000e+00"
    exponent = len(str(n)) - 1  # ⌊log10 n⌋, exact for Python ints of any size
    if exponent >= 3:  # round n / 10^(exponent−3) half-to-even in integers, as float formatting does
        digits, rest = divmod(n, 10 ** (exponent - 3))
        twice_rest, unit = 2 * rest, 10 ** (exponent - 3)
        if twice_rest > unit or (twice_rest == unit and digits % 2 == 1):
            digits += 1
    else:
        digits = n * 10 ** (3 - exponent)
    if digits == 10_000:
        digits, exponent = 1000, exponent + 1
    return f"{digits // 1000}.{digits % 1000:03d}e{exponent:+03d}"


def format_bytes(nbytes: int) -> str:
    """A byte count (exact integer of any size) in GiB, e.g. ``'1.5 GiB'`` or ``'3.2e+400 GiB'``."""
    if nbytes < 2**30 * 10**6:
        return f"{nbytes / 2**30:.3g} GiB"
    return f"{format_count(nbytes // 2**30)} GiB"


def prime_allocator(nbytes: int = PRIME_ALLOCATOR_BYTES) -> None:
    """Let the C allocator keep a chunk loop's working memory instead of returning it each chunk.

    glibc's malloc serves blocks above its mmap threshold (128 KiB at start) with fresh mmap'd
    pages and returns freed memory at the top of the heap to the OS once it exceeds the trim
    threshold; a chunk loop whose temporaries are a few MiB then page-faults all of them in again
    on every chunk (measured: ~40% of an enumeration pass). Freeing one larger block raises both
    thresholds (the mmap threshold to its size, the trim threshold to twice that — glibc's own
    dynamic rule), after which the chunks reuse heap memory. The block is never touched, so this
    costs one mmap/munmap pair. Harmless with other allocators.
    """
    np.empty(nbytes, dtype=np.uint8)  # allocated and freed at once


def _suffix_digits(n_items: int, horizon: int, n: int) -> int:
    """Number k of trailing digits served by the block template when decoding n consecutive indices.

    The largest k ≤ T with V^k ≤ min(n, MAX_TEMPLATE_ROWS) (at least 0), so a range spans about
    n / V^k blocks and the template stays small enough to be reused from cache.
    """
    limit = max(1, min(n, MAX_TEMPLATE_ROWS))
    k, block = 0, 1
    while k < horizon and block * n_items <= limit:
        k, block = k + 1, block * n_items
    return k


@lru_cache(maxsize=8)
def _block_template(n_items: int, horizon: int, k: int) -> np.ndarray:
    """(V^k, T) read-only int64: zeros in the first T−k columns, then all V^k suffixes in base-V order."""
    table = np.zeros((n_items**k, horizon), dtype=np.int64)
    for col in range(k):  # loop over k columns, vectorized over V^k rows
        digits = np.repeat(np.tile(np.arange(n_items), n_items**col), n_items ** (k - 1 - col))
        table[:, horizon - k + col] = digits
    table.flags.writeable = False
    return table


def validate_sequences(
    sequences: Any, *, n_items: int, horizon: int | None = None, name: str = "sequences"
) -> np.ndarray:
    """Validate item sequences and return them as an int64 array of shape (N, T).

    Args:
        sequences: array-like of shape (N, T) (or one sequence of shape (T,)).
        n_items: V; every item must lie in 0 … V−1.
        horizon: T, if the length is fixed; ``None`` accepts any common length.
        name: how the input is called in error messages.
    """
    if isinstance(sequences, np.ndarray):
        arr = sequences
    else:
        rows = list(sequences) if not np.isscalar(sequences) else [sequences]
        if rows and all(_safe_ndim(r) == 0 for r in rows):
            rows = [rows]  # a single flat sequence
        lengths = [len(r) if _safe_ndim(r) == 1 else -1 for r in rows]
        if any(length < 0 for length in lengths):
            bad = next(i for i, length in enumerate(lengths) if length < 0)
            raise ValueError(f"{name}[{bad}] is not a flat sequence of item ids")
        if len(set(lengths)) > 1:
            first = lengths[0]
            bad = next(i for i, length in enumerate(lengths) if length != first)
            raise ValueError(
                f"ragged {name}: row 0 has length {first} but row {bad} has length "
                f"{lengths[bad]}; pad or cut every sequence to one horizon T"
            )
        arr = np.asarray(rows)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, T), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); give at least one sequence of length >= 1")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integer item ids, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            bad = np.argwhere(~np.isfinite(arr) | (arr != np.round(arr)))[0]
            raise ValueError(
                f"{name}[{bad[0]}, {bad[1]}] = {float(arr[tuple(bad)])} is not an integer item id"
            )
    if horizon is not None and arr.shape[1] != horizon:
        raise ValueError(f"{name} have length {arr.shape[1]} but the horizon is T={horizon}")
    out_of_range = (arr < 0) | (arr >= n_items)
    if np.any(out_of_range):
        r, c = np.argwhere(out_of_range)[0]
        raise ValueError(
            f"{name}[{r}, {c}] = {arr[r, c]} is outside the item range 0..{n_items - 1} (V={n_items})"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def _safe_ndim(value: Any) -> int:
    """np.ndim, or −1 for inhomogeneous nested input (which numpy 2 refuses to shape)."""
    try:
        return int(np.ndim(value))
    except ValueError:
        return -1
