"""The console command as a user runs it: help lists commands; user errors are one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SOUNDMASK = [sys.executable, "-m", "soundmask.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOUNDMASK, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("info", "inspect"):
        assert cmd in r.stdout


def test_version_and_info():
    from soundmask import __version__

    assert run("--version").stdout.strip() == f"soundmask {__version__}"
    r = run("info")
    assert r.returncode == 0
    assert f"soundmask {__version__}" in r.stdout and "soundmask inspect" in r.stdout


def test_unknown_command_exits_2():
    r = run("no-such-command")
    assert r.returncode == 2
    assert "No such command" in r.stderr


@pytest.mark.parametrize("name", ["missing", "file.txt"])
def test_inspect_bad_path_is_one_line_exit_2(tmp_path, name):
    (tmp_path / "file.txt").write_text("x")
    target = tmp_path / name
    r = run("inspect", str(target))
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert str(target) in lines[0] and lines[0].startswith("error:")
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------------------- inspect
def _s4_clips(rng, n=3, size=(24, 24)):
    from soundmask.data.types import Clip

    clips = []
    for i in range(n):
        masks = rng.random((5, *size)) > 0.7
        clips.append(
            Clip(
                name=f"clip{i}",
                frames=rng.integers(0, 256, (5, *size, 3), dtype=np.uint8),
                audio=(rng.random((1, 16000)) - 0.5).astype(np.float32) * 0.5,
                sample_rate=16000,
                masks=masks,
                category=["dog_barking", "playing_piano"][i % 2],
                split="test",
            )
        )
    return clips


def test_inspect_avsbench_s4_summary_and_json(tmp_path, rng):
    from soundmask.data.avsbench import write_avsbench

    root = write_avsbench(tmp_path / "s4", _s4_clips(rng), subset="s4")
    r = run("inspect", str(root), "--json", str(tmp_path / "summary.json"))
    assert r.returncode == 0, r.stderr
    assert "avsbench-s4" in r.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["layout"] == "avsbench-s4" and summary["samples"] == 3 and summary["frames"] == 15
    assert summary["frames_with_gt"] == 15 and summary["frame_sizes"] == {"24x24": 15}
    assert summary["categories"] == {"dog_barking": 2, "playing_piano": 1}
    assert summary["sample_rates"] == {"16000 Hz, 1 ch": 3}
    assert 0.2 < summary["sounding_fraction"] < 0.4


def test_inspect_corrupt_frame_is_one_line_exit_2(tmp_path, rng):
    from soundmask.data.avsbench import AVSBenchDataset, write_avsbench

    root = write_avsbench(tmp_path / "s4", _s4_clips(rng), subset="s4")
    frame = AVSBenchDataset(root, "s4", "test").frame_paths(1)[2]
    frame.write_bytes(frame.read_bytes()[:100])
    r = run("inspect", str(root))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(frame) in lines[0] and "cannot decode image" in lines[0], r.stderr


def test_inspect_missing_csv_column(tmp_path, rng):
    from soundmask.data.avsbench import write_avsbench

    root = write_avsbench(tmp_path / "s4", _s4_clips(rng), subset="s4")
    csv = root / "s4_meta_data.csv"
    csv.write_text(csv.read_text().replace("category", "kategorie"))
    r = run("inspect", str(root))
    assert r.returncode == 2 and "missing column(s) category" in r.stderr and str(csv) in r.stderr


def test_inspect_scene_and_its_3davs_view(tmp_path, rng):
    from test_data_scene import make_data, make_scene  # the scene-format tests' fixture builders

    from soundmask.data.scene import write_scene

    scene = make_scene()
    rgb, inst, depth, stereo = make_data(rng)
    root = tmp_path / "scene"
    write_scene(root, scene, rgb, inst, depth, None, stereo)
    r = run("inspect", str(root), "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["layout"] == "scene" and s["samples"] == len(scene.frames) == s["frames_with_gt"]
    assert s["extra"]["objects"] == 3 and s["extra"]["moving_objects"] == 1 and s["extra"]["sound_events"] == 2
    (root / "scene.json").unlink()  # what remains is a plain 3DAVS-S34-O7 scene
    r = run("inspect", str(root), "--json", str(tmp_path / "t.json"))
    assert r.returncode == 0, r.stderr
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["layout"] == "3davs" and t["frames"] == len(scene.frames)
    assert t["sample_rates"] == {f"{scene.sample_rate} Hz, 2 ch": len(scene.frames)}


def test_inspect_empty_split(tmp_path, rng):
    from soundmask.data.avsbench import write_avsbench

    root = write_avsbench(tmp_path / "s4", _s4_clips(rng), subset="s4")
    r = run("inspect", str(root), "--split", "val")
    assert r.returncode == 2 and "no clips in split 'val'" in r.stderr
