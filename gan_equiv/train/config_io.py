"""Configurations in and out: JSON-safe dicts, TOML files and command-line overrides.

:func:`config_to_dict` / :func:`config_from_dict` give a JSON-safe dict (only str/int/float/bool/
list/dict) — the form a checkpoint stores; :func:`load_config` / :func:`config_to_toml` read and
write TOML (top-level keys plus ``[generator]``, ``[energy]``, ``[g_optim]``, ``[d_optim]``);
:func:`apply_overrides` applies dotted command-line keys such as ``--generator.hidden_dim 64``.
Missing keys take their defaults; unknown keys are errors with a "did you mean" suggestion.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gan_equiv.schema import ConfigError, build, describe, invalid, suggest, type_hints
from gan_equiv.train.config_types import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib


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
    """Inverse of :func:`config_to_dict`; missing keys take their defaults, unknown keys are errors.

    A missing key inside a table takes the value of that table in ``TrainConfig()`` (so
    ``[d_optim] lr = 1e-3`` keeps the D optimizer's default ``grad_clip = 0``, not Adam's 5).
    """
    defaults = config_to_dict(TrainConfig())
    merged = {
        key: {**defaults[key], **value}
        if isinstance(value, Mapping) and isinstance(defaults.get(key), dict)
        else value
        for key, value in data.items()
    }
    return build(TrainConfig, merged, None)


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML file: top-level keys plus [generator], [energy], [g_optim], [d_optim] tables."""
    p = Path(path)
    fix = "give a TOML file, e.g. configs/tiny_exact.toml"
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a folder; {fix}")
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist; {fix}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"config file {str(p)!r} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8"
        ) from None
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
        raise invalid(key, text, "is not a boolean", "use true/false or 1/0")
    try:
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        raise invalid(key, text, f"must be {describe(tp)}", f"write it as {describe(tp)}") from None
    return text  # str and Literal


def _field_type(key: str) -> tuple[type, str, Any]:
    """(owning dataclass, field name, field type) of a dotted key; unknown keys are errors."""
    parts = key.split(".")
    cls: type = TrainConfig
    for depth, part in enumerate(parts):
        hints = type_hints(cls)
        table = ".".join(parts[:depth])
        if part not in hints:
            where = f"table [{table}]" if table else "the top level of the config"
            raise ConfigError(
                f"unknown config key {key!r} ({part!r} is not in {where}); valid keys: "
                f"{', '.join(hints)}{suggest(part, list(hints))}",
                key=key,
            )
        tp = hints[part]
        if depth < len(parts) - 1:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"config key {'.'.join(parts[: depth + 1])!r} is not a table", key=key)
            cls = tp
        elif dataclasses.is_dataclass(tp):
            fields = ", ".join(f"{part}.{f}" for f in type_hints(tp))
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
                raise ConfigError(f"--{key} needs a value (it is {describe(tp)})", key=key)
            value = True
        elif isinstance(value, str) and (from_cli or tp is not str):
            value = _parse_text(value, tp, key)
        target = data
        for part in key.split(".")[:-1]:
            target = target[part]
        target[name] = value
    return config_from_dict(data)
