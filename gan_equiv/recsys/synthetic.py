"""A small synthetic interaction log with learnable sequential structure (tests and smoke runs)."""

from __future__ import annotations

import numpy as np

from gan_equiv.recsys.logs import InteractionLog


def synthetic_log(
    *,
    n_users: int = 60,
    n_items: int = 40,
    min_length: int = 12,
    max_length: int = 30,
    successors: int = 3,
    tie_rate: float = 0.1,
    seed: int = 0,
) -> InteractionLog:
    """A small log with sequential structure: each item has ``successors`` likely next items.

    Every user walks a random sparse Markov chain (90% of the mass on the successors, the rest
    uniform) without repeating an item, for a length drawn in [min_length, max_length]. Timestamps
    increase by random gaps, and with probability ``tie_rate`` a gap is 0 (a tie); ratings are
    1…5. Rows are shuffled, so file order differs from time order. User/item tokens are "u7"/"i3".
    """
    if not 1 <= min_length <= max_length <= n_items:
        raise ValueError(
            f"need 1 <= min_length <= max_length <= n_items, got {min_length}, {max_length}, {n_items}"
        )
    rng = np.random.default_rng(seed)
    probs = np.full((n_items, n_items), 0.1 / n_items)
    succ = np.stack([rng.choice(n_items, size=successors, replace=False) for _ in range(n_items)])
    np.put_along_axis(probs, succ, probs[0, 0] + 0.9 / successors, axis=1)
    lengths = rng.integers(min_length, max_length + 1, size=n_users)
    seqs = np.zeros((n_users, max_length), dtype=np.int64)
    seen = np.zeros((n_users, n_items), dtype=bool)
    current = rng.integers(n_items, size=n_users)
    for t in range(max_length):  # steps, vectorized over users
        if t:
            p = np.where(seen, 0.0, probs[current])
            cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
            current = np.minimum((cdf < rng.random((n_users, 1))).sum(axis=1), n_items - 1)
        seqs[:, t] = current
        seen[np.arange(n_users), current] = True
    valid = np.arange(max_length)[None, :] < lengths[:, None]
    user = np.repeat(np.arange(n_users), lengths)
    item = seqs[valid]
    gaps = rng.integers(1, 10_000, size=(n_users, max_length)) * (
        rng.random((n_users, max_length)) >= tie_rate
    )
    times = 880_000_000 + rng.integers(0, 10**6, size=(n_users, 1)) + np.cumsum(gaps, axis=1)
    flat_t = times[valid].astype(np.float64)
    # Shuffle the rows, but let the rows of a tie (same user and time) occupy their file positions
    # in generation order, so the file-order tie rule recovers the generated sequences exactly.
    pos = rng.permutation(user.size)  # file position of each row
    gen = np.arange(user.size)
    by_pos = np.lexsort((pos, flat_t, user))
    by_gen = np.lexsort((gen, flat_t, user))
    new_pos = np.empty_like(pos)
    new_pos[by_gen] = pos[by_pos]
    order = np.argsort(new_pos)
    return InteractionLog(
        user=user[order],
        item=item[order],
        timestamp=flat_t[order],
        rating=rng.integers(1, 6, size=user.size)[order].astype(np.float64),
        line=np.arange(1, user.size + 1, dtype=np.int64),
        user_tokens=tuple(f"u{u}" for u in range(n_users)),
        item_tokens=tuple(f"i{i}" for i in range(n_items)),
        source=f"synthetic(n_users={n_users}, n_items={n_items}, seed={seed})",
    )
