"""Checked, frozen configuration dataclasses: type coercion, range checks and clear errors.

A config table is a frozen dataclass deriving from :class:`Checked`: on construction every field
is checked against its annotation (``Literal`` choices, ints, floats, bools, strings, tuples,
nested tables given as mappings) and converted to its canonical type (lists → tuples, ints →
floats), then the class's ``_validate`` hook runs its range checks. Every failure is a
:class:`ConfigError` (a ``ValueError``) naming the dotted key, the value and the fix; unknown keys
get a "did you mean" suggestion. The range checks reuse :mod:`gan_equiv.checks` through
:func:`check_fields`, so a config and a function argument are validated by the same rules.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal


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
        key = f"{table}.{self.key}"
        return ConfigError(f"invalid config value {key} {self.detail}", key=key, detail=self.detail)


def invalid(key: str, value: Any, problem: str, fix: str) -> ConfigError:
    """The error for ``key = value``: what is wrong (``problem``) and what to do (``fix``)."""
    detail = f"= {value!r}: {problem}; {fix}"
    return ConfigError(f"invalid config value {key} {detail}", key=key, detail=detail)


def suggest(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def type_hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of a dataclass (postponed annotations evaluated)."""
    return typing.get_type_hints(cls)


def describe(tp: Any) -> str:
    """A field type in words, for error messages (``one of 'a', 'b'``, ``an integer`` …)."""
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "a list of numbers"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the field type ``tp``; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = suggest(value, choices) if isinstance(value, str) else ""
            raise invalid(key, value, f"must be {describe(tp)}{hint}", "pick one of the listed values")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise invalid(
                key, value, "must be a list", "write it as [a, b, ...] in TOML or a,b,... on the CLI"
            )
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            elem_types = [args[0]] * len(value)
        else:
            if len(value) != len(args):
                raise invalid(
                    key, value, f"must have {len(args)} entries", f"give exactly {len(args)} values"
                )
            elem_types = list(args)
        return tuple(
            coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, elem_types, strict=True))
        )
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return build(tp, value, key)
        raise invalid(key, value, "must be a table", f"write it as a [{key}] table of keys")
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[tp]
    if not ok:
        raise invalid(key, value, f"must be {describe(tp)}", f"write it as {describe(tp)}")
    return float(value) if tp is float else value


def build(cls: type, data: Mapping[str, Any], table: str | None) -> Any:
    """Construct dataclass ``cls`` from a mapping; unknown keys are errors naming the table."""
    names = [f.name for f in dataclasses.fields(cls)]
    where = f"table [{table}]" if table else "the top level of the config"
    for key in data:
        if key not in names:
            raise ConfigError(
                f"unknown config key {key!r} in {where}; valid keys: {', '.join(names)}"
                f"{suggest(str(key), names)}",
                key=f"{table}.{key}" if table else str(key),
            )
    try:
        return cls(**dict(data))
    except ConfigError as err:
        raise (err.under(table) if table else err) from None


def check_fields(obj: Any, check: Callable[..., Any], *names: str, fix: str) -> None:
    """Run a :mod:`gan_equiv.checks` validator on each named field; a failure becomes a
    :class:`ConfigError` for that key (``check(value, name)`` raising ``ValueError``)."""
    for name in names:
        value = getattr(obj, name)
        try:
            check(value, name)
        except ValueError as err:
            raise invalid(name, value, str(err), fix) from None


class Checked:
    """Mixin of the config dataclasses: type-check and coerce every field, then ``_validate``."""

    def __post_init__(self) -> None:
        for name, tp in type_hints(type(self)).items():
            object.__setattr__(self, name, coerce(getattr(self, name), tp, name))
        self._validate()

    def _validate(self) -> None:
        """Range checks of the subclass (none by default)."""
