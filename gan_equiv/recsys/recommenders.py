"""Sequential recommenders on real logs under one protocol: popularity, Markov, MLE GRU, EB-SeqGAN.

Every model maps user histories to a score for each of the V items (higher = more likely next):

- :class:`PopularityRecommender` — training-set item counts (ignores the history);
- :class:`MarkovRecommender` — first-order item-to-item transitions with additive smoothing backed
  off to popularity: P(j | i) = (C[i, j] + α·pop(j)) / (C[i, ·] + α), pop for an empty history;
- :class:`GRURecommender` — behaviour cloning: ``GRUPolicy`` trained by the MLE phase of
  :class:`~gan_equiv.train.trainer.Trainer` (teacher-forced full-softmax cross-entropy on length-T
  windows, GRU4Rec-style), with the epoch chosen by validation NDCG@10;
- :class:`EBSeqGANRecommender` — EB-SeqGAN (Algorithm 1) started from a copy of that MLE GRU: energy
  pretraining with loss (3), then adversarial rounds (policy gradient of eq. 14, rollouts).

The GRUs score a user from the last T−1 items of the history (right-aligned in
:class:`Histories`; shorter histories are read as they are, after the start token) — the position
of s_T in a training window.

Protocol (:func:`run_protocols`, same splits and seeds for every model): next-item full ranking
(:func:`next_item_metrics`: HR/NDCG/MRR@k via :func:`gan_equiv.recsys.ranking.ranking_metrics`) on the
leave-one-out split, and multi-step generation (:func:`multi_step_metrics`) on a split that holds
out each user's last n_max items: the model generates n items greedily, feeding on its own outputs,
scored by list recall, per-position hit@k with model-fed vs data-fed prefixes, catalogue coverage
and distinct items. With ``exclude_seen`` the items already in the history — and, while
generating, already generated or fed — are removed from every ranking (right for catalogues that
are not re-consumed, like MovieLens; wrong for music with repeats).
"""

from __future__ import annotations

import copy
import csv
import json
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from gan_equiv.models.policies import SequencePolicy
from gan_equiv.recsys.interactions import Ragged, UserSequences, split_tail, summarize, training_windows
from gan_equiv.recsys.ranking import ranking_metrics
from gan_equiv.train.config import EnergyConfig, GeneratorConfig, OptimConfig, TrainConfig, apply_overrides
from gan_equiv.train.trainer import Trainer

PAD = -1
MODELS = ("pop", "markov", "mle", "ebseqgan")
PROTOCOLS = ("next", "multistep")

# =============================================================================================
# Histories
# =============================================================================================


@dataclass(frozen=True)
class Histories:
    """A batch of user histories, right-aligned: ``items`` int64 (N, W), ``PAD`` (−1) before each history.

    The most recent item is the last column, so appending an item is one column.
    """

    items: Tensor

    @classmethod
    def from_ragged(cls, rows: Ragged) -> Histories:
        """Histories from per-user rows (oldest first)."""
        return cls(torch.as_tensor(rows.padded(pad=PAD)))

    def __len__(self) -> int:
        return int(self.items.shape[0])

    @property
    def lengths(self) -> Tensor:
        """Number of items in each history: (N,)."""
        return (self.items >= 0).sum(dim=1)

    def slice(self, start: int, stop: int) -> Histories:
        """Rows start … stop−1."""
        return Histories(self.items[start:stop])

    def append(self, items: Tensor) -> Histories:
        """Each history extended by one item (N,)."""
        return Histories(torch.cat([self.items, items.reshape(-1, 1).to(self.items)], dim=1))

    def tail(self, width: int) -> Tensor:
        """The last ``width`` items, right-aligned with PAD: (N, width)."""
        if width <= 0:
            return self.items[:, :0]
        if self.items.shape[1] >= width:
            return self.items[:, -width:]
        pad = torch.full((len(self), width - self.items.shape[1]), PAD, dtype=self.items.dtype)
        return torch.cat([pad, self.items], dim=1)

    def last_items(self) -> Tensor:
        """The most recent item of each history, PAD for an empty one: (N,)."""
        return self.tail(1)[:, 0]

    def seen_mask(self, n_items: int) -> Tensor:
        """bool (N, V): item j occurs in history i."""
        idx = torch.where(self.items >= 0, self.items, torch.full_like(self.items, n_items))
        mask = torch.zeros(len(self), n_items + 1, dtype=torch.bool)
        mask.scatter_(1, idx, True)
        return mask[:, :n_items]


