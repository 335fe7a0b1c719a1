"""One schema for a recommendation evaluation: the protocol's own fields beside two TrainConfigs.

:class:`EvaluationConfig` holds

- ``source`` — the interaction file and how to read it (:class:`~gan_equiv.recsys.readers.LogSource`);
- ``protocol`` — what only the protocol knows (:class:`ProtocolConfig`: filters, horizon and
  windows, cut-offs, which models and protocols, masking, early stopping, seed);
- ``mle`` — the behaviour-cloning GRU run, a :class:`~gan_equiv.train.config.TrainConfig` whose
  MLE phase is the whole run (``pretrain_g_epochs`` = the epochs; batch and ``g_optim`` its own);
- ``gan`` — the EB-SeqGAN run started from that GRU, a TrainConfig whose energy pretraining
  (``pretrain_d_steps``, loss (3)) and adversarial rounds (eq. 14) are the run.

The generator and GAN settings *are* TrainConfig fields under their own names. The fields a split
determines (``n_items``, ``horizon``, ``seed``, ``out_dir``) are set when a model is fitted
(:func:`gan_equiv.recsys.recommenders.config_for_split`). Presets are the defaults plus what
differs (:func:`updated`, :func:`movielens_reduced`, :func:`smoke_preset`).
:data:`OPTIONS` is the one table of the ``evaluate`` command's options: flag, dotted key(s) and
help; types, choices and defaults come from the dataclass fields.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from gan_equiv.checks import choice, finite_float, non_negative_int, positive_float, positive_int
from gan_equiv.recsys.readers import LogSource
from gan_equiv.train.config import EnergyConfig, GeneratorConfig, OptimConfig, TrainConfig

ModelName = Literal["pop", "markov", "mle", "sasrec", "ebseqgan", "ebseqgan_sasrec", "seqgan", "gan_gcl"]
ProtocolName = Literal["next", "multistep"]
MODELS: tuple[str, ...] = typing.get_args(ModelName)
PROTOCOLS: tuple[str, ...] = typing.get_args(ProtocolName)
ExcludeSeen = Literal["auto", "yes", "no"]
Examples = Literal["windows", "prefixes"]
SelectMetric = Literal["HR@10", "NDCG@10", "MRR@10"]
PresetName = Literal["5core", "recbole"]
PRESETS: tuple[str, ...] = typing.get_args(PresetName)


@dataclass(frozen=True, kw_only=True)
class SASRecSettings:
    """The SASRec generator (:class:`~gan_equiv.models.sasrec.SASRecPolicy`); RecBole's defaults."""

    embed_dim: int = 64
    n_layers: int = 2
    n_heads: int = 2
    inner_dim: int = 256
    dropout: float = 0.5

    def __post_init__(self) -> None:
        for name in ("embed_dim", "n_layers", "n_heads", "inner_dim"):
            positive_int(getattr(self, name), name)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"sasrec dropout={self.dropout} must lie in [0, 1); use e.g. 0.5")

    def kwargs(self) -> dict[str, Any]:
        """Constructor keywords of SASRecPolicy."""
        return dataclasses.asdict(self)

    def generator(self, base: GeneratorConfig) -> GeneratorConfig:
        """``base`` as a ``[generator]`` table of kind ``sasrec`` with these sizes (what the Trainer
        and a checkpoint's config see; :func:`gan_equiv.models.builders.build_generator` builds it)."""
        return replace(base, kind="sasrec", **self.kwargs())


