"""`soundmask demo` on a tiny scene: the report and metrics, stage caching, and resuming after a crash."""

from __future__ import annotations

import ctypes.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("moderngl", reason="the generator renders with moderngl")
if ctypes.util.find_library("EGL") is None:  # pragma: no cover - depends on the machine
    pytest.skip("libEGL not found", allow_module_level=True)

from soundmask.pipeline.demo import STAGES, DemoConfig, run_demo
from soundmask.splat.train import ReconstructConfig

TINY = {"width": 48, "frames": 9, "orbit": 2, "report_frames": 3}


def _tiny(**kw: object) -> DemoConfig:
    return DemoConfig(**{**TINY, "reconstruct": ReconstructConfig(iterations=30), **kw})  # type: ignore[arg-type]


def _stable(m: dict) -> dict:
    """The metrics without the timings (which differ between runs)."""
    return {k: v for k, v in m.items() if k not in ("stages", "seconds")}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("demo")
    seen: list[tuple[str, float, str]] = []
    res = run_demo(_tiny(), out, progress=lambda s, f, n: seen.append((s, f, n)))
    return out, (res, seen)


def test_demo_writes_report_and_metrics(first_run) -> None:
    out, (res, seen) = first_run
    html = (out / "report.html").read_text()
    for section in ("Stages", "Metrics against", "Sounding objects", "Audio timeline", "Input frames", "Novel views"):
        assert section in html, section
    # self-contained: every picture is inlined, nothing is fetched
    assert 'src="http' not in html and "src='http" not in html
    assert len(re.findall(r"data:image/png;base64,", html)) >= 1 + TINY["report_frames"] + TINY["orbit"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["scene"] == res.metrics["scene"] == "scene3d_000210"
    for k in ("masks_2d", "reconstruction", "scene3d", "tags", "objects", "stages", "seconds"):
        assert k in m
    assert 0 <= m["masks_2d"]["pooled_j"] <= 1 and m["reconstruction"]["psnr_test"] > 10
    assert set(m["stages"]) == set(STAGES)
    assert not any(v["cached"] for v in m["stages"].values())
    # the progress callback saw every stage start and finish
    assert {s for s, f, _ in seen if f == 1.0} == set(STAGES)
    assert len(list((out / "renders").glob("orbit_*.png"))) == TINY["orbit"]
    # each sounding object's own signal: a WAV in lift/objects/, a player in the report, the separation scores
    with_audio = [t for t in m["tags"] if t["audio"]]
    assert len(with_audio) == len(m["tags"]) and all((out / t["audio"]).is_file() for t in with_audio)
    assert len(re.findall(r"<audio controls", html)) == len(with_audio)
    assert len(re.findall(r"data:audio/wav;base64,", html)) == len(with_audio)
    for k in ("separation_si_sdr_db", "separation_si_sdri_db", "label_accuracy_mixture", "track_error_m"):
        assert k in m["scene3d"]
    te = m["scene3d"]["track_errors_m"]  # one per found object (None: no sound events, or nothing found)
    assert (te is None and not m["scene3d"]["objects_found"]) or len(te) == m["scene3d"]["objects_found"]


def test_demo_rerun_uses_cache_and_gives_same_metrics(first_run) -> None:
    out, (res, _) = first_run
    again = run_demo(_tiny(), out)
    cached = {r.name for r in again.stages if r.cached}
    assert cached == set(STAGES) - {"report"}
    assert _stable(again.metrics) == _stable(res.metrics)


def test_demo_resumes_after_a_crash(first_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref, (res, _) = first_run
    import soundmask.pipeline.lift3d as lift3d

    def boom(*a, **k):
        raise KeyboardInterrupt("killed during lifting")

    monkeypatch.setattr(lift3d, "run_lift", boom)
    with pytest.raises(KeyboardInterrupt):
        run_demo(_tiny(), tmp_path)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "metrics.json").exists()
    assert not (tmp_path / "lift" / "sound_scene.pt").exists()
    monkeypatch.undo()
    resumed = run_demo(_tiny(), tmp_path)
    cached = {r.name for r in resumed.stages if r.cached}
    assert cached == {"scene", "audio", "2d", "reconstruct"}
    assert _stable(resumed.metrics) == _stable(res.metrics)


def test_demo_options_change_the_cache_key(first_run) -> None:
    out, _ = first_run
    res = run_demo(_tiny(orbit=1), out)
    by = {r.name: r.cached for r in res.stages}
    assert by["lift"] and not by["render"]
    assert len(json.loads((out / "renders" / "captions.json").read_text())) == 1


def test_demo_bad_option_is_one_line_exit_2(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "soundmask.cli", "demo", "--out", str(tmp_path / "d"), "--width", "8"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "width" in r.stderr
    assert not (tmp_path / "d" / "report.html").exists()