# =============================================================================================
# Models
# =============================================================================================


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
    seed: int = 0
    source: str = "interactions"
    out_dir: str = "runs/recommendation"
    exclude_seen: bool = True


class Recommender:
    """Base class: ``fit(data)`` then ``scores(histories) → (N, V)`` (higher = more likely next)."""

    name = "base"

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

    def fit(self, data: TrainData) -> PopularityRecommender:
        """Count the training interactions of each item."""
        self.n_items = data.n_items
        self.counts = torch.as_tensor(
            np.bincount(data.train.values, minlength=data.n_items), dtype=torch.float64
        )
        return self

    def scores(self, histories: Histories) -> Tensor:
        """The item counts, the same row for every history."""
        return self.counts.expand(len(histories), -1).clone()


class MarkovRecommender(Recommender):
    """First-order Markov chain over items: P(j | i) = (C[i, j] + α·pop(j)) / (n_i + α).

    C counts the consecutive pairs (i, j) in the training prefixes, n_i = Σ_j C[i, j], pop the
    training item frequencies; an unseen last item (n_i = 0) or an empty history gives pop. The
    counts are a sparse matrix, so V may be large.
    """

    name = "markov"

    def __init__(self, *, alpha: float = 1.0) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.alpha = float(alpha)

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
        return self

    def scores(self, histories: Histories) -> Tensor:
        """P(j | last item) as float64; popularity for an empty history or an unseen last item."""
        last = histories.last_items().numpy()
        has = last >= 0
        rows = np.where(has, last, 0)
        counts = self.counts[rows].toarray()
        probs = (counts + self.alpha * self.pop) / (self.row_sums[rows] + self.alpha)[:, None]
        probs[~has] = self.pop
        return torch.as_tensor(probs)


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


@dataclass(frozen=True, kw_only=True)
class GRUSettings:
    """The behaviour-cloning GRU: sizes, Adam learning rate, batch, epochs and early-stopping patience
    (epochs without a better validation NDCG@10; 0 = run all epochs, keep the best)."""

    embed_dim: int = 64
    hidden_dim: int = 64
    lr: float = 2e-3
    batch_size: int = 256
    epochs: int = 10
    patience: int = 3
    grad_clip: float = 5.0


@dataclass(frozen=True, kw_only=True)
class GANSettings:
    """EB-SeqGAN fine-tuning from the MLE GRU (names as in :class:`~gan_equiv.train.config.TrainConfig`).

    ``overrides`` are extra TrainConfig keys as (dotted key, value) pairs, applied last.
    ``eval_every`` rounds between validation records (log only: the final model is reported).
    """

    energy: Literal["cnn", "autoencoder"] = "cnn"
    energy_embed_dim: int = 32
    filter_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 8, 10)
    num_filters: tuple[int, ...] = (32, 32, 32, 32, 32, 32, 32)
    dropout: float = 0.25
    code_dim: int = 32
    d_pretrain_steps: int = 50
    rounds: int = 50
    g_steps: int = 1
    d_steps: int = 3
    n_rollouts: int = 8
    batch_size: int = 64
    entropy_weight: float = 1.0
    margin: float = 10.0
    g_lr: float = 1e-4
    d_lr: float = 1e-3
    reward_to_go: bool = True
    baseline: bool = True
    eval_every: int = 5
    overrides: tuple[tuple[str, Any], ...] = ()


