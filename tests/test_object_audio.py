"""Per-object audio of generated scenes (stems that sum to the stereo mixture), its reader, and SI-SDR."""

from __future__ import annotations

import ctypes.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from soundmask.errors import ConfigError, DataError
from soundmask.metrics.separation import si_sdr, si_sdr_channels, si_sdr_improvement


# ------------------------------------------------------------------------------------------------ SI-SDR
def reference_si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """The textbook formula, one channel: zero-mean, α = ⟨ŝ, s⟩ / ⟨s, s⟩, 10 log10 ‖α s‖² / ‖α s − ŝ‖²."""
    e = estimate - estimate.mean()
    s = reference - reference.mean()
    target = (e @ s) / (s @ s) * s
    return float(10 * np.log10((target @ target) / ((target - e) @ (target - e))))


def test_si_sdr_matches_the_formula_on_random_signals(rng: np.random.Generator) -> None:
    for _ in range(5):
        ref = rng.standard_normal((2, 4000)) + rng.uniform(-1, 1)
        est = rng.uniform(0.2, 3) * ref + rng.uniform(0.1, 2) * rng.standard_normal((2, 4000)) + rng.uniform(-1, 1)
        per = si_sdr_channels(est, ref)
        want = [reference_si_sdr(est[c], ref[c]) for c in range(2)]
        np.testing.assert_allclose(per, want, atol=1e-8)
        assert si_sdr(est, ref) == pytest.approx(np.mean(want), abs=1e-8)
        assert si_sdr(est[0], ref[0]) == pytest.approx(want[0], abs=1e-8)  # one channel: (samples,)
        mix = ref + rng.standard_normal((2, 4000))
        gain = si_sdr_improvement(est, mix, ref)
        assert gain == pytest.approx(np.mean(want) - np.mean([reference_si_sdr(mix[c], ref[c]) for c in range(2)]))


def test_si_sdr_known_cases(rng: np.random.Generator) -> None:
    ref = rng.standard_normal((2, 2000)).astype(np.float32)
    assert si_sdr(ref, ref) > 100  # a perfect estimate
    noisy = ref + 0.1 * rng.standard_normal(ref.shape)
    assert si_sdr(3.7 * noisy, ref) == pytest.approx(si_sdr(noisy, ref), abs=1e-9)  # scale-invariant
    assert si_sdr(noisy + 0.5, ref) == pytest.approx(si_sdr(noisy, ref), abs=1e-9)  # zero-mean
    assert si_sdr(noisy, ref) == pytest.approx(20.0, abs=0.5)  # 10 log10(1 / 0.01)
    assert si_sdr_improvement(ref, ref + noisy, ref) > 100
    with pytest.raises(ConfigError, match="shape"):
        si_sdr(ref[:, :100], ref)
    with pytest.raises(ConfigError, match="silent"):
        si_sdr(ref, np.stack([ref[0], np.zeros(2000, np.float32)]))


# -------------------------------------------------------------------------------------- generated stems
needs_generator = pytest.mark.skipif(
    ctypes.util.find_library("EGL") is None, reason="the generator renders with moderngl on EGL"
)


def gcc_phat(left: np.ndarray, right: np.ndarray, sr: int, max_tau: float, interp: int = 16) -> float:
    """τ = t_right − t_left (s) of the GCC-PHAT peak (100–8000 Hz), parabolic refinement; test-local."""
    n = 2 * len(left)
    X = np.fft.rfft(right, n) * np.conj(np.fft.rfft(left, n))
    f = np.fft.rfftfreq(n, 1 / sr)
    mag = np.abs(X)
    keep = (f >= 100) & (f <= 8000) & (mag > 1e-6 * mag.max())
    cc = np.fft.irfft(np.where(keep, X / np.maximum(mag, 1e-30), 0), n * interp)
    m = int(np.ceil(max_tau * sr * interp))
    cc = np.concatenate([cc[-m:], cc[: m + 1]])
    k = float(np.argmax(cc))
    i = int(k)
    if 0 < i < len(cc) - 1:
        a, b, c = cc[i - 1], cc[i], cc[i + 1]
        k = i + 0.5 * (a - c) / (a - 2 * b + c)
    return (k - m) / (sr * interp)


