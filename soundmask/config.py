"""Typed dataclass configs that become command-line options (the nerfstudio pattern, on typer).

A config is a plain ``@dataclass`` whose fields carry their help text in ``metadata={"help": ...}``
(use :func:`option`). :func:`cli_options` turns a command function ``f(config: Cfg, *, other options)`` into a
typer command whose options are the config's fields (``--field-name``, typed, with defaults and help) plus
``f``'s own options; the command builds and validates ``Cfg(**values)`` and calls ``f`` with it. The same
dataclass is what the Python API takes, so the CLI and the API cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import typer

__all__ = ["cli_options", "fields_of", "option", "parse_overrides"]

T = TypeVar("T")


def option(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with a default and help text for :func:`cli_options`."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple (immutable) for sequence defaults")
    return dataclasses.field(default=default, metadata={"help": help, **kw})


def cli_options(cls: type[T], *, exclude: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: expose the fields of dataclass ``cls`` (except ``exclude``) as options of the decorated command.

    The decorated function's first parameter receives the built ``cls`` instance; its other parameters stay
    ordinary typer parameters (arguments/options).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init and f.name not in exclude]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        own = list(sig.parameters.values())
        if not own:
            raise TypeError(f"{fn.__name__} must take the config as its first parameter")
        rest = own[1:]
        names = {p.name for p in rest}
        params = list(rest)
        for f in fields:
            if f.name in names:
                raise TypeError(f"{fn.__name__}: parameter {f.name!r} clashes with a field of {cls.__name__}")
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            flag = "--" + f.name.replace("_", "-")
            if hints[f.name] is bool:  # a switch with its negation: --occlusion / --no-occlusion
                flag = f"{flag}/--no-{flag[2:]}"
            opt = typer.Option(default, flag, help=f.metadata.get("help", ""), show_default=True)
            params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=hints[f.name]))
        params.sort(key=lambda p: p.kind)

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            values = {f.name: kwargs.pop(f.name) for f in fields}
            return fn(cls(**values), **kwargs)

        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def _coerce(value: str, hint: Any, name: str) -> Any:
    from soundmask.errors import ConfigError

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value.lower() in ("none", "null", "") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name) if len(inner) == 1 else value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(str, args))}")
        return value
    try:
        if hint is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint in (int, float, str):
            return hint(value)
        if origin is tuple:
            return tuple(v.strip() for v in value.split(",") if v.strip())
    except ValueError as e:
        raise ConfigError(f"{name}={value!r} is not a valid {getattr(hint, '__name__', hint)}") from e
    return value


def parse_overrides(pairs: list[str] | tuple[str, ...], *classes: type) -> dict[str, Any]:
    """``["key=value", ...]`` (``soundmask ... --set key=value``) → typed values for the fields of ``classes``
    (dataclasses); an unknown key or a badly typed value is a :class:`~soundmask.errors.ConfigError`."""
    from soundmask.errors import ConfigError

    hints: dict[str, Any] = {}
    for cls in classes:
        h = typing.get_type_hints(cls)
        hints.update({f.name: h[f.name] for f in dataclasses.fields(cls) if f.init})
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set needs KEY=VALUE, got {pair!r}")
        if key not in hints:
            raise ConfigError(f"unknown option {key!r}", fix=f"use one of {', '.join(sorted(hints))}")
        out[key] = _coerce(value.strip(), hints[key], key)
    return out


def fields_of(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The items of ``values`` whose keys are init fields of dataclass ``cls`` (to build ``cls(**...)`` from a
    mixed bag of options)."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return {k: v for k, v in values.items() if k in names}