def _trainer_config(
    data: TrainData, name: str, gru: GRUSettings, gan: GANSettings, **phases: Any
) -> TrainConfig:
    T = data.horizon
    sizes = tuple(w for w in gan.filter_sizes if w <= T) or (min(T, 2),)
    counts = tuple(n for w, n in zip(gan.filter_sizes, gan.num_filters, strict=True) if w <= T) or (
        gan.num_filters[0],
    )
    config = TrainConfig(
        name=name,
        data="file",
        data_path=data.source or "interactions",
        n_items=data.n_items,
        horizon=T,
        batch_size=phases.pop("batch_size"),
        seed=data.seed,
        device="cpu",
        generator=GeneratorConfig(kind="rnn", cell="gru", embed_dim=gru.embed_dim, hidden_dim=gru.hidden_dim),
        energy=EnergyConfig(
            kind=gan.energy,
            embed_dim=gan.energy_embed_dim,
            filter_sizes=sizes,
            num_filters=counts,
            dropout=gan.dropout,
            code_dim=gan.code_dim,
        ),
        g_optim=OptimConfig(lr=phases.pop("g_lr"), grad_clip=gru.grad_clip),
        d_optim=OptimConfig(lr=gan.d_lr, grad_clip=0.0),
        log_every=1,
        eval_every=0,
        checkpoint_every=0,
        progress=False,
        out_dir=str(Path(data.out_dir) / name),
        **phases,
    )
    return apply_overrides(config, dict(gan.overrides)) if gan.overrides else config


def _validation_ndcg(model: Recommender, data: TrainData) -> float:
    m = next_item_metrics(
        model, data.valid_history, data.valid_target, ks=(10,), exclude_seen=data.exclude_seen
    )
    return m["NDCG@10"]


