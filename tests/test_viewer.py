"""`soundmask view`: query parsing, highlighting, and the real thing in a headless Chromium (Playwright): the page
loads, the splats appear, and a query highlights one object (screenshot comparison)."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from soundmask.errors import ConfigError
from soundmask.lift.tags import SoundScene, SoundTag
from soundmask.report.viewer import Query, highlighted_tags, parse_query, splat_arrays
from soundmask.splat.gaussians import Gaussians

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


def _scene(tmp: Path | None = None) -> SoundScene:
    """Two grey blobs of 400 Gaussians: a dog (sounds 0–2 s) on the left, a piano (1–3 s) on the right."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 3)) * 0.15 + [-0.6, 0, 0]
    b = rng.normal(size=(400, 3)) * 0.15 + [0.6, 0, 0]
    g = Gaussians.from_points(np.concatenate([a, b]), np.full((800, 3), 0.5), scale=0.05)
    tags = [
        SoundTag(0, np.arange(400), "Dog", {"Dog": 0.9, "Animal": 0.5}, spans=[(0.0, 2.0)], centroid=a.mean(0)),
        SoundTag(1, np.arange(400, 800), "Piano", {"Piano": 0.8}, spans=[(1.0, 3.0)], centroid=b.mean(0)),
    ]
    return SoundScene(g, tags, {})


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", Query()),
        ("dog", Query("dog")),
        ("t=3", Query(None, 3.0)),
        ("2.5s", Query(None, 2.5)),
        ("4", Query(None, 4.0)),
        ("dog@1.5", Query("dog", 1.5)),
        ("dog t=2", Query("dog", 2.0)),
        ("electric guitar", Query("electric guitar")),
        ("  Piano  ", Query("Piano")),
    ],
)
def test_parse_query(text: str, want: Query) -> None:
    assert parse_query(text) == want


def test_parse_query_bad_time() -> None:
    with pytest.raises(ConfigError, match="time"):
        parse_query("dog@soon")


def test_highlighted_tags_by_label_time_and_checkbox() -> None:
    s = _scene()
    assert highlighted_tags(s, Query(), 0.5, all_times=True) == [0, 1]
    assert highlighted_tags(s, Query(), 0.5, all_times=False) == [0]
    assert highlighted_tags(s, Query(), 2.5, all_times=False) == [1]
    assert highlighted_tags(s, Query("animal"), 2.5, all_times=True) == [0]  # score names match too
    assert highlighted_tags(s, Query(None, 1.5), 0.0, all_times=True) == [0, 1]
    assert highlighted_tags(s, Query("piano", 0.5), 0.0, all_times=True) == []


def test_splat_arrays_tint_only_the_highlighted() -> None:
    s = _scene()
    c, cov, rgb, op = splat_arrays(s.gaussians, None, s.tags, [1])
    assert c.shape == (800, 3) and cov.shape == (800, 3, 3) and rgb.shape == (800, 3) and op.shape == (800, 1)
    assert np.allclose(rgb[:400], 0.5, atol=1e-5)  # the dog keeps its grey
    assert (rgb[400:, 2] > rgb[400:, 0] + 0.2).all()  # the piano turns blue
    assert np.allclose(cov, np.swapaxes(cov, 1, 2), atol=1e-6) and (np.linalg.eigvalsh(cov) > 0).all()


# ------------------------------------------------------------------------------------------ browser
def _counts(png: bytes) -> tuple[float, int, int]:
    """(share of non-white pixels, orange-ish pixels (the dog's tint), blue-ish pixels (the piano's tint))."""
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)[:, :560]  # left of the GUI panel
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    ink = float(((a < 235).any(-1)).mean())
    orange = int(((r > 150) & (r > b + 80) & (g > b + 40)).sum())
    blue = int(((b > 140) & (b > r + 50)).sum())
    return ink, orange, blue


def _until(shoot, ok, timeout: float = 40.0):
    t0, last = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        last = shoot()
        if ok(_counts(last)):
            return last
        time.sleep(0.5)
    raise AssertionError(f"condition not met in {timeout:.0f} s; last counts {_counts(last) if last else None}")


def test_viewer_in_headless_chromium(tmp_path: Path) -> None:
    if os.environ.get("SOUNDMASK_SKIP_BROWSER") == "1":
        pytest.skip("SOUNDMASK_SKIP_BROWSER=1")
    assert Path(CHROMIUM).exists(), "Chromium is missing: install.sh installs the Debian package 'chromium'"
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from soundmask.report.viewer import SoundViewer

    path = _scene().save(tmp_path / "sound_scene.pt")
    viewer = SoundViewer(path, port=0)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
            )
            page = browser.new_page(viewport={"width": 900, "height": 600})
            page.goto(f"http://127.0.0.1:{viewer.port}")
            page.wait_for_selector("canvas", timeout=30000)
            shoot = lambda: page.screenshot()  # noqa: E731
            # the scene appears: both objects, in their colours (every sounding object is highlighted)
            before = _until(shoot, lambda c: c[0] > 0.05 and c[1] > 500 and c[2] > 500)
            box = page.locator("input:visible:not([type=checkbox])").first  # the query box (first text input)
            box.fill("dog")
            box.press("Enter")
            # the query highlights the dog only: its orange stays, the piano loses its blue
            after = _until(shoot, lambda c: c[2] < 0.05 * _counts(before)[2] and c[1] > 0.5 * _counts(before)[1])
            assert viewer.highlighted == [0]
            (tmp_path / "before.png").write_bytes(before)
            (tmp_path / "after.png").write_bytes(after)
            browser.close()
    finally:
        viewer.stop()