@needs_generator
def test_stems_sum_to_the_mixture_and_are_written(tmp_path: Path) -> None:
    from soundmask.data.scene import load_object_audio, load_stereo, object_audio_ids, read_scene
    from soundmask.synth.generator import SynthConfig, SynthScene, generate_dataset

    made: list[SynthScene] = []
    cfg = SynthConfig(preset="scene4d", width=48, height=40, frames=6)
    generate_dataset(cfg, tmp_path, 1, 39, on_scene=made.append)
    sc = made[0]  # two sounding objects, one of them moving
    with_sound = sorted({e.object_id for e in sc.scene.sound_events})
    assert sorted(sc.object_audio) == with_sound and len(with_sound) == 2
    assert set(with_sound) <= {o.id for o in sc.scene.objects if o.sounding}
    assert any(sc.scene.object(i).moving for i in with_sound)
    total = np.zeros_like(sc.stereo)
    for oid in sorted(sc.object_audio):
        y = sc.object_audio[oid]
        assert y.dtype == np.float32 and y.shape == sc.stereo.shape
        first = min(e.start for e in sc.scene.sound_events if e.object_id == oid)
        quiet = y[:, : int((first - 0.01) * sc.scene.sample_rate)]
        assert np.abs(quiet).max(initial=0.0) <= 1e-6 * np.abs(y).max()  # nothing before its first event
        total += y
    assert np.array_equal(total, sc.stereo)  # exactly the float32 sum, in id order
    np.testing.assert_allclose(sc.mono, sc.stereo.mean(axis=0), atol=1e-7)

    scene = read_scene(tmp_path / sc.name)
    assert object_audio_ids(scene) == with_sound
    stereo = load_stereo(scene)
    read_back = {oid: load_object_audio(scene, oid) for oid in with_sound}
    for oid, y in read_back.items():
        assert y.shape == stereo.shape
        assert np.abs(y - sc.object_audio[oid]).max() <= 1.0 / 32767 + 1e-6  # 16-bit PCM
    step = 1.0 / 32767
    assert np.abs(sum(read_back.values()) - stereo).max() <= (len(read_back) + 1) * step

    # a silent object has no stem: the error names the file and lists the objects that have one
    silent = next(o.id for o in scene.objects if o.id not in with_sound)
    with pytest.raises(DataError, match=rf"objects/{silent}\.wav: .*no audio of its own.*fix: .*{with_sound[0]}"):
        load_object_audio(scene, silent)

    # a scene written before per-object audio existed still loads; only the stems are missing
    shutil.rmtree(tmp_path / sc.name / "audio" / "objects")
    old = read_scene(tmp_path / sc.name)
    assert object_audio_ids(old) == [] and load_stereo(old).shape == stereo.shape
    with pytest.raises(DataError, match=r"objects/\d+\.wav: the scene has no per-object audio \(fix: regenerate"):
        load_object_audio(old, with_sound[0])


@needs_generator
def test_each_stem_carries_its_own_objects_time_difference() -> None:
    """Anechoic scene with overlapping sources: in every frame window where an object sounds throughout, its
    stem's GCC-PHAT delay is its own geometric TDoA (within 50 µs), even while the others sound too."""
    from soundmask.synth.acoustics import geometric_tdoa
    from soundmask.synth.generator import SynthConfig, generate_scene

    sc = generate_scene(SynthConfig(preset="scene3d", width=48, height=40, frames=6, rt60_max=0.0), 29)
    scene, sr = sc.scene, sc.scene.sample_rate
    assert len(sc.object_audio) == 3
    checked = 0
    for oid, y in sc.object_audio.items():
        obj = scene.object(oid)
        for f in scene.frames:
            if not any(e.object_id == oid and e.start <= f.time and e.end >= f.time + 1 for e in scene.sound_events):
                continue
            a = int(round(f.time * sr))
            win = y[:, a + 441 : a + sr - 441]
            if np.sqrt(np.mean(win**2)) < 1e-4:
                continue
            est = gcc_phat(win[0], win[1], sr, max_tau=0.25 / scene.speed_of_sound)
            true = geometric_tdoa(obj.positions[0], f.mic_left, f.mic_right, scene.speed_of_sound)
            assert abs(est - true) <= 50e-6, f"object {oid} frame {f.index}: {est * 1e6:.1f} vs {true * 1e6:.1f} µs"
            checked += 1
    assert checked >= 6


def test_write_scene_checks_object_audio(tmp_path: Path) -> None:
    from soundmask.data.scene import write_scene
    from soundmask.data.types import Camera, Intrinsics, Scene, SceneFrame, SoundObject

    k = Intrinsics(20.0, 20.0, 8.0, 8.0, 16, 16)
    frames = [SceneFrame(0, 0.0, "input/00000.png", Camera(k, np.eye(4)))]
    objects = [SoundObject(1, "dog", True, "", np.zeros((1, 3)))]
    scene = Scene(frames=frames, objects=objects, sound_events=[], fps=1.0, sample_rate=8000)
    rgb = np.zeros((1, 16, 16, 3), np.uint8)
    stereo = np.zeros((2, 8000), np.float32)
    with pytest.raises(ValueError, match="not an object"):
        write_scene(tmp_path / "a", scene, rgb, sound_masks=np.zeros((1, 16, 16), bool), stereo=stereo,
                    object_audio={7: stereo})  # fmt: skip
    with pytest.raises(ValueError, match="shape"):
        write_scene(tmp_path / "a", scene, rgb, sound_masks=np.zeros((1, 16, 16), bool), stereo=stereo,
                    object_audio={1: stereo[:, :10]})  # fmt: skip
    loud = np.full((2, 8000), 1.5, np.float32)  # a stem past full scale is written as float, not clipped
    out = write_scene(tmp_path / "b", scene, rgb, sound_masks=np.zeros((1, 16, 16), bool), stereo=stereo,
                      object_audio={1: loud})  # fmt: skip
    from soundmask.data.scene import load_object_audio

    np.testing.assert_array_equal(load_object_audio(out, 1), loud)