class GRURecommender(Recommender):
    """Behaviour cloning: GRUPolicy fitted by maximum likelihood on the training windows.

    Runs the Trainer's MLE phase one epoch at a time, records validation NDCG@10 after each epoch,
    stops after ``patience`` epochs without improvement, and keeps the best epoch's weights.
    """

    name = "mle"

    def __init__(self, settings: GRUSettings | None = None, gan: GANSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or GRUSettings()
        self._gan = gan or GANSettings()
        self.policy: SequencePolicy | None = None

    def fit(self, data: TrainData) -> GRURecommender:
        """MLE epochs on ``data.windows``; keeps the epoch with the best validation NDCG@10."""
        s = self.settings
        self.n_items = data.n_items
        if data.windows.shape[0] == 0:
            raise ValueError(
                f"no training window of length T={data.horizon}: every training prefix is shorter; "
                "lower the horizon"
            )
        config = _trainer_config(
            data,
            "mle",
            s,
            self._gan,
            batch_size=s.batch_size,
            g_lr=s.lr,
            pretrain_g_epochs=s.epochs,
            pretrain_d_steps=0,
            adversarial_rounds=0,
        )
        trainer = Trainer(config, torch.as_tensor(data.windows))
        self.policy = trainer.policy
        best, best_state, stale, epoch_times = -1.0, None, 0, []
        for epoch in range(1, s.epochs + 1):
            start = time.perf_counter()
            rows = trainer.fit(stop_after=1)
            epoch_times.append(time.perf_counter() - start)
            ndcg = _validation_ndcg(self, data)
            nll = rows[-1]["mle_nll_per_token"] if rows else float("nan")
            self.log.append(
                {"epoch": epoch, "train_nll": nll, "valid_NDCG@10": ndcg, "epoch_s": epoch_times[-1]}
            )
            if ndcg > best:
                best, best_state, stale = ndcg, copy.deepcopy(trainer.policy.state_dict()), 0
            else:
                stale += 1
                if s.patience and stale >= s.patience:
                    break
        if best_state is not None:
            trainer.policy.load_state_dict(best_state)
        self.timings = {
            "epoch_s": float(np.mean(epoch_times)),
            "epochs": len(epoch_times),
            "best_valid_NDCG@10": best,
        }
        return self

    def scores(self, histories: Histories) -> Tensor:
        """log p_G(· | last T−1 items) (:func:`policy_scores`)."""
        if self.policy is None:
            raise RuntimeError("fit the model before scoring")
        return policy_scores(self.policy, histories)


class EBSeqGANRecommender(GRURecommender):
    """EB-SeqGAN started from a fitted :class:`GRURecommender` (a copy of its policy).

    ``d_pretrain_steps`` energy updates with loss (3), then ``rounds`` adversarial rounds
    (``g_steps`` policy-gradient steps of eq. 14 with K rollouts, ``d_steps`` energy steps); the
    validation NDCG@10 is recorded every ``eval_every`` rounds; the final model is kept.
    """

    name = "ebseqgan"

    def __init__(self, init: GRURecommender, settings: GANSettings | None = None) -> None:
        super().__init__(init.settings, settings)
        if init.policy is None:
            raise ValueError("the initial GRU must be fitted first")
        self.init = init

    def fit(self, data: TrainData) -> EBSeqGANRecommender:
        """Energy pretraining, then adversarial rounds, from a copy of the initial GRU."""
        g = self._gan
        self.n_items = data.n_items
        config = _trainer_config(
            data,
            "ebseqgan",
            self.settings,
            g,
            batch_size=g.batch_size,
            g_lr=g.g_lr,
            pretrain_g_epochs=0,
            pretrain_d_steps=g.d_pretrain_steps,
            adversarial_rounds=g.rounds,
            g_steps=g.g_steps,
            d_steps=g.d_steps,
            n_rollouts=g.n_rollouts,
            entropy_weight=g.entropy_weight,
            margin=g.margin,
            reward_to_go=g.reward_to_go,
            baseline=g.baseline,
        )
        trainer = Trainer(config, torch.as_tensor(data.windows), policy=copy.deepcopy(self.init.policy))
        self.policy = trainer.policy
        self.energy = trainer.energy
        start = time.perf_counter()
        if config.pretrain_d_steps:
            trainer.fit(stop_after=config.pretrain_d_steps)
        d_time = time.perf_counter() - start
        self.log.append({"round": 0, "valid_NDCG@10": _validation_ndcg(self, data)})
        done, round_time = 0, 0.0
        while done < config.adversarial_rounds:
            n = min(g.eval_every or config.adversarial_rounds, config.adversarial_rounds - done)
            start = time.perf_counter()
            rows = trainer.fit(stop_after=n)
            round_time += time.perf_counter() - start
            done += n
            last = rows[-1] if rows else {}
            entry = {"round": done, "valid_NDCG@10": _validation_ndcg(self, data)}
            entry.update(
                {k: float(last[k]) for k in ("d_loss", "energy_real", "energy_fake", "q_mean") if k in last}
            )
            self.log.append(entry)
        self.timings = {
            "d_pretrain_s": d_time,
            "round_s": round_time / max(done, 1),
            "rounds": done,
        }
        return self


def build_model(name: str, *, settings: ProtocolSettings, mle: GRURecommender | None = None) -> Recommender:
    """A fresh model by name (``ebseqgan`` needs the fitted ``mle`` model)."""
    if name == "pop":
        return PopularityRecommender()
    if name == "markov":
        return MarkovRecommender(alpha=settings.markov_alpha)
    if name == "mle":
        return GRURecommender(settings.gru, settings.gan)
    if name == "ebseqgan":
        if mle is None:
            raise ValueError("ebseqgan starts from the fitted mle model")
        return EBSeqGANRecommender(mle, settings.gan)
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


# =============================================================================================
# Metrics
# =============================================================================================


def _masked(scores: Tensor, seen: Tensor | None) -> Tensor:
    if seen is None:
        return scores
    return scores.masked_fill(seen, float("-inf"))


def next_item_metrics(
    model: Recommender,
    histories: Histories,
    targets: Tensor,
    *,
    ks: Sequence[int] = (10, 20),
    exclude_seen: bool = True,
    batch_size: int = 1024,
) -> dict[str, float]:
    """HR@k, NDCG@k, MRR@k of the target item in the model's full ranking over all V items.

    With ``exclude_seen`` the items of each history are ranked last (score −inf). Ties count by
    their expectation over random tie-breaking (:func:`gan_equiv.recsys.ranking.ranking_metrics`).
    Computed in chunks of ``batch_size`` users; means over all users.
    """
    targets = torch.as_tensor(targets).long()
    if targets.shape != (len(histories),):
        raise ValueError(f"targets must have shape ({len(histories)},), got {tuple(targets.shape)}")
    totals: dict[str, float] = {}
    for start in range(0, len(histories), batch_size):
        h = histories.slice(start, start + batch_size)
        seen = h.seen_mask(model.n_items) if exclude_seen else None
        m = ranking_metrics(_masked(model.scores(h), seen), targets[start : start + batch_size], ks)
        for key, value in m.items():
            totals[key] = totals.get(key, 0.0) + value * len(h)
    return {k: v / len(histories) for k, v in totals.items()}


def list_recall(generated: Any, truth: Any) -> float:
    """Mean over users of |set(generated_u) ∩ set(truth_u)| / |set(truth_u)| (order ignored)."""
    g = torch.as_tensor(generated).long()
    y = torch.as_tensor(truth).long()
    if g.ndim != 2 or y.ndim != 2 or g.shape[0] != y.shape[0] or y.shape[1] == 0:
        raise ValueError(
            f"generated and truth must be (N, n) arrays of one N, got {tuple(g.shape)}, {tuple(y.shape)}"
        )
    same = y[:, :, None] == y[:, None, :]  # (N, n, n)
    first = ~torch.tril(same, diagonal=-1).any(dim=2)  # first occurrence of each distinct truth item
    found = (y[:, :, None] == g[:, None, :]).any(dim=2)  # truth item appears in the generated list
    return float(((found & first).sum(dim=1).double() / first.sum(dim=1).double()).mean())


def distinct_items(generated: Any) -> int:
    """Number of distinct items over all generated lists."""
    return int(torch.unique(torch.as_tensor(generated)).numel())


def catalogue_coverage(generated: Any, n_items: int) -> float:
    """Share of the catalogue that appears in at least one generated list: distinct items / V."""
    return distinct_items(generated) / n_items


@dataclass(frozen=True)
class MultiStepResult:
    """Multi-step (cascading-error) metrics of one model.

    Attributes:
        k: the cut-off of the per-position hits.
        recall: {n: mean list recall of the first n generated items vs the true next n}.
        hit_model: per-position HR@k (positions 1 … n_max) when the prefix is the model's own output.
        hit_data: the same with the true items as prefix (teacher forcing; position 1 = next-item HR@k).
        coverage: {n: catalogue coverage of the first n generated items}.
        distinct: {n: distinct items among the first n generated items of all users}.
        generated: int64 (N, n_max) the generated lists.
    """

    k: int
    recall: dict[int, float]
    hit_model: np.ndarray
    hit_data: np.ndarray
    coverage: dict[int, float]
    distinct: dict[int, int]
    generated: np.ndarray = field(repr=False)

    def row(self) -> dict[str, float | int]:
        """Flat metrics: recall_n{n}, hit{k}_model_n{n}, hit{k}_data_n{n} (means over positions 1…n),
        coverage_n{n}, distinct_n{n}."""
        out: dict[str, float | int] = {}
        for n in sorted(self.recall):
            out[f"recall_n{n}"] = self.recall[n]
            out[f"hit{self.k}_model_n{n}"] = float(self.hit_model[:n].mean())
            out[f"hit{self.k}_data_n{n}"] = float(self.hit_data[:n].mean())
            out[f"coverage_n{n}"] = self.coverage[n]
            out[f"distinct_n{n}"] = self.distinct[n]
        return out


@torch.no_grad()
def _roll(
    model: Recommender, histories: Histories, targets: Tensor, k: int, *, feed_truth: bool, exclude_seen: bool
) -> tuple[Tensor, np.ndarray]:
    """Greedy continuation for n steps; returns (generated (N, n), per-position HR@k sums (n,))."""
    n = targets.shape[1]
    seen = histories.seen_mask(model.n_items) if exclude_seen else None
    generated = torch.empty(len(histories), n, dtype=torch.long)
    hits = np.zeros(n)
    rows = torch.arange(len(histories))
    for j in range(n):  # n steps, vectorized over users
        scores = _masked(model.scores(histories), seen)
        hits[j] = ranking_metrics(scores, targets[:, j], (k,))[f"HR@{k}"] * len(histories)
        generated[:, j] = scores.argmax(dim=1)  # greedy; ties → lowest item id
        fed = targets[:, j] if feed_truth else generated[:, j]
        histories = histories.append(fed)
        if seen is not None:
            seen[rows, fed] = True
    return generated, hits


def multi_step_metrics(
    model: Recommender,
    histories: Histories,
    future: Any,
    *,
    steps: Sequence[int] = (5, 10),
    k: int = 10,
    exclude_seen: bool = True,
    batch_size: int = 1024,
) -> MultiStepResult:
    """Generate n_max = max(steps) items per user greedily (argmax, ties → lowest id), each step
    feeding on the model's own previous outputs, and score against the true next items ``future``
    (N, ≥ n_max).

    Per position j the target y_j is ranked (full ranking, expected ties) under the model-fed prefix
    history + g_1 … g_{j−1} and the data-fed prefix history + y_1 … y_{j−1}; with ``exclude_seen``
    the history and the fed items are masked in both. Greedy lists are nested, so the first n
    generated items are the n-step list for every n in ``steps``.
    """
    y = torch.as_tensor(future).long()
    n_max = max(steps)
    if y.ndim != 2 or y.shape[0] != len(histories) or y.shape[1] < n_max:
        raise ValueError(f"future must be (N={len(histories)}, >= {n_max}), got {tuple(y.shape)}")
    y = y[:, :n_max]
    gens, hit_m, hit_d = [], np.zeros(n_max), np.zeros(n_max)
    for start in range(0, len(histories), batch_size):
        h, t = histories.slice(start, start + batch_size), y[start : start + batch_size]
        g, hm = _roll(model, h, t, k, feed_truth=False, exclude_seen=exclude_seen)
        _, hd = _roll(model, h, t, k, feed_truth=True, exclude_seen=exclude_seen)
        gens.append(g)
        hit_m += hm
        hit_d += hd
    generated = torch.cat(gens)
    N = len(histories)
    return MultiStepResult(
        k=k,
        recall={n: list_recall(generated[:, :n], y[:, :n]) for n in steps},
        hit_model=hit_m / N,
        hit_data=hit_d / N,
        coverage={n: catalogue_coverage(generated[:, :n], model.n_items) for n in steps},
        distinct={n: distinct_items(generated[:, :n]) for n in steps},
        generated=generated.numpy(),
    )


# =============================================================================================
# Protocol
# =============================================================================================


@dataclass(frozen=True, kw_only=True)
class ProtocolSettings:
    """One evaluation run: which models and protocols, the horizon T, windows, metrics, seed.

    ``protocols``: ``next`` (leave-one-out next-item ranking) and/or ``multistep`` (hold out the last
    max(steps) items, validation = the item before them). ``exclude_seen``: mask history items.
    """

    models: tuple[str, ...] = MODELS
    protocols: tuple[str, ...] = PROTOCOLS
    horizon: int = 10
    stride: int = 1
    ks: tuple[int, ...] = (10, 20)
    steps: tuple[int, ...] = (5, 10)
    hit_k: int = 10
    exclude_seen: bool = True
    markov_alpha: float = 1.0
    seed: int = 0
    batch_size: int = 1024
    out_dir: str = "runs/recommendation"
    gru: GRUSettings = field(default_factory=GRUSettings)
    gan: GANSettings = field(default_factory=GANSettings)

    def __post_init__(self) -> None:
        for name in self.models:
            if name not in MODELS:
                raise ValueError(f"unknown model {name!r}; choose from {MODELS}")
        for name in self.protocols:
            if name not in PROTOCOLS:
                raise ValueError(f"unknown protocol {name!r}; choose from {PROTOCOLS}")
        if self.horizon < 2:
            raise ValueError(f"horizon T must be at least 2 (the GRU reads T−1 items), got {self.horizon}")
        if not self.steps or min(self.steps) < 1 or not self.ks or min(self.ks) < 1 or self.hit_k < 1:
            raise ValueError("steps, ks and hit_k must be positive")


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


@dataclass
class EvaluationReport:
    """Results of :func:`run_protocols`: one row per model (metrics of both protocols), the
    per-position hit curves and training logs, the data and split summaries, the settings, timings."""

    rows: list[dict[str, Any]]
    curves: dict[str, dict[str, Any]]
    data: dict[str, Any]
    settings: dict[str, Any]
    timings: dict[str, Any]

    def columns(self) -> list[str]:
        """All metric columns, in first-seen order."""
        cols: list[str] = []
        for row in self.rows:
            cols += [c for c in row if c not in cols]
        return cols

    def table(self, columns: Sequence[str] | None = None, *, markdown: bool = False) -> str:
        """A fixed-width (or Markdown) table: one line per model."""
        cols = list(columns) if columns else self.columns()
        cells = [[_fmt(row.get(c, "")) for c in cols] for row in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
        if markdown:
            lines = [
                "| " + " | ".join(cols) + " |",
                "|" + "|".join("---:" if i else "---" for i in range(len(cols))) + "|",
            ]
            lines += ["| " + " | ".join(r) + " |" for r in cells]
            return "\n".join(lines)
        lines = [
            "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths, strict=True))
            )
        ]
        lines.append("-" * len(lines[0]))
        lines += [
            "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
            for r in cells
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of everything."""
        return _plain(asdict(self))

    def write(self, path: str | Path) -> Path:
        """Write the rows as CSV (``.csv``) or everything as JSON (``.json``)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ".csv":
            with p.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.columns(), restval="")
                writer.writeheader()
                writer.writerows(self.rows)
        elif p.suffix == ".json":
            p.write_text(json.dumps(self.to_dict(), indent=2))
        else:
            raise ValueError(f"output {str(p)!r} must end in .csv or .json")
        return p


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


def _train_data(split, settings: ProtocolSettings, seqs: UserSequences, protocol: str) -> TrainData:
    windows = training_windows(split.train, horizon=settings.horizon, stride=settings.stride)
    return TrainData(
        train=split.train,
        windows=windows.items,
        valid_history=Histories.from_ragged(split.train),
        valid_target=torch.as_tensor(split.valid.values[split.valid.offsets[:-1]]),
        n_items=seqs.n_items,
        horizon=settings.horizon,
        seed=settings.seed,
        source=seqs.source,
        out_dir=str(Path(settings.out_dir) / protocol),
        exclude_seen=settings.exclude_seen,
    ), windows


def run_protocols(
    seqs: UserSequences, settings: ProtocolSettings, *, echo: Callable[[str], None] | None = print
) -> EvaluationReport:
    """Fit every requested model on each protocol's split (same split, same seed) and evaluate.

    ``next``: leave-one-out; models fit on train, validation item for selection, test item ranked
    with history = train + validation. ``multistep``: the last n_max = max(steps) items of each user
    are the future, the item before them is validation, the rest train; models are refit on that
    train part and generate n_max items from history = train + validation. ``ebseqgan`` always
    starts from the ``mle`` model of the same protocol (fitted even if ``mle`` is not reported).
    """
    say = echo or (lambda _: None)
    start_all = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {m: {"model": m} for m in settings.models}
    curves: dict[str, dict[str, Any]] = {m: {} for m in settings.models}
    timings: dict[str, Any] = {}
    data_info: dict[str, Any] = {"summary": asdict(summarize(seqs)), "source": seqs.source}
    fit_order = [m for m in MODELS if m in settings.models or (m == "mle" and "ebseqgan" in settings.models)]
    for protocol in settings.protocols:
        n_test = 1 if protocol == "next" else max(settings.steps)
        split = split_tail(seqs, n_valid=1, n_test=n_test)
        if split.train.n_rows == 0:
            raise ValueError(f"protocol {protocol!r}: no user has at least {n_test + 2} interactions")
        data, windows = _train_data(split, settings, seqs, protocol)
        test_history = Histories.from_ragged(split.history("test"))
        data_info[protocol] = {
            "users": split.train.n_rows,
            "dropped_users": split.n_dropped,
            "train_interactions": int(split.train.values.size),
            "windows": int(windows.items.shape[0]),
            "users_without_window": windows.n_short_rows,
        }
        say(
            f"[{protocol}] {split.train.n_rows} users ({split.n_dropped} dropped), "
            f"{split.train.values.size} train interactions, "
            f"{windows.items.shape[0]} windows of T={settings.horizon} "
            f"({windows.n_short_rows} users too short for a window)"
        )
        fitted: dict[str, Recommender] = {}
        for name in fit_order:
            torch.manual_seed(settings.seed)
            t0 = time.perf_counter()
            model = build_model(name, settings=settings, mle=fitted.get("mle"))  # type: ignore[arg-type]
            model.fit(data)
            fit_s = time.perf_counter() - t0
            fitted[name] = model
            timings[f"{protocol}/{name}"] = {"fit_s": fit_s, **model.timings, "max_rss_mib": _max_rss_mib()}
            if name not in settings.models:
                continue
            t0 = time.perf_counter()
            row = rows[name]
            if protocol == "next":
                valid = next_item_metrics(
                    model,
                    data.valid_history,
                    data.valid_target,
                    ks=settings.ks,
                    exclude_seen=settings.exclude_seen,
                )
                test = next_item_metrics(
                    model,
                    test_history,
                    torch.as_tensor(split.test.values),
                    ks=settings.ks,
                    exclude_seen=settings.exclude_seen,
                    batch_size=settings.batch_size,
                )
                row.update(test)
                row["valid_NDCG@10"] = valid.get("NDCG@10", float("nan"))
            else:
                future = split.test.values.reshape(-1, n_test)
                ms = multi_step_metrics(
                    model,
                    test_history,
                    future,
                    steps=settings.steps,
                    k=settings.hit_k,
                    exclude_seen=settings.exclude_seen,
                    batch_size=settings.batch_size,
                )
                row.update(ms.row())
                curves[name]["hit_model"] = ms.hit_model.tolist()
                curves[name]["hit_data"] = ms.hit_data.tolist()
            if model.log:
                curves[name][f"{protocol}_training"] = model.log
            row[f"fit_s_{protocol}"] = fit_s
            timings[f"{protocol}/{name}"]["eval_s"] = time.perf_counter() - t0
            say(f"[{protocol}] {name}: fit {fit_s:.1f} s; " + _short(row, protocol))
    timings["wall_s"] = time.perf_counter() - start_all
    timings["max_rss_mib"] = _max_rss_mib()
    return EvaluationReport(
        rows=[rows[m] for m in settings.models],
        curves=curves,
        data=data_info,
        settings=_plain(asdict(settings)),
        timings=timings,
    )


def _short(row: dict[str, Any], protocol: str) -> str:
    keys = (
        ("HR@10", "NDCG@10", "MRR@10")
        if protocol == "next"
        else ("recall_n10", "hit10_model_n10", "hit10_data_n10")
    )
    return ", ".join(f"{k}={row[k]:.4f}" for k in keys if k in row)
