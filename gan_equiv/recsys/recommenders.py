"""Sequential recommenders: popularity, first-order Markov, the MLE GRU and EB-SeqGAN.

Every model maps user histories to a score for each of the V items (higher = more likely next):

- :class:`PopularityRecommender` — training-set item counts (ignores the history);
- :class:`MarkovRecommender` — first-order item-to-item transitions with additive smoothing backed
  off to popularity: P(j | i) = (C[i, j] + α·pop(j)) / (C[i, ·] + α), pop for an empty history;
- :class:`GRURecommender` — behaviour cloning: ``GRUPolicy`` trained by the MLE phase of
  :class:`~gan_equiv.train.trainer.Trainer` (teacher-forced full-softmax cross-entropy on length-T
  windows, GRU4Rec-style, or one example per target position under the ``recbole`` preset), with
  the epoch chosen by the validation metric (NDCG@10; MRR@10 under ``recbole``);
- :class:`SASRecRecommender` — the same with the self-attentive generator (SASRec);
- :class:`EBSeqGANRecommender` — EB-SeqGAN (Algorithm 1) started from a copy of that MLE GRU: energy
  pretraining with loss (3), then adversarial rounds (policy gradient of eq. 14, rollouts); from
  the MLE SASRec it is ``ebseqgan_sasrec``.

The two GRU models are configured by a :class:`~gan_equiv.train.config.TrainConfig` each
(:data:`gan_equiv.recsys.settings.MLE_DEFAULTS`, :data:`~gan_equiv.recsys.settings.GAN_DEFAULTS`);
:func:`config_for_split` fills in what the split determines. They drive the Trainer one phase
at a time with ``Trainer.run(phase, units)``. The GRUs score a user from the last T−1 items of
the history (right-aligned in :class:`~gan_equiv.recsys.histories.Histories`; shorter histories
are read as they are, after the start token) — the position of s_T in a training window.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from gan_equiv.checks import non_negative_int, positive_float
from gan_equiv.models.policies import SequencePolicy
from gan_equiv.recsys.histories import Histories
from gan_equiv.recsys.logs import Ragged
from gan_equiv.recsys.metrics import next_item_metrics
from gan_equiv.recsys.sequential import PrefixExamples, masked_mle_epoch
from gan_equiv.recsys.settings import DEFAULTS, GAN_DEFAULTS, MLE_DEFAULTS, SASRecSettings
from gan_equiv.train.config import TrainConfig
from gan_equiv.train.trainer import Trainer


@dataclass(frozen=True)
class TrainData:
    """What a model is fitted on (one split): per-user training prefixes, their length-T windows,
    and the validation history/target used for model selection."""

    train: Ragged
    windows: np.ndarray
    valid_history: Histories
    valid_target: Tensor
    n_items: int
    horizon: int
    seed: int = DEFAULTS.protocol.seed
    source: str = "interactions"
    out_dir: str = DEFAULTS.protocol.out_dir
    exclude_seen: bool = True
    prefixes: PrefixExamples | None = None
    select_metric: str = DEFAULTS.protocol.select_metric


class Recommender:
    """Base class: ``fit(data)`` then ``scores(histories) → (N, V)`` (higher = more likely next)."""

    name = "base"
    #: How many of the most recent history items ``scores`` reads (None: all of them).
    context: int | None = None

    def __init__(self) -> None:
        self.n_items = 0
        self.log: list[dict[str, float]] = []  # per epoch / round validation history
        self.timings: dict[str, float] = {}

    def fit(self, data: TrainData) -> Recommender:
        """Fit on ``data.train`` (and its windows); returns self."""
        raise NotImplementedError

    def scores(self, histories: Histories) -> Tensor:
        """Score of every item as the next one after each history: (N, V), higher = more likely."""
        raise NotImplementedError


class PopularityRecommender(Recommender):
    """Score = number of training interactions of the item (the same for every user)."""

    name = "pop"
    context = 0

    def fit(self, data: TrainData) -> PopularityRecommender:
        """Count the training interactions of each item."""
        self.n_items = data.n_items
        self.counts = torch.as_tensor(
            np.bincount(data.train.values, minlength=data.n_items), dtype=torch.float64
        )
        return self

    def scores(self, histories: Histories) -> Tensor:
        """The item counts, the same row for every history (a read-only expanded view)."""
        return self.counts.expand(len(histories), -1)


#: Largest V² for which :class:`MarkovRecommender` keeps its dense V × V table (128 MiB of float64).
DENSE_MARKOV_ENTRIES = 1 << 24


class MarkovRecommender(Recommender):
    """First-order Markov chain over items: P(j | i) = (C[i, j] + α·pop(j)) / (n_i + α).

    C counts the consecutive pairs (i, j) in the training prefixes, n_i = Σ_j C[i, j], pop the
    training item frequencies; an unseen last item (n_i = 0) or an empty history gives pop. The
    counts are a sparse matrix, so V may be large.
    """

    name = "markov"
    context = 1

    def __init__(self, *, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = positive_float(alpha, "alpha", hint="additive smoothing needs α > 0")

    def fit(self, data: TrainData) -> MarkovRecommender:
        """Count consecutive training pairs (sparse V×V) and item frequencies."""
        V = self.n_items = data.n_items
        train = data.train
        follows = train.positions() > 0  # value k follows value k−1 in the same row
        nxt = train.values[follows]
        prev = train.values[np.flatnonzero(follows) - 1]
        self.counts = sp.csr_matrix((np.ones(nxt.size), (prev, nxt)), shape=(V, V))
        self.row_sums = np.asarray(self.counts.sum(axis=1)).ravel()
        pop = np.bincount(train.values, minlength=V).astype(np.float64)
        self.pop = pop / pop.sum()
        # the whole table P (V, V) when it is small: scoring is then one row gather
        self.table = self._rows(np.arange(V)) if V * V <= DENSE_MARKOV_ENTRIES else None
        return self

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        """P(· | i) for the items ``rows`` (n,): (n, V) float64, built in place."""
        probs = self.counts[rows].toarray()  # C[i, ·]
        probs += self.alpha * self.pop
        probs /= (self.row_sums[rows] + self.alpha)[:, None]
        return probs

    def scores(self, histories: Histories) -> Tensor:
        """P(j | last item) as float64; popularity for an empty history or an unseen last item."""
        last = histories.last_items().numpy()
        has = last >= 0
        rows = np.where(has, last, 0)
        probs = self.table[rows] if self.table is not None else self._rows(rows)
        probs[~has] = self.pop
        return torch.from_numpy(probs)


@torch.no_grad()
def policy_scores(policy: SequencePolicy, histories: Histories) -> Tensor:
    """log p_G(· | last T−1 items of each history): (N, V), float32 on the CPU.

    One pass over the T−1 columns, vectorized over users; a PAD column leaves the state unchanged,
    so a shorter history is read right after the start token.
    """
    policy.eval()
    ctx = histories.tail(policy.horizon - 1).to(policy.device)
    state = policy.initial_state(ctx.shape[0])
    for t in range(ctx.shape[1]):  # T−1 steps, vectorized over N
        col = ctx[:, t]
        active = col >= 0
        if bool(active.any()):
            moved = policy.advance(state, col.clamp(min=0))
            state = torch.where(active.view(-1, *([1] * (state.ndim - 1))), moved, state)
    return torch.log_softmax(policy.logits(state).float(), dim=-1).cpu()


def config_for_split(config: TrainConfig, data: TrainData, *, name: str) -> TrainConfig:
    """``config`` with the fields the split determines: V items, horizon T, the protocol's seed,
    the run directory ``out_dir/name``; CNN filter widths above T are dropped (a width > T sees no
    window). The training sequences are given to the Trainer directly (``data`` is not used)."""
    T = data.horizon
    energy = config.energy
    if energy.kind == "cnn":
        kept = [(w, n) for w, n in zip(energy.filter_sizes, energy.num_filters, strict=True) if w <= T]
        kept = kept or [(min(T, 2), energy.num_filters[0])]
        energy = replace(
            energy, filter_sizes=tuple(w for w, _ in kept), num_filters=tuple(n for _, n in kept)
        )
    return replace(
        config,
        name=name,
        n_items=data.n_items,
        horizon=T,
        seed=data.seed,
        energy=energy,
        out_dir=str(Path(data.out_dir) / name),
    )


def _validation_score(model: Recommender, data: TrainData) -> float:
    """The model-selection metric ``data.select_metric`` (e.g. MRR@10) on the validation items."""
    k = int(data.select_metric.partition("@")[2])
    m = next_item_metrics(
        model, data.valid_history, data.valid_target, ks=(k,), exclude_seen=data.exclude_seen
    )
    return m[data.select_metric]


class GRURecommender(Recommender):
    """Behaviour cloning: a generator (GRUPolicy by default) fitted by maximum likelihood.

    With ``data.prefixes`` (the ``recbole`` preset) each epoch is :func:`masked_mle_epoch` over
    one example per target position; otherwise it is the Trainer's MLE phase on the length-T
    windows. At most ``config.pretrain_g_epochs`` epochs; the validation ``data.select_metric``
    is recorded after each, training stops after ``patience`` epochs without improvement
    (0 = run all), and the best epoch's weights are kept.
    """

    name = "mle"

    def __init__(
        self, config: TrainConfig = MLE_DEFAULTS, *, patience: int = DEFAULTS.protocol.patience
    ) -> None:
        super().__init__()
        self.config = config
        self.patience = non_negative_int(patience, "patience", hint="0 runs every epoch")
        self.policy: SequencePolicy | None = None

    def build_policy(self, config: TrainConfig) -> SequencePolicy | None:
        """A pre-built generator for ``config`` (None: the Trainer builds it from config.generator)."""
        return None

    def fit(self, data: TrainData) -> GRURecommender:
        """MLE epochs; keeps the epoch with the best validation ``data.select_metric``."""
        self.n_items = data.n_items
        if data.prefixes is None and data.windows.shape[0] == 0:
            raise ValueError(
                f"no training window of length T={data.horizon}: every training prefix is shorter; "
                "lower the horizon"
            )
        config = config_for_split(self.config, data, name=self.name)
        windows = data.windows if data.windows.shape[0] else np.zeros((1, data.horizon), np.int64)
        trainer = Trainer(config, torch.as_tensor(windows), policy=self.build_policy(config))
        self.policy = policy = trainer.policy
        shuffle = torch.Generator().manual_seed(config.seed + 2)
        key = f"valid_{data.select_metric}"
        best, best_state, stale, epoch_times = -1.0, None, 0, []
        for epoch in range(1, config.pretrain_g_epochs + 1):
            start = time.perf_counter()
            if data.prefixes is not None:
                nll = masked_mle_epoch(
                    policy,
                    data.prefixes,
                    trainer.g_opt,
                    batch_size=config.batch_size,
                    generator=shuffle,
                    grad_clip=config.g_optim.grad_clip,
                )
            else:
                rows = trainer.run("mle", 1)
                nll = float(rows[-1]["mle_nll_per_token"]) if rows else float("nan")
            epoch_times.append(time.perf_counter() - start)
            score = _validation_score(self, data)
            self.log.append({"epoch": epoch, "train_nll": nll, key: score, "epoch_s": epoch_times[-1]})
            if score > best:
                best, best_state, stale = score, copy.deepcopy(policy.state_dict()), 0
            else:
                stale += 1
                if self.patience and stale >= self.patience:
                    break
        if best_state is not None:
            policy.load_state_dict(best_state)
        policy.eval()
        n_ex = data.prefixes.n_examples if data.prefixes is not None else int(data.windows.shape[0])
        mean_epoch = float(np.mean(epoch_times)) if epoch_times else 0.0
        self.timings = {
            "epoch_s": mean_epoch,
            "epochs": len(epoch_times),
            "examples_per_s": n_ex / mean_epoch if mean_epoch else 0.0,
            f"best_{key}": best,
        }
        return self

    @property
    def context(self) -> int | None:  # type: ignore[override]
        """The generator reads the last T−1 items."""
        return None if self.policy is None else self.policy.horizon - 1

    def scores(self, histories: Histories) -> Tensor:
        """log p_G(· | last T−1 items) (:func:`policy_scores`)."""
        if self.policy is None:
            raise RuntimeError("fit the model before scoring")
        return policy_scores(self.policy, histories)


class SASRecRecommender(GRURecommender):
    """Behaviour cloning with the self-attentive generator :class:`~gan_equiv.models.sasrec.SASRecPolicy`
    (same training and selection as :class:`GRURecommender`)."""

    name = "sasrec"

    def __init__(
        self,
        config: TrainConfig = MLE_DEFAULTS,
        *,
        patience: int = DEFAULTS.protocol.patience,
        settings: SASRecSettings = DEFAULTS.protocol.sasrec,
    ) -> None:
        super().__init__(replace(config, generator=settings.generator(config.generator)), patience=patience)
        self.settings = settings


class EBSeqGANRecommender(GRURecommender):
    """EB-SeqGAN started from a fitted :class:`GRURecommender` (a copy of its policy).

    ``config.pretrain_d_steps`` energy updates with loss (3), then ``config.adversarial_rounds``
    rounds (``g_steps`` policy-gradient steps of eq. 14 with K = ``n_rollouts`` rollouts,
    ``d_steps`` energy steps with margin m); the validation metric is recorded every
    ``config.eval_every`` rounds (0 = at the end); the final model is kept. The generator table
    is that of the initial GRU (this run continues that policy).
    """

    name = "ebseqgan"

    def __init__(
        self, init: GRURecommender, config: TrainConfig = GAN_DEFAULTS, *, name: str | None = None
    ) -> None:
        super().__init__(replace(config, generator=init.config.generator), patience=init.patience)
        if init.policy is None:
            raise ValueError("the initial generator must be fitted first; call init.fit(data)")
        self.init = init
        default = "ebseqgan" if init.name == "mle" else f"ebseqgan_{init.name}"
        self.name = name or default  # e.g. "seqgan" / "gan_gcl": the same loop, another objective

    def fit(self, data: TrainData) -> EBSeqGANRecommender:
        """Energy pretraining, then adversarial rounds, from a copy of the initial GRU."""
        self.n_items = data.n_items
        config = config_for_split(self.config, data, name=self.name)
        trainer = Trainer(config, torch.as_tensor(data.windows), policy=copy.deepcopy(self.init.policy))
        self.policy = trainer.policy
        start = time.perf_counter()
        trainer.run("d_pretrain")
        d_time = time.perf_counter() - start
        key = f"valid_{data.select_metric}"
        self.log.append({"round": 0, key: _validation_score(self, data)})
        done, round_time = 0, 0.0
        total = config.adversarial_rounds
        while done < total:
            n = min(config.eval_every or total, total - done)
            start = time.perf_counter()
            rows = trainer.run("adversarial", n)
            round_time += time.perf_counter() - start
            done += n
            last = rows[-1] if rows else {}
            entry = {"round": done, key: _validation_score(self, data)}
            entry.update(
                {k: float(last[k]) for k in ("d_loss", "energy_real", "energy_fake", "q_mean") if k in last}
            )
            self.log.append(entry)
        self.timings = {"d_pretrain_s": d_time, "round_s": round_time / max(done, 1), "rounds": done}
        return self