@dataclass(frozen=True, kw_only=True)
class ProtocolConfig:
    """The protocol's own settings (everything that is not a TrainConfig field).

    Attributes:
        models: any of ``pop``, ``markov``, ``mle`` (GRU), ``sasrec``, ``ebseqgan`` (from the GRU),
            ``ebseqgan_sasrec`` (from SASRec), ``seqgan`` and ``gan_gcl`` (the same loop from the MLE
            GRU with SeqGAN's / GAN-GCL's objective); default the first three and ``ebseqgan``.
        protocols: ``next`` (leave-one-out next-item ranking) and/or ``multistep`` (hold out the
            last max(steps) items; validation = the item before them).
        min_rating: keep ratings ≥ this before filtering (None: keep all).
        k_core: minimum interactions per user and per item (repeated until stable).
        horizon: window length T (the generators read the last T−1 items: the context).
        stride: start a training window every ``stride`` items.
        examples: MLE training data: ``windows`` (length-T windows, no padding) or ``prefixes``
            (one example per target position with its last ≤ T−1 items, RecBole's augmentation).
        select_metric: validation metric of early stopping (also recorded per EB-SeqGAN round).
        sasrec: the SASRec generator's sizes.
        ks: cut-offs of HR/NDCG/MRR@k; ``steps``: multi-step list lengths n; ``hit_k``: k of the
            per-position hit@k.
        exclude_seen: mask history items in rankings; ``auto`` = yes iff no (user, item) pair repeats.
        markov_alpha: additive smoothing α of the Markov chain.
        patience: MLE epochs without a better validation NDCG@10 before stopping (0 = run all).
        seed: one seed for every model and split.
        eval_batch_size: users scored at a time.
        out_dir: trainer logs and checkpoints.
    """

    models: tuple[ModelName, ...] = ("pop", "markov", "mle", "ebseqgan")
    protocols: tuple[ProtocolName, ...] = PROTOCOLS  # type: ignore[assignment]
    min_rating: float | None = None
    k_core: int = 5
    horizon: int = 10
    stride: int = 1
    examples: Examples = "windows"
    select_metric: SelectMetric = "NDCG@10"
    sasrec: SASRecSettings = field(default_factory=SASRecSettings)
    ks: tuple[int, ...] = (10, 20)
    steps: tuple[int, ...] = (5, 10)
    hit_k: int = 10
    exclude_seen: ExcludeSeen = "auto"
    markov_alpha: float = 1.0
    patience: int = 3
    seed: int = 0
    eval_batch_size: int = 1024
    out_dir: str = "runs/recommendation"

    def __post_init__(self) -> None:
        for name in ("models", "protocols", "ks", "steps"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in self.models:
            choice(name, "model", MODELS)
        for name in self.protocols:
            choice(name, "protocol", PROTOCOLS)
        if not self.models or not self.protocols:
            raise ValueError("models and protocols must each name at least one entry (--models, --protocols)")
        horizon = positive_int(self.horizon, "horizon (--horizon)", hint="use T >= 2, e.g. 10 (recbole: 51)")
        if horizon < 2:
            raise ValueError(
                f"horizon T must be at least 2 (the GRU reads T−1 items), got {self.horizon}; use e.g. 10"
            )
        if not self.ks or not self.steps:
            raise ValueError(
                f"ks and steps must not be empty, got ks={self.ks}, steps={self.steps}; "
                "give e.g. --ks 10 20 --steps 5 10"
            )
        ks = tuple(
            positive_int(k, "ks entry (--ks)", hint="give cut-offs such as --ks 10 20") for k in self.ks
        )
        object.__setattr__(self, "ks", ks)
        steps = {
            positive_int(n, "steps entry (--steps)", hint="give list lengths such as --steps 5 10")
            for n in self.steps
        }
        object.__setattr__(self, "steps", tuple(sorted(steps)))
        for name in ("stride", "hit_k", "eval_batch_size"):
            positive_int(getattr(self, name), name, hint=f"use a positive --{name.replace('_', '-')}")
        for name in ("k_core", "patience", "seed"):
            non_negative_int(getattr(self, name), name, hint=f"use 0 or more for --{name.replace('_', '-')}")
        positive_float(self.markov_alpha, "markov_alpha", hint="additive smoothing needs α > 0, e.g. 1")
        choice(self.exclude_seen, "exclude_seen", typing.get_args(ExcludeSeen))
        choice(self.examples, "examples", typing.get_args(Examples))
        choice(self.select_metric, "select_metric", typing.get_args(SelectMetric))
        if self.min_rating is not None:
            finite_float(self.min_rating, "min_rating", hint="or None to keep every rating")

    def resolve_exclude_seen(self, repeat_share: float) -> bool:
        """``exclude_seen`` as a bool; ``auto`` is true iff the log repeats no (user, item) pair."""
        return {"yes": True, "no": False}.get(self.exclude_seen, repeat_share == 0.0)


#: The MLE GRU (behaviour cloning): the Trainer's MLE phase only.
MLE_DEFAULTS = TrainConfig(
    name="mle",
    batch_size=256,
    device="cpu",
    pretrain_g_epochs=10,
    pretrain_d_steps=0,
    adversarial_rounds=0,
    generator=GeneratorConfig(kind="rnn", cell="gru", embed_dim=64, hidden_dim=64),
    g_optim=OptimConfig(lr=2e-3),
    log_every=1,
    eval_every=0,
    checkpoint_every=0,
    progress=False,
)

#: EB-SeqGAN from the MLE GRU: the MLE defaults plus what differs. ``eval_every`` = rounds
#: between validation records.
GAN_DEFAULTS = replace(
    MLE_DEFAULTS,
    name="ebseqgan",
    batch_size=64,
    pretrain_g_epochs=0,
    pretrain_d_steps=50,
    adversarial_rounds=50,
    d_steps=3,
    n_rollouts=8,
    reward_to_go=True,
    baseline=True,
    eval_every=5,
    energy=EnergyConfig(kind="cnn", embed_dim=32, filter_sizes=(1, 2, 3, 4, 5, 8, 10), num_filters=(32,) * 7),
    g_optim=replace(MLE_DEFAULTS.g_optim, lr=1e-4),
    d_optim=replace(MLE_DEFAULTS.d_optim, lr=1e-3),
)


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """Everything one evaluation needs: the data source, the protocol, the MLE and GAN runs.

    The GAN continues the MLE policy, so both runs must have the same ``generator`` table.
    """

    source: LogSource = field(default_factory=LogSource)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    mle: TrainConfig = MLE_DEFAULTS
    gan: TrainConfig = GAN_DEFAULTS

    def __post_init__(self) -> None:
        if self.mle.generator != self.gan.generator:
            raise ValueError(
                f"mle.generator {self.mle.generator} and gan.generator {self.gan.generator} differ, but "
                "EB-SeqGAN starts from the MLE policy; give both runs one generator table "
                "(--embed-dim/--hidden-dim set both)"
            )


DEFAULTS = EvaluationConfig()


def updated(config: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of the dataclass ``config`` with dotted keys replaced (``{"mle.generator.embed_dim": 8}``).

    Every nested dataclass is rebuilt once with all of its changes, so its checks see them together.
    """
    return _updated(config, changes, "")


def _updated(config: Any, changes: Mapping[str, Any], where: str) -> Any:
    names = [f.name for f in dataclasses.fields(config)]
    nested: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise ValueError(f"unknown key {where + key!r}: {type(config).__name__} has {', '.join(names)}")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            nested[head] = value
    for head, value in nested.items():
        if isinstance(value, dict):
            nested[head] = _updated(getattr(config, head), value, f"{where}{head}.")
    return replace(config, **nested)


def movielens_reduced() -> EvaluationConfig:
    """The reduced ML-100K run of docs/recommendation.md (2 CPU cores, a few minutes)."""
    return updated(DEFAULTS, {"protocol.stride": 2, "protocol.patience": 2, "mle.pretrain_g_epochs": 8})


def recbole_preset() -> EvaluationConfig:
    """RecBole's sequential-recommendation defaults (docs/recommendation.md lists each choice).

    No k-core and no rating filter, no masking of seen items, context of 50 items (T = 51), one
    example per target position, leave-one-out next-item ranking only, early stopping on
    validation MRR@10 with patience 10 (at most 300 epochs), Adam lr 1e-3, batch 2048 rows,
    GRU4Rec's sizes (embedding 64, hidden 128) and SASRec's (64, 2 blocks, 2 heads, 256, 0.5).
    """
    generator = replace(DEFAULTS.mle.generator, embed_dim=64, hidden_dim=128)
    return updated(
        DEFAULTS,
        {
            "protocol.k_core": 0,
            "protocol.exclude_seen": "no",
            "protocol.horizon": 51,
            "protocol.examples": "prefixes",
            "protocol.protocols": ("next",),
            "protocol.select_metric": "MRR@10",
            "protocol.patience": 10,
            "protocol.ks": (10, 20),
            "mle.pretrain_g_epochs": 300,
            "mle.batch_size": 2048,
            "mle.g_optim.lr": 1e-3,
            "mle.generator": generator,
            "gan.generator": generator,
        },
    )


def preset(name: str) -> EvaluationConfig:
    """The named preset: ``5core`` (this project's defaults: 5-core, masking, windows) or ``recbole``."""
    return recbole_preset() if choice(name, "preset", PRESETS) == "recbole" else DEFAULTS


def smoke_preset() -> EvaluationConfig:
    """Tiny sizes for smoke runs on a synthetic log: T 5, GRU 16/16, 3 epochs, 3 rounds of K = 2."""
    generator = replace(DEFAULTS.mle.generator, embed_dim=16, hidden_dim=16)
    return updated(
        DEFAULTS,
        {
            "protocol.horizon": 5,
            "mle.pretrain_g_epochs": 3,
            "mle.batch_size": 64,
            "mle.generator": generator,
            "gan.generator": generator,
            "gan.pretrain_d_steps": 3,
            "gan.adversarial_rounds": 3,
            "gan.n_rollouts": 2,
            "gan.energy": replace(
                DEFAULTS.gan.energy, embed_dim=8, filter_sizes=(1, 2, 3), num_filters=(8,) * 3
            ),
        },
    )


@dataclass(frozen=True)
class Option:
    """One command-line option: ``flag`` sets every dotted key in ``keys`` (types and defaults
    from the first); ``group`` titles its section of ``--help``."""

    group: str
    flag: str
    keys: tuple[str, ...]
    help: str


def option_group(group: str, rows: list[tuple[str, str | tuple[str, ...], str]]) -> tuple[Option, ...]:
    """Options of one ``--help`` section from (flag, dotted key or keys, help) rows."""
    return tuple(
        Option(group, flag, (keys,) if isinstance(keys, str) else keys, text) for flag, keys, text in rows
    )


#: The ``evaluate`` options (dotted keys into :class:`EvaluationConfig`).
OPTIONS: tuple[Option, ...] = (
    option_group(
        "data",
        [
            ("--data", "source.path", "interaction file"),
            ("--format", "source.fmt", "file format"),
            ("--user-col", "source.user_col", "user field/column (recbole, csv)"),
            ("--item-col", "source.item_col", "item field/column (recbole, csv)"),
            ("--time-col", "source.time_col", "timestamp field/column (recbole, csv)"),
            ("--rating-col", "source.rating_col", "rating column (csv; recbole reads 'rating')"),
            ("--delimiter", "source.delimiter", "field separator (movielens: tab; csv: ',')"),
            ("--time-format", "source.time_format", "csv timestamps"),
            ("--min-rating", "protocol.min_rating", "keep ratings >= this (e.g. 4)"),
            ("--k-core", "protocol.k_core", "min interactions per user and item"),
        ],
    )
    + option_group(
        "protocol",
        [
            ("--models", "protocol.models", "models to fit and report"),
            ("--protocols", "protocol.protocols", "next-item and/or multi-step"),
            ("--horizon", "protocol.horizon", "window length T"),
            ("--stride", "protocol.stride", "window stride"),
            ("--examples", "protocol.examples", "MLE data: windows, or one example per target (prefixes)"),
            ("--select-metric", "protocol.select_metric", "validation metric of early stopping"),
            ("--ks", "protocol.ks", "cut-offs of HR/NDCG/MRR"),
            ("--steps", "protocol.steps", "multi-step list lengths n"),
            ("--hit-k", "protocol.hit_k", "k of the per-position hit@k"),
            ("--exclude-seen", "protocol.exclude_seen", "mask history items (auto: iff no pair repeats)"),
            ("--markov-alpha", "protocol.markov_alpha", "additive smoothing of the Markov chain"),
            ("--seed", "protocol.seed", "seed of every model and split"),
            ("--eval-batch-size", "protocol.eval_batch_size", "users scored at a time"),
            ("--run-dir", "protocol.out_dir", "trainer logs and checkpoints"),
        ],
    )
    + option_group(
        "MLE GRU (TrainConfig mle)",
        [
            ("--epochs", "mle.pretrain_g_epochs", "at most this many MLE epochs"),
            ("--patience", "protocol.patience", "epochs without a better validation metric (0 = all)"),
            ("--embed-dim", ("mle.generator.embed_dim", "gan.generator.embed_dim"), "GRU embedding size"),
            ("--hidden-dim", ("mle.generator.hidden_dim", "gan.generator.hidden_dim"), "GRU state size"),
            ("--lr", "mle.g_optim.lr", "Adam learning rate of the MLE GRU"),
            ("--batch-size", "mle.batch_size", "MLE batch size (rows)"),
        ],
    )
    + option_group(
        "SASRec",
        [
            ("--sasrec-dim", "protocol.sasrec.embed_dim", "SASRec width"),
            ("--sasrec-layers", "protocol.sasrec.n_layers", "SASRec Transformer blocks"),
            ("--sasrec-heads", "protocol.sasrec.n_heads", "SASRec attention heads"),
            ("--sasrec-inner", "protocol.sasrec.inner_dim", "SASRec feed-forward width"),
            ("--sasrec-dropout", "protocol.sasrec.dropout", "SASRec dropout"),
        ],
    )
    + option_group(
        "EB-SeqGAN (TrainConfig gan)",
        [
            ("--energy", "gan.energy.kind", "energy D"),
            ("--rounds", "gan.adversarial_rounds", "adversarial rounds (eq. 14 and loss (3))"),
            ("--d-pretrain", "gan.pretrain_d_steps", "energy pretraining steps, loss (3)"),
            ("--n-rollouts", "gan.n_rollouts", "K rollouts per prefix"),
            ("--entropy-weight", "gan.entropy_weight", "w of the entropy term"),
            ("--margin", "gan.margin", "EBGAN margin m of loss (3)"),
            ("--g-lr", "gan.g_optim.lr", "generator Adam learning rate"),
            ("--d-lr", "gan.d_optim.lr", "energy Adam learning rate"),
            ("--eval-every", "gan.eval_every", "rounds between validation records (0 = end only)"),
        ],
    )
)
