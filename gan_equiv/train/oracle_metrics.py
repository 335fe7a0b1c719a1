"""SeqGAN oracle metrics (Monte-Carlo): quality, coverage and diversity of a generator.

- :func:`nll_oracle` — quality: mean per-token NLL of *generated* samples under the oracle;
- :func:`nll_test` — coverage: mean per-token NLL of *held-out oracle* samples under the generator;
- :func:`entropy_per_token` — diversity: H(p_G)/T with its standard error;
- :func:`distinct_n` — diversity of n-grams.

NLL-oracle alone rewards collapse: a generator that always emits the oracle's most likely
sequences scores *below* the oracle's own entropy rate. Report it together with NLL-test and the
entropy per token, never alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_equiv.checks import positive_int
from gan_equiv.models.policies import SequencePolicy


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte-Carlo mean with its standard error (std / √n) over n independent samples."""

    mean: float
    stderr: float
    n: int


@torch.no_grad()
def sequence_nll_per_token(model: SequencePolicy, sequences: Any, *, batch_size: int = 256) -> Tensor:
    """−log p_model(S) / T for each sequence: float64 (N,) on the CPU (teacher forcing, batched)."""
    seqs = model.check_sequences(sequences)
    if seqs.shape[0] == 0:
        raise ValueError("sequences is empty; give at least one sequence")
    bs = positive_int(batch_size, "batch_size")
    parts = [
        -model.step_log_probs(seqs[i : i + bs]).double().mean(dim=1).cpu()
        for i in range(0, seqs.shape[0], bs)
    ]
    return torch.cat(parts)


def nll_oracle(oracle: SequencePolicy, generated: Any, *, batch_size: int = 256) -> float:
    """NLL-oracle: mean per-token NLL of the *generated* sequences under the oracle (SeqGAN's metric).

    Measures sample quality as the oracle judges it; lower is better, but a collapsed generator
    scores below the oracle's own entropy rate — report with :func:`nll_test` and
    :func:`entropy_per_token`.
    """
    return float(sequence_nll_per_token(oracle, generated, batch_size=batch_size).mean())


def nll_test(policy: SequencePolicy, heldout: Any, *, batch_size: int = 256) -> float:
    """NLL-test: mean per-token NLL of *held-out oracle samples* under the generator.

    Measures coverage of the data distribution (a cross-entropy; ≥ the oracle's entropy rate in
    expectation, with equality iff p_G equals the oracle); it punishes collapse.
    """
    return float(sequence_nll_per_token(policy, heldout, batch_size=batch_size).mean())


@torch.no_grad()
def entropy_per_token(
    policy: SequencePolicy,
    n_samples: int = 1000,
    generator: torch.Generator | None = None,
    *,
    batch_size: int = 256,
) -> MonteCarloEstimate:
    """H(p_G)/T ≈ mean of −log p_G(S)/T over S ~ p_G, with its standard error (nats per token)."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer ≥ 2 (for a standard error), got {n_samples!r}")
    bs = positive_int(batch_size, "batch_size")
    values = []
    for start in range(0, int(n_samples), bs):
        seqs = policy.sample(min(bs, int(n_samples) - start), generator=generator)
        values.append(-policy.log_prob(seqs).double().cpu() / policy.horizon)
    v = torch.cat(values)
    return MonteCarloEstimate(float(v.mean()), float(v.std() / np.sqrt(v.numel())), int(v.numel()))


def distinct_n(sequences: Any, n: int) -> float:
    """Fraction of distinct n-grams: #unique n-grams / #n-grams, pooled over all sequences.

    Each sequence of length T contributes T − n + 1 n-grams (contiguous windows). 1 = no n-gram
    repeats anywhere; close to 0 = a few n-grams repeated (mode collapse).
    """
    if isinstance(sequences, Tensor):
        sequences = sequences.detach().cpu().numpy()
    seqs = np.asarray(sequences)
    if seqs.ndim != 2 or seqs.shape[0] == 0 or seqs.shape[1] == 0:
        raise ValueError(f"sequences must be a non-empty (N, T) array, got shape {seqs.shape}")
    if seqs.dtype.kind not in "iu":
        raise ValueError(f"sequences must hold integer item ids, got dtype {seqs.dtype}")
    T = seqs.shape[1]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= T:
        raise ValueError(f"n must be an integer in 1..T={T}, got {n!r}")
    windows = np.lib.stride_tricks.sliding_window_view(seqs.astype(np.int64), n, axis=1).reshape(-1, n)
    return float(np.unique(windows, axis=0).shape[0] / windows.shape[0])
