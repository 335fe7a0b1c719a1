"""Typed, validated configuration of the EB-SeqGAN trainer (paper Algorithm 1).

A run is described by one frozen :class:`TrainConfig` holding four nested tables
(:class:`GeneratorConfig`, :class:`EnergyConfig`, and an :class:`OptimConfig` each for G and D).
Configurations come from a TOML file (:func:`load_config`), from the presets
(:func:`seqgan_oracle_preset`, :func:`tiny_exact_preset`, the same values as ``configs/*.toml``)
and from command-line overrides (:func:`apply_overrides`, dotted keys such as
``--generator.hidden_dim 64``). :func:`config_to_dict` / :func:`config_from_dict` give a JSON-safe
dict (only str/int/float/bool/list/dict) — the form a checkpoint stores.

Every value is checked on construction; a bad one raises :class:`ConfigError` (a ``ValueError``)
naming the key, the value and the fix. Unknown keys are errors with a "did you mean" suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

Cell = Literal["gru", "lstm"]
GeneratorKind = Literal["rnn", "tabular"]
EnergyKind = Literal["cnn", "autoencoder", "linear", "tabular"]
FeatureState = Literal["history", "last", "time_last"]
DataKind = Literal["oracle", "markov", "gibbs", "file"]
DeviceName = Literal["auto", "cpu", "cuda"]
LogFormat = Literal["jsonl", "csv"]

#: SeqGAN's discriminator: filter widths and the number of filters of each width.
SEQGAN_FILTER_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
SEQGAN_NUM_FILTERS = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)


class ConfigError(ValueError):
    """A configuration value or key is invalid; ``key`` is its dotted name (None if not one key)."""

    def __init__(self, message: str, *, key: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.detail = detail  # message without the key, to re-render under a table prefix

    def under(self, table: str) -> ConfigError:
        """The same error with the key shown inside ``table`` (e.g. ``generator.cell``)."""
        if self.key is None or self.detail is None:
            return self
        return _invalid(f"{table}.{self.key}", self.detail)


def _invalid(key: str, detail: str) -> ConfigError:
    return ConfigError(f"invalid config value {key} {detail}", key=key, detail=detail)


def _bad(key: str, value: Any, problem: str, fix: str) -> ConfigError:
    return _invalid(key, f"= {value!r}: {problem}; {fix}")


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- generic typing and coercion -------------------------------------------------------------
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "a list of numbers"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the field type ``tp``; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = _suggest(value, choices) if isinstance(value, str) else ""
            raise _bad(key, value, f"must be {_describe(tp)}{hint}", "pick one of the listed values")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise _bad(key, value, "must be a list", "write it as [a, b, ...] in TOML or a,b,... on the CLI")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            elem_types = [args[0]] * len(value)
        else:
            if len(value) != len(args):
                raise _bad(key, value, f"must have {len(args)} entries", f"give exactly {len(args)} values")
            elem_types = list(args)
        return tuple(
            _coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, elem_types, strict=True))
        )
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return _build(tp, value, key)
        raise _bad(key, value, "must be a table", f"write it as a [{key}] table of keys")
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[tp]
    if not ok:
        raise _bad(key, value, f"must be {_describe(tp)}", f"write it as {_describe(tp)}")
    return float(value) if tp is float else value


def _build(cls: type, data: Mapping[str, Any], table: str | None) -> Any:
    """Construct dataclass ``cls`` from a mapping; unknown keys are errors naming the table."""
    names = [f.name for f in dataclasses.fields(cls)]
    where = f"table [{table}]" if table else "the top level of the config"
    for key in data:
        if key not in names:
            raise ConfigError(
                f"unknown config key {key!r} in {where}; valid keys: {', '.join(names)}"
                f"{_suggest(str(key), names)}",
                key=f"{table}.{key}" if table else str(key),
            )
    try:
        return cls(**dict(data))
    except ConfigError as err:
        raise (err.under(table) if table else err) from None


class _Checked:
    """Mixin: type-check and coerce every field, then run the class's range checks."""

    def __post_init__(self) -> None:
        for name, tp in _hints(type(self)).items():
            object.__setattr__(self, name, _coerce(getattr(self, name), tp, name))
        self._validate()

    def _validate(self) -> None:  # pragma: no cover - overridden
        pass


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (value > 0 and math.isfinite(value)):
            raise _bad(name, value, "must be positive", "use a value > 0")


