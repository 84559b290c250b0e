"""Sound library of the scene generator: discovery, rendering of every category, determinism, timelines."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from soundmask.data.types import SoundObject
from soundmask.errors import ConfigError
from soundmask.synth import sounds
from soundmask.synth.sounds import (
    KINDS,
    SoundLibrary,
    make_timeline,
    render_object_track,
    render_tracks,
)

SR = 22050
TUX_PRESENT = any(sounds.TUXPAINT_ROOT.rglob("*.ogg")) if sounds.TUXPAINT_ROOT.is_dir() else False


@pytest.fixture(scope="module")
def lib() -> SoundLibrary:
    return SoundLibrary()


def _hash(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


# ------------------------------------------------------------------------------------------- discovery
@pytest.mark.skipif(not TUX_PRESENT, reason="Debian tuxpaint-stamps-default is not installed")
def test_finds_real_tuxpaint_recordings(lib):
    recs = {s.identifier: s for c in lib.categories() for s in lib.sources(c, kinds=["recording"])}
    for ident, cat in [
        ("tuxpaint:animals/mammals/dogs/dog.ogg", "dog"),
        ("tuxpaint:animals/birds/rooster.ogg", "chicken"),
        ("tuxpaint:hobbies/music/string/violin.ogg", "violin"),
        ("tuxpaint:household/Washing-machine.ogg", "washing_machine"),
        ("tuxpaint:animals/mammals/bovines/cow.ogg", "cow"),
    ]:
        assert ident in recs, ident
        assert any(s.identifier == ident for s in lib.sources(cat))
    assert all("_desc" not in i for i in recs)
    cats_with_rec = [c for c in lib.categories() if lib.sources(c, kinds=["recording"])]
    assert len(cats_with_rec) >= 50, cats_with_rec
    assert len(lib.sources("person", kinds=["recording"])) >= 100  # spoken digits/letters, face voices
    for s in recs.values():
        assert Path(s.file).is_file() and s.licence.startswith("GPL-2.0") and "Tux Paint" in s.attribution
    # silent files of the package (e.g. wombat.ogg) are skipped, not offered
    assert not any("wombat" in i for i in recs)


def test_every_category_has_a_procedural_source_and_kinds_are_ordered(lib):
    assert len(lib.categories()) >= 100
    for c in lib.categories():
        srcs = lib.sources(c)
        assert srcs and srcs[-1].kind == "noise"
        assert [KINDS.index(s.kind) for s in srcs] == sorted(KINDS.index(s.kind) for s in srcs)
        for s in srcs:
            assert lib.source(s.identifier).identifier == s.identifier
            assert s.licence and s.attribution


def test_gm_and_speech_are_found_when_installed(lib):
    if lib.soundfont is not None:
        gm = lib.sources("violin", kinds=["gm"])
        assert gm and gm[0].options["program"] == 40 and Path(gm[0].file).is_file()
        assert lib.sources("piano", kinds=["gm"])[0].options["program"] == 0
        assert lib.sources("drum", kinds=["gm"])[0].options["bank"] == 128
        assert lib.sources("phone", kinds=["gm"])[0].options["program"] == 124
    if lib.espeak is not None:
        assert lib.sources("person", kinds=["speech"]) and lib.sources("radio", kinds=["speech"])
    if sounds.find_soundfont() is None or sounds._load_fluidsynth() is None:
        pytest.skip("no soundfont/pyfluidsynth: GM sources not checked")


# ------------------------------------------------------------------------------------------- rendering
def test_every_category_and_kind_renders_non_silent_finite_audio(lib):
    rng = np.random.default_rng(3)
    n = round(1.3 * SR)
    for c in lib.categories():
        for kind in lib.kinds(c):
            src = lib.sources(c, kinds=[kind])[0]
            y = lib.render(src, 1.3, SR, rng)
            assert y.dtype == np.float32 and y.shape == (n,), (c, kind)
            assert np.isfinite(y).all(), (c, src.identifier)
            rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
            assert rms > 0.01, (c, src.identifier, rms)
            assert np.abs(y).max() <= sounds.PEAK_LIMIT + 1e-6


def test_unknown_category_and_empty_library_still_sound():
    bare = SoundLibrary(tuxpaint_root=False, soundfont=False, espeak=False)
    assert set(bare.categories()) == set(sounds.CATEGORY_TABLE)
    assert all({s.kind for s in bare.sources(c)} == {"noise"} for c in bare.categories())
    for c in ["dog", "person", "piano", "no_such_thing"]:
        y = bare.render(bare.choose(c, np.random.default_rng(0)), 0.8, 16000, np.random.default_rng(1))
        assert y.shape == (12800,) and np.sqrt(np.mean(y**2)) > 0.01
    with pytest.raises(ConfigError):
        bare.source("gm:nothing:0:0:melody")


def test_length_is_exact_for_any_duration(lib):
    src = lib.sources("dog")[0]
    for d in (0.001, 0.37, 2.5, 9.0):
        assert lib.render(src, d, 44100, np.random.default_rng(0)).shape == (round(d * 44100),)
    assert lib.render(src, 0.0, 44100, np.random.default_rng(0)).shape == (0,)


_DET_CATS = ["dog", "violin", "drum", "person", "radio", "fan", "phone", "bird"]


def _det_hashes(lib: SoundLibrary, seed: int) -> dict[str, str]:
    out = {}
    for c in _DET_CATS:
        for kind in lib.kinds(c):
            s = lib.sources(c, kinds=[kind])[0]
            out[s.identifier] = _hash(lib.render(s, 4.5, SR, np.random.default_rng(seed)))
    return out


def test_same_seed_is_byte_identical_across_processes_and_different_seed_differs(lib):
    a, b, other = _det_hashes(lib, 11), _det_hashes(lib, 11), _det_hashes(lib, 12)
    assert a == b
    for ident in a:  # every kind: recordings tile with random excerpts/gaps, GM/speech/noise draw new content
        assert a[ident] != other[ident], ident
    code = (
        f"import json, numpy as np, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import test_synth_sounds as t; "
        "from soundmask.synth.sounds import SoundLibrary; print(json.dumps(t._det_hashes(SoundLibrary(), 11)))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    import json

    assert json.loads(res.stdout.strip().splitlines()[-1]) == a  # FluidSynth/espeak-ng are deterministic too


# -------------------------------------------------------------------------------------------- timeline
def _check_timeline(events, objects, duration, min_on, min_gap, exclusive):
    ids = {o.id for o in objects}
    silent_by_design = {o.id for o in objects if not o.sounding}
    per = {}
    for e in events:
        assert e.object_id in ids and e.object_id not in silent_by_design
        assert 0.0 <= e.start < e.end <= duration + 1e-9
        assert e.end - e.start >= min_on - 1e-6
        per.setdefault(e.object_id, []).append(e)
    for evs in per.values():
        evs.sort(key=lambda e: e.start)
        for a, b in itertools.pairwise(evs):
            assert b.start - a.end >= min_gap - 1e-6
        if duration >= min_on + min_gap:
            assert duration - sum(e.end - e.start for e in evs) >= min_gap - 1e-6  # some silence
    if exclusive:
        s = sorted(events, key=lambda e: e.start)
        assert all(b.start >= a.end - 1e-9 for a, b in itertools.pairwise(s))
    if any(o.sounding for o in objects) and duration >= min_on:
        assert events
    return per


@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 6),
    duration=st.floats(1.0, 30.0),
    min_on=st.floats(0.2, 2.0),
    min_gap=st.floats(0.0, 1.5),
    exclusive=st.booleans(),
)
def test_timeline_respects_lengths_and_gaps(seed, n, duration, min_on, min_gap, exclusive):
    rng = np.random.default_rng(seed)
    objects = [SoundObject(i + 1, "dog", sounding=bool(i % 3 != 2) or n == 1) for i in range(n)]
    ev = make_timeline(objects, duration, rng, min_on=min_on, min_gap=min_gap, p_silent=0.3, exclusive=exclusive)
    _check_timeline(ev, objects, duration, min_on, min_gap, exclusive)
    ev2 = make_timeline(
        objects,
        duration,
        np.random.default_rng(seed),
        min_on=min_on,
        min_gap=min_gap,
        p_silent=0.3,
        exclusive=exclusive,
    )
    assert [(e.object_id, e.start, e.end) for e in ev] == [(e.object_id, e.start, e.end) for e in ev2]


def test_timeline_has_distractors_and_rejects_bad_arguments():
    objects = [SoundObject(i, "cat") for i in range(1, 9)]
    never = 0
    for seed in range(20):
        ev = make_timeline(objects, 20.0, np.random.default_rng(seed), p_silent=0.4)
        never += len(objects) - len({e.object_id for e in ev})
        assert ev
    assert never > 0  # some objects never sound: distractors
    assert make_timeline([SoundObject(1, "cat", sounding=False)], 10.0, np.random.default_rng(0)) == []
    assert make_timeline([1, 2], 10.0, np.random.default_rng(0), p_silent=0.0)  # bare ids work
    with pytest.raises(ConfigError):
        make_timeline(objects, -1.0, np.random.default_rng(0))


def test_object_track_is_silent_between_events_and_sounds_in_each(lib):
    objects = [SoundObject(1, "dog"), SoundObject(2, "piano"), SoundObject(3, "fan", sounding=False)]
    dur = 12.0
    events = make_timeline(objects, dur, np.random.default_rng(5), min_on=1.0, min_gap=0.8, p_silent=0.0)
    tracks, out = render_tracks(lib, objects, events, dur, SR, np.random.default_rng(6))
    assert set(tracks) == {1, 2, 3} and not tracks[3].any()
    assert len(out) == len(events) and all(e.source for e in out)
    for oid in (1, 2):
        tr = tracks[oid]
        assert tr.shape == (int(dur * SR),) and tr.dtype == np.float32
        mask = np.zeros(len(tr), bool)
        for e in out:
            if e.object_id == oid:
                a, b = round(e.start * SR), round(e.end * SR)
                mask[a:b] = True
                assert np.sqrt(np.mean(tr[a:b] ** 2)) > 0.01
        assert not tr[~mask].any()  # exactly silent outside events
        assert len({e.source for e in out if e.object_id == oid}) == 1  # one source per object
    t2, out2 = render_tracks(lib, objects, events, dur, SR, np.random.default_rng(6))
    assert all(_hash(tracks[k]) == _hash(t2[k]) for k in tracks) and out == out2
    tr, ev = render_object_track(
        lib, "dog", events, dur, SR, np.random.default_rng(0), object_id=1, source="noise:call:dog"
    )
    assert ev and all(e.source == "noise:call:dog" and e.object_id == 1 for e in ev)
