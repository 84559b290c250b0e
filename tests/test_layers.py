"""The package's layers (../shared/DESIGN.md) only point down, and no import cycle exists.

From the bottom up: errors/config/constants (and the small shared helpers registry, hf_local) · data · synth,
metrics, splat, vision, audio · avs2d, lift · report · pipeline · cli. A module may import from its own layer or
a lower one. Every import counts: at module top, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import soundmask

PACKAGE = Path(soundmask.__file__).resolve().parent

LAYERS: dict[str, int] = {
    "__init__": 0,
    "errors": 0,
    "config": 0,
    "constants": 0,
    "registry": 0,
    "hf_local": 0,
    "data": 1,
    "synth": 2,
    "metrics": 2,
    "splat": 2,
    "vision": 2,
    "audio": 2,
    "avs2d": 3,
    "lift": 3,
    "report": 4,
    "pipeline": 5,
    "cli": 6,
    "__main__": 6,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The soundmask modules that module ``name`` imports (resolved to files; a package means its __init__)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for t in targets:
            if t == "soundmask" or t.startswith("soundmask."):
                r = resolve(t)
                # importing a submodule also runs its parent packages' __init__: not an edge we count
                if r is not None and r != name and not name.startswith(r + "."):
                    out.add(r)
    return out


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(name, path, known) for name, path in known.items()}


def _layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in LAYERS:
        pytest.fail(f"soundmask/{top} has no layer: add it to LAYERS in tests/test_layers.py and DESIGN.md's order")
    return top, LAYERS[top]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_layers_only_point_down() -> None:
    bad = []
    for mod, deps in sorted(_graph().items()):
        top, level = _layer(mod)
        for dep in sorted(deps):
            dtop, dlevel = _layer(dep)
            if dlevel > level:
                bad.append(f"{mod} ({top}) imports {dep} ({dtop}, a higher layer)")
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_files() -> None:
    assert not _cycles(_graph())


def test_no_import_cycle_between_packages() -> None:
    pkgs: dict[str, set[str]] = {}
    for mod, deps in _graph().items():
        a = _layer(mod)[0]
        pkgs.setdefault(a, set()).update(b for b in (_layer(d)[0] for d in deps) if b != a)
    assert not _cycles(pkgs)


def test_only_pipeline_and_cli_import_pipeline() -> None:
    bad = [
        f"{m} imports {d}"
        for m, deps in sorted(_graph().items())
        for d in sorted(deps)
        if d.startswith("soundmask.pipeline") and _layer(m)[0] not in ("pipeline", "cli", "__main__")
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_can_fail() -> None:
    """The cycle finder and the layer rule catch what they should on a made-up graph."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _layer("soundmask.data.io")[1] < _layer("soundmask.report.html")[1]