def _non_negative(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (value >= 0 and math.isfinite(value)):
            raise _bad(name, value, "must be >= 0", "use 0 or more")


# --- the configuration tables ------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorConfig(_Checked):
    """The generator p_G: embedding + GRU/LSTM + softmax (``rnn``) or one logit row per prefix
    (``tabular``, tiny exact problems only; embed/hidden sizes are then unused)."""

    kind: GeneratorKind = "rnn"
    cell: Cell = "gru"
    embed_dim: int = 32
    hidden_dim: int = 32

    def _validate(self) -> None:
        _positive(self, "embed_dim", "hidden_dim")


@dataclass(frozen=True)
class EnergyConfig(_Checked):
    """The energy D (low = realistic). ``cnn`` uses embed_dim/filter_sizes/num_filters/dropout,
    ``autoencoder`` embed_dim/code_dim, ``linear`` feature_state (θ·f(S)), ``tabular`` nothing."""

    kind: EnergyKind = "cnn"
    embed_dim: int = 64
    filter_sizes: tuple[int, ...] = SEQGAN_FILTER_SIZES
    num_filters: tuple[int, ...] = SEQGAN_NUM_FILTERS
    dropout: float = 0.25
    code_dim: int = 32
    feature_state: FeatureState = "time_last"

    def _validate(self) -> None:
        _positive(self, "embed_dim", "code_dim")
        if not 0.0 <= self.dropout < 1.0:
            raise _bad("dropout", self.dropout, "must lie in [0, 1)", "use e.g. 0.25 (SeqGAN's keep 0.75)")
        if not self.filter_sizes:
            raise _bad("filter_sizes", self.filter_sizes, "is empty", "give at least one filter width")
        if len(self.filter_sizes) != len(self.num_filters):
            raise _bad(
                "num_filters",
                self.num_filters,
                f"has {len(self.num_filters)} entries but filter_sizes has {len(self.filter_sizes)}",
                "give one filter count per filter width",
            )
        for name in ("filter_sizes", "num_filters"):
            for i, v in enumerate(getattr(self, name)):
                if v <= 0:
                    raise _bad(f"{name}[{i}]", v, "must be positive", "use widths and counts >= 1")


@dataclass(frozen=True)
class OptimConfig(_Checked):
    """Adam: learning rate, gradient-norm clipping (0 = off), betas and weight decay."""

    lr: float = 1e-2
    grad_clip: float = 5.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def _validate(self) -> None:
        _positive(self, "lr")
        _non_negative(self, "grad_clip", "weight_decay")
        for i, b in enumerate(self.betas):
            if not 0.0 <= b < 1.0:
                raise _bad(f"betas[{i}]", b, "must lie in [0, 1)", "use e.g. betas = [0.9, 0.999]")


def _g_optim() -> OptimConfig:
    return OptimConfig(lr=1e-2, grad_clip=5.0)


def _d_optim() -> OptimConfig:
    return OptimConfig(lr=1e-4, grad_clip=0.0)


@dataclass(frozen=True)
class TrainConfig(_Checked):
    """Everything one EB-SeqGAN run needs; defaults follow SeqGAN where it has a choice.

    Phases: ``pretrain_g_epochs`` MLE epochs; ``pretrain_d_steps`` energy updates with loss (3);
    ``adversarial_rounds`` rounds of ``g_steps`` policy-gradient steps of (14) (K = ``n_rollouts``)
    and ``d_steps`` steps of (3) with margin m. ``out_dir`` empty means ``runs/<name>``;
    ``*_every`` = 0 means only at the end.
    """

    name: str = "run"
    data: DataKind = "oracle"
    data_path: str = ""
    n_items: int = 5000
    horizon: int = 20
    n_train: int = 10000
    n_test: int = 10000
    batch_size: int = 64
    seed: int = 88
    device: DeviceName = "auto"
    bf16: bool = False
    pretrain_g_epochs: int = 120
    pretrain_d_steps: int = 50
    adversarial_rounds: int = 200
    g_steps: int = 1
    d_steps: int = 5
    n_rollouts: int = 16
    entropy_weight: float = 1.0
    reward_to_go: bool = False
    baseline: bool = False
    constant_reward: bool = False
    margin: float = 10.0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    g_optim: OptimConfig = field(default_factory=_g_optim)
    d_optim: OptimConfig = field(default_factory=_d_optim)
    log_every: int = 1
    eval_every: int = 10
    checkpoint_every: int = 10
    log_format: LogFormat = "jsonl"
    out_dir: str = ""
    progress: bool = True

    def _validate(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name:
            raise _bad(
                "name", self.name, "must be a non-empty name without slashes", "use e.g. 'oracle_run1'"
            )
        _positive(self, "n_items", "horizon", "n_train", "n_test", "batch_size")
        if self.n_items < 2:
            raise _bad("n_items", self.n_items, "must be at least 2", "use V >= 2 items")
        if self.n_rollouts < 1:
            raise _bad(
                "n_rollouts", self.n_rollouts, "must be at least 1 (K rollouts per prefix)", "use K = 16"
            )
        if not self.margin > 0 or not math.isfinite(self.margin):
            raise _bad("margin", self.margin, "the EBGAN margin m must be positive and finite", "use m > 0")
        _non_negative(self, "entropy_weight", "pretrain_g_epochs", "pretrain_d_steps", "adversarial_rounds")
        _non_negative(self, "g_steps", "d_steps", "log_every", "eval_every", "checkpoint_every", "seed")
        if self.data == "file" and not self.data_path:
            raise _bad("data_path", self.data_path, "is required when data = 'file'", "set data_path")
        if self.bf16 and self.device == "cpu":
            raise _bad(
                "bf16", True, "bf16 autocast is CUDA only", "set device = 'cuda'/'auto' or bf16 = false"
            )
        if self.energy.kind == "cnn" and min(self.energy.filter_sizes) > self.horizon:
            raise _bad(
                "energy.filter_sizes",
                self.energy.filter_sizes,
                f"every filter is wider than the horizon T={self.horizon}",
                "include a width <= T",
            )

    @property
    def run_dir(self) -> Path:
        """Where logs and checkpoints go: ``out_dir`` or ``runs/<name>``."""
        return Path(self.out_dir or f"runs/{self.name}")

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


# --- device ------------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """'auto' → cuda if available else cpu; 'cpu'; 'cuda' or 'cuda:N' (error when none is present)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"CUDA requested (device = {name!r}) but torch.cuda.is_available() is False; "
                "use --device cpu or auto",
                key="device",
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible",
                key="device",
            )
        return dev
    raise ConfigError(
        f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'{_suggest(name, ['auto', 'cpu', 'cuda'])}"
    )


# --- dict / TOML / overrides -------------------------------------------------------------------
def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """JSON-safe nested dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(config))


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Inverse of :func:`config_to_dict`; missing keys take their defaults, unknown keys are errors."""
    return _build(TrainConfig, data, None)


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML file: top-level keys plus [generator], [energy], [g_optim], [d_optim] tables."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {err}") from None
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{p}: {err}", key=err.key) from None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def config_to_toml(config: TrainConfig) -> str:
    """The config as TOML text that :func:`load_config` reads back to an equal config."""
    data = config_to_dict(config)
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, values in data.items():
        if isinstance(values, dict):
            lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _parse_text(text: str, tp: Any, key: str) -> Any:
    """Convert a command-line string to the field type (validation happens on construction)."""
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        parts = [s.strip() for s in text.split(",") if s.strip()]
        elem = args[0]
        return [_parse_text(s, elem, f"{key}[{i}]") for i, s in enumerate(parts)]
    if tp is bool:
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise _bad(key, text, "is not a boolean", "use true/false or 1/0")
    try:
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        raise _bad(key, text, f"must be {_describe(tp)}", f"write it as {_describe(tp)}") from None
    return text  # str and Literal


