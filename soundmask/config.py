"""Typed dataclass configs that become command-line options (the nerfstudio pattern, on typer).

A config is a plain ``@dataclass`` whose fields carry their help text in ``metadata={"help": ...}``
(use :func:`option`). :func:`cli_options` turns a command function ``f(config: Cfg, *, other options)`` into a
typer command whose options are the config's fields (``--field-name``, typed, with defaults and help) plus
``f``'s own options; the command builds and validates ``Cfg(**values)`` and calls ``f`` with it. The same
dataclass is what the Python API takes, so the CLI and the API cannot drift apart.

Configs nest: a field whose type is a dataclass (use :func:`nested`) contributes its own fields as options, by
their own names (``DemoConfig.reconstruct.iterations`` is ``--iterations``). A name used by several nested configs
is one option that sets them all (``--backend`` for the reconstruction and the lifting); a field of the outer config
hides nested fields of the same name (those keep their defaults). A ``tuple[str, ...]`` field is a repeatable
option (``--set a=1 --set b=2``); ``option(..., flag="--set")`` names a field's option differently.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import typer

__all__ = ["check_choices", "cli_options", "fields_of", "literal_values", "nested", "option", "parse_overrides"]

T = TypeVar("T")


def option(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with a default and help text for :func:`cli_options` (``flag="--name"``: its option's
    name, when not ``--field-name``)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple (immutable) for sequence defaults")
    return dataclasses.field(default=default, metadata={"help": help, **kw})


def nested(factory: Callable[[], Any]) -> Any:
    """A dataclass field holding another config, built by ``factory`` (e.g. ``lambda: ReconstructConfig(
    iterations=400)`` for other defaults); :func:`cli_options` exposes its fields as options."""
    return dataclasses.field(default_factory=factory, metadata={"nested": True})


@dataclasses.dataclass
class _Leaf:
    """One command-line option: the config fields it sets (paths of attribute names), its type, default, help."""

    name: str
    paths: list[tuple[str, ...]]
    hint: Any
    default: Any
    help: str
    flag: str


def _leaves(
    cls: type,
    exclude: tuple[str, ...] = (),
    prefix: tuple[str, ...] = (),
    default_obj: Any = None,
    taken: frozenset[str] = frozenset(),
) -> list[_Leaf]:
    """The options of ``cls``: its own fields first, then those of its nested configs (merged by name)."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init and f.name not in exclude]
    own = [f for f in fields if not f.metadata.get("nested")]
    names = set(taken) | {f.name for f in own}
    out: list[_Leaf] = []
    for f in own:
        if default_obj is not None:
            default = getattr(default_obj, f.name)
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
        out.append(
            _Leaf(
                f.name,
                [(*prefix, f.name)],
                hints[f.name],
                default,
                f.metadata.get("help", ""),
                f.metadata.get("flag", "--" + f.name.replace("_", "-")),
            )
        )
    by_name: dict[str, _Leaf] = {}
    for f in fields:
        if not f.metadata.get("nested"):
            continue
        sub = f.default_factory()  # type: ignore[misc,operator]
        for leaf in _leaves(type(sub), exclude, (*prefix, f.name), sub, frozenset(names)):
            if leaf.name in names:
                continue  # hidden by a field of the outer config
            if leaf.name in by_name:  # one option for the same name in several nested configs
                by_name[leaf.name].paths += leaf.paths
            else:
                by_name[leaf.name] = leaf
                out.append(leaf)
    return out


def _build(cls: type, values: dict[tuple[str, ...], Any], prefix: tuple[str, ...] = (), base: Any = None) -> Any:
    """``cls`` with the option ``values`` (by field path) filled in; the other fields keep ``base``'s values (a
    nested config's factory-made default) or their defaults."""
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        path = (*prefix, f.name)
        if f.metadata.get("nested"):
            sub = getattr(base, f.name) if base is not None else f.default_factory()  # type: ignore[misc,operator]
            kw[f.name] = _build(type(sub), values, path, sub)
        elif path in values:
            kw[f.name] = values[path]
        elif base is not None:
            kw[f.name] = getattr(base, f.name)
    return cls(**kw)


def cli_options(cls: type[T], *, exclude: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: expose the fields of dataclass ``cls`` (nested configs flattened, see the module docstring) as
    options of the decorated command, except those named in ``exclude`` (at any depth: they keep their defaults).

    The decorated function's first parameter receives the built ``cls`` instance; its other parameters stay
    ordinary typer parameters (arguments/options).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    leaves = _leaves(cls, exclude)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        own = list(sig.parameters.values())
        if not own:
            raise TypeError(f"{fn.__name__} must take the config as its first parameter")
        rest = own[1:]
        names = {p.name for p in rest}
        params = list(rest)
        for leaf in leaves:
            if leaf.name in names:
                raise TypeError(f"{fn.__name__}: parameter {leaf.name!r} clashes with a field of {cls.__name__}")
            flag, hint, default = leaf.flag, leaf.hint, leaf.default
            if hint is bool:  # a switch with its negation: --occlusion / --no-occlusion
                flag = f"{flag}/--no-{flag[2:]}"
            if typing.get_origin(hint) is tuple and typing.get_args(hint)[1:] == (Ellipsis,):
                hint, default = types.GenericAlias(list, typing.get_args(hint)[:1]), list(default)
            opt = typer.Option(default, flag, help=leaf.help, show_default=True)
            params.append(inspect.Parameter(leaf.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=hint))
        params.sort(key=lambda p: p.kind)

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            values: dict[tuple[str, ...], Any] = {}
            for leaf in leaves:
                v = kwargs.pop(leaf.name)
                v = tuple(v) if isinstance(v, list) else v
                if v == leaf.default and (len(leaf.paths) > 1 or len(leaf.paths[0]) > 1):
                    continue  # not given: each nested config keeps its own default
                for path in leaf.paths:
                    values[path] = v
            return fn(_build(cls, values), **kwargs)

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


def literal_values(hint: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal[...]`` hint, also inside ``X | None`` and ``tuple[X, ...]`` (None: the
    hint is not a closed set)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return typing.get_args(hint)
    if origin is tuple or origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
        if len(inner) == 1:
            return literal_values(inner[0])
    return None


def _closed_fields(cls: type) -> tuple[tuple[str, Any, tuple[Any, ...]], ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        values = literal_values(hints[f.name]) if f.init else None
        if values is not None:
            out.append((f.name, hints[f.name], values))
    return tuple(out)


def check_choices(config: Any, more: Callable[[Any], tuple[Any, ...]] | None = None) -> None:
    """One-line :class:`ConfigError` naming the field and the allowed values when a ``Literal``-typed field of
    dataclass instance ``config`` (or an item of a ``tuple[Literal[...], ...]`` field) has another value; None
    passes where the field allows it. ``more(hint)``: values accepted beyond the ``Literal`` (e.g. names
    registered at run time)."""
    from soundmask.errors import ConfigError

    for name, hint, values in _closed_fields(type(config)):
        value = getattr(config, name)
        if value is None and type(None) in typing.get_args(hint):
            continue
        allowed = values + (more(hint) if more is not None else ())
        many = typing.get_origin(hint) is tuple and isinstance(value, (tuple, list))
        for v in value if many else (value,):
            if v not in allowed:
                raise ConfigError(f"{name}={v!r} is not one of {', '.join(map(str, allowed))}")
