"""Protocol / physics constants live once, in ``soundmask.constants``; the audio front-end does not need the scene
generator for them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import soundmask
from soundmask import constants

PACKAGE = Path(soundmask.__file__).resolve().parent
AUDIO = PACKAGE / "audio"

SPEED_LITERAL_EXEMPT: set[str] = set()  # files allowed to hold a 343 literal: none
SPEED_LITERAL_EXEMPT_DIRS: tuple[str, ...] = ()


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def test_constant_values() -> None:
    assert constants.SPEED_OF_SOUND == 343.0
    assert constants.MIC_SPACING == 0.2
    assert constants.TEST_EVERY == 8
    assert constants.ALPHA_THRESHOLD == 0.8
    assert constants.VOTE_THRESHOLD == 0.5
    assert constants.AVSBENCH_SAMPLE_RATE == 16000
    assert constants.AVSBENCH_NUM_FRAMES == 5
    assert constants.SCENE_SAMPLE_RATE == 44100


def test_old_names_are_the_constants() -> None:
    from soundmask.data import avsbench, avss, threedavs
    from soundmask.metrics import scene3d
    from soundmask.synth import acoustics

    assert acoustics.SPEED_OF_SOUND is constants.SPEED_OF_SOUND and acoustics.MIC_SPACING is constants.MIC_SPACING
    assert scene3d.TEST_EVERY is constants.TEST_EVERY and threedavs.TEST_EVERY is constants.TEST_EVERY
    assert scene3d.ALPHA_THRESHOLD is constants.ALPHA_THRESHOLD
    assert avsbench.AVSBENCH_SAMPLE_RATE == avss.AVSS_SAMPLE_RATE == constants.AVSBENCH_SAMPLE_RATE
    assert avsbench.NUM_FRAMES == constants.AVSBENCH_NUM_FRAMES


def test_constants_module_imports_nothing_from_soundmask() -> None:
    tree = ast.parse((PACKAGE / "constants.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "soundmask" for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and (node.module or "").split(".")[0] != "soundmask", ast.dump(node)


def test_speed_of_sound_literal_only_in_constants() -> None:
    found = []
    for path in _sources(PACKAGE):
        rel = _rel(path)
        if rel == "constants.py" or rel in SPEED_LITERAL_EXEMPT or rel.startswith(SPEED_LITERAL_EXEMPT_DIRS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, (int, float))
                and not isinstance(node.value, bool)
                and node.value == 343
            ):
                found.append(f"{rel}:{node.lineno}")
    assert not found, f"speed of sound as a literal (use soundmask.constants.SPEED_OF_SOUND): {found}"


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported: not those inside functions (lazy imports)."""
    out: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    if node.level == 0:
        return node.module or ""
    pkg = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]  # the package the module is in
    base = pkg[: len(pkg) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def test_audio_does_not_import_synth_at_module_top() -> None:
    bad = []
    for path in _sources(AUDIO):
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                mod = _absolute(node, path)
                names = [mod, *(f"{mod}.{a.name}" for a in node.names)]
            if any(n == "soundmask.synth" or n.startswith("soundmask.synth.") for n in names):
                bad.append(f"{_rel(path)}:{node.lineno}")
    assert not bad, f"audio modules import the scene generator at module top: {bad}"


def test_importing_audio_does_not_load_synth() -> None:
    code = (
        "import sys, soundmask.audio.tdoa, soundmask.audio.analyze; "
        "print(sorted(m for m in sys.modules if m.startswith('soundmask.synth')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out