def _field_type(key: str) -> tuple[type, str, Any]:
    """(owning dataclass, field name, field type) of a dotted key; unknown keys are errors."""
    parts = key.split(".")
    cls: type = TrainConfig
    for depth, part in enumerate(parts):
        hints = _hints(cls)
        table = ".".join(parts[:depth])
        if part not in hints:
            where = f"table [{table}]" if table else "the top level of the config"
            raise ConfigError(
                f"unknown config key {key!r} ({part!r} is not in {where}); valid keys: "
                f"{', '.join(hints)}{_suggest(part, list(hints))}",
                key=key,
            )
        tp = hints[part]
        if depth < len(parts) - 1:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"config key {'.'.join(parts[: depth + 1])!r} is not a table", key=key)
            cls = tp
        elif dataclasses.is_dataclass(tp):
            fields = ", ".join(f"{part}.{f}" for f in _hints(tp))
            raise ConfigError(f"config key {key!r} is a table; set one of its keys: {fields}", key=key)
    return cls, parts[-1], tp


def _pairs(overrides: Sequence[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(overrides):
        token = overrides[i]
        if not token.startswith("--"):
            raise ConfigError(f"expected a --key flag, got {token!r} (flags look like --margin 5)")
        key = token[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(overrides) and not overrides[i + 1].startswith("--"):
            value, i = overrides[i + 1], i + 2
        else:
            value, i = None, i + 1
        out.append((key.replace("-", "_"), value))
    return out


def _strip_no(key: str) -> str:
    head, _, last = key.rpartition(".")
    return f"{head}.{last[3:]}" if head else last[3:]


def _is_negated_bool(key: str) -> bool:
    """``no_progress`` / ``generator.no_x``: a --no-FLAG for a boolean field."""
    last = key.rpartition(".")[2]
    if not last.startswith("no_"):
        return False
    try:
        return _field_type(_strip_no(key))[2] is bool
    except ConfigError:
        return False


def apply_overrides(config: TrainConfig, overrides: Sequence[str] | Mapping[str, Any]) -> TrainConfig:
    """A new config with dotted keys replaced.

    ``overrides`` is either CLI tokens (``["--margin", "5", "--generator.hidden_dim=64",
    "--progress"]``; dashes in names become underscores; a bare flag sets a boolean to true) or a
    mapping ``{"generator.hidden_dim": 64}``. Strings are converted by the field's type (bools:
    true/false/1/0; tuples: comma lists). Unknown keys are errors with a suggestion.
    """
    if isinstance(overrides, Mapping):
        items: list[tuple[str, Any]] = list(overrides.items())
        from_cli = False
    else:
        items = list(_pairs(overrides))
        from_cli = True
    data = config_to_dict(config)
    for key, value in items:
        if from_cli and value is None and _is_negated_bool(key):
            key, value = _strip_no(key), False
        _, name, tp = _field_type(key)
        if value is None and from_cli:
            if tp is not bool:
                raise ConfigError(f"--{key} needs a value (it is {_describe(tp)})", key=key)
            value = True
        elif isinstance(value, str) and (from_cli or tp is not str):
            value = _parse_text(value, tp, key)
        target = data
        for part in key.split(".")[:-1]:
            target = target[part]
        target[name] = value
    return config_from_dict(data)


# --- presets -----------------------------------------------------------------------------------
def seqgan_oracle_preset() -> TrainConfig:
    """SeqGAN's synthetic-oracle benchmark: V 5000, T 20, 10k oracle samples, batch 64, K 16,
    G Adam 1e-2 clip 5, D Adam 1e-4, CNN energy with SeqGAN's filters (same as configs/seqgan_oracle.toml)."""
    return TrainConfig(
        name="seqgan_oracle",
        data="oracle",
        n_items=5000,
        horizon=20,
        n_train=10000,
        n_test=10000,
        batch_size=64,
        seed=88,
        pretrain_g_epochs=120,
        pretrain_d_steps=50,
        adversarial_rounds=200,
        g_steps=1,
        d_steps=5,
        n_rollouts=16,
        entropy_weight=1.0,
        margin=10.0,
        generator=GeneratorConfig(kind="rnn", cell="gru", embed_dim=32, hidden_dim=32),
        energy=EnergyConfig(kind="cnn", embed_dim=64, dropout=0.25),
        g_optim=OptimConfig(lr=1e-2, grad_clip=5.0),
        d_optim=OptimConfig(lr=1e-4, grad_clip=0.0),
        log_every=1,
        eval_every=10,
        checkpoint_every=10,
    )


def tiny_exact_preset() -> TrainConfig:
    """A tiny exactly enumerable problem (V 4, T 4: 256 sequences) with Gibbs data and a linear
    energy θ·f over ``time_last`` features, so KL(p_data‖p_G) and the learned cost can be checked
    exactly (same as configs/tiny_exact.toml)."""
    return TrainConfig(
        name="tiny_exact",
        data="gibbs",
        n_items=4,
        horizon=4,
        n_train=2000,
        n_test=2000,
        batch_size=128,
        seed=0,
        device="cpu",
        pretrain_g_epochs=20,
        pretrain_d_steps=500,
        adversarial_rounds=1000,
        g_steps=2,
        d_steps=1,
        n_rollouts=16,
        entropy_weight=1.0,
        reward_to_go=True,
        baseline=True,
        margin=100.0,
        generator=GeneratorConfig(kind="rnn", cell="gru", embed_dim=8, hidden_dim=32),
        energy=EnergyConfig(kind="linear", feature_state="time_last"),
        g_optim=OptimConfig(lr=5e-3, grad_clip=5.0),
        d_optim=OptimConfig(lr=1e-2, grad_clip=0.0),
        log_every=50,
        eval_every=50,
        checkpoint_every=500,
        progress=False,
    )
