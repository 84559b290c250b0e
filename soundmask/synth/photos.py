"""Real-photo AVSBench clips (presets ``s4real``, ``ms3real``): photographic cut-outs pasted on photographs.

The 2D methods trained only on our OpenGL renders fail on real photos; these presets give them real pixels and
real sounds, with exact ground truth, by copy-paste composition (Ghiasi et al., "Simple Copy-Paste is a Strong
Data Augmentation Method for Instance Segmentation", CVPR 2021).

Material (all offline, from Debian packages and scikit-image; nothing is downloaded):

objects
    Tux Paint stamps (``tuxpaint-stamps-default``, ``/usr/share/tuxpaint/stamps/**.png``): photographic
    cut-outs with an alpha channel. A stamp with a real recording of the same stem (``<stem>.ogg``, not silent)
    can sound; the others are silent distractors only. Clip-art is left out: ``symbols/``, flags, road signs,
    every ``cartoon/`` folder, PNGs with an ``.svg`` twin (vector drawings), ``*_mirror`` copies, a list of
    drawn stamps (:data:`_CLIPART`) and stamps smaller than :data:`MIN_STAMP_PX`. The category is a readable
    snake_case name from the stem (:func:`stamp_category`: ``firetruck``, ``cow_white`` → ``cow``).
backgrounds
    scikit-image's bundled photographs (:data:`SKIMAGE_BACKGROUNDS`) and the nature wallpapers of Debian
    ``mate-backgrounds`` (``/usr/share/backgrounds/mate/nature/*.jpg``).

Licences: stamps and recordings are GPL-2.0-or-later (:data:`~soundmask.synth.sounds.TUXPAINT_LICENCE`), the
MATE wallpapers GPL-2.0-or-later with per-file authors (:data:`MATE_AUTHORS`), the scikit-image photos CC0 or
public domain (:data:`SKIMAGE_BACKGROUNDS`). :func:`generate_dataset` writes the licence and attribution of
every asset a dataset uses to ``<subset>_licenses.csv`` beside the metadata CSV.

Split by asset, not by clip: every stamp and every background belongs to exactly one of train/val/test
(:data:`SPLIT_FRACTIONS` = 70/10/20). A stamp's split is a stable hash of its *group* — the stem without variant
suffixes (``frog-1`` ~ ``frog``, ``pig_golden2`` ~ ``pig_golden``, ``gnu-baby`` ~ ``gnu-stand``; a photo that
ships in two folders counts once) joined with every stamp whose recording is sample-identical
(``beaver``/``badger``). Backgrounds are few, so each source (scikit-image, MATE) is ordered by the same kind of
hash and cut 70/10/20 by rank, at least one per split: every split has photos of both sources.
A clip's split is :func:`~soundmask.synth.config.split_of` of its seed and it draws only assets of that split,
so the ``test`` clips show objects, sounds and backgrounds never seen in training. :func:`photo_assets` lists
the assets of a split.

Composition of a clip (:func:`generate_photo_clip`):

* ``s4real``: 2–3 objects, exactly one sounding (a stamp with a recording) and 1–2 silent ones, the first of
  which also has a recording of another category where the split has one (so its audio can be swapped in);
  ``ms3real``: 3–4 objects with 2–3 sounding and at least one silent. Silent objects never share a category
  with a sounding one (the mono mixture could not tell them apart).
* a background photo, randomly cropped (50–100 % of its shorter side), scaled to the frame and flipped;
* objects pasted in a random depth order, each scaled so its longer side is 25–65 % of the frame (at most
  :data:`MAX_UPSCALE` × its native size), flipped with p = ½, with a small brightness change, anywhere in the
  frame (partly outside is allowed); later objects occlude earlier ones. An object's instance mask is its
  visible alpha (> ½) after occlusion; a placement is redrawn when an object keeps < 40 % of its full area or
  < 1 % of the frame (sounding objects: < 50 %), and a silent object that cannot be placed is replaced/dropped;
* per clip, colour jitter (brightness, contrast, saturation ±25 %, hue ±0.03), Gaussian blur (p = 0.3), and per
  frame Gaussian noise and JPEG compression (p = 0.6, quality 55–92) — mild;
* 5 frames of the same composite (static camera; the objects do not move): the frames differ only by their
  sensor noise and compression, so the masks of all frames are the same.

Audio (16 kHz mono, 5 s): each object with a recording gets its own track — the recording (loaded, trimmed and
loudness-normalised by :class:`~soundmask.synth.sounds.SoundLibrary`, RMS −20 dBFS), tiled over the clip with
0.05–0.4 s gaps from a random offset, redrawn until every 1-s window has sound. The clip's audio is the sum of
the sounding tracks (``ms3real``: random gains −6..0 dB), peak-limited to 0.9 like the rendered presets;
:attr:`Clip.object_audio` holds every track after the same gain and limit (silent objects too), and the
sounding ones sum exactly to the clip's audio (``s4real``: the sounding object's track *is* the audio). The
sound mask of every frame is the union of the sounding objects' instance masks.

Determinism: every random choice comes from ``numpy.random.SeedSequence([seed, preset index])`` (layout,
photometric and sound streams), so preset + seed + installed packages give identical clips.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from soundmask.data.io import atomic_path, read_audio
from soundmask.data.types import Clip
from soundmask.errors import ConfigError, DataError

from .config import SPLITS, SynthConfig, split_of
from .room import _skimage_data_dir
from .sounds import TUXPAINT_ATTRIBUTION, TUXPAINT_LICENCE, TUXPAINT_ROOT, SoundLibrary, SoundSource

__all__ = [
    "MATE_ROOT",
    "PhotoAssets",
    "PhotoBackground",
    "PhotoScene",
    "SPLIT_FRACTIONS",
    "Stamp",
    "asset_split",
    "generate_photo_clip",
    "photo_assets",
    "stamp_category",
    "write_licences",
]

MATE_ROOT = Path("/usr/share/backgrounds/mate/nature")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train / val / test share of the asset groups
MIN_STAMP_PX = 64  # stamps whose longer side is smaller are left out (they would be upscaled too much)
MAX_UPSCALE = 3.0
SIZE_RANGE = (0.25, 0.65)  # an object's longer side, as a fraction of the frame's shorter side
MIN_VISIBLE = 0.40  # of an object's full (alpha) area
MIN_VISIBLE_SOUNDING = 0.50
MIN_FRAME_FRACTION = 0.01
ALPHA_CUT = 0.5
_SPLIT_SALT = "soundmask-photo-split-v1"

MATE_LICENCE = "GPL-2.0-or-later"
MATE_AUTHORS: dict[str, str] = {  # /usr/share/doc/mate-backgrounds/copyright
    "Aqua.jpg": "© 2008 Charles Barbin",
    "LadyBird.jpg": "© 2008 Charles Barbin",
    "YellowFlower.jpg": "© 2008 Charles Barbin",
    "Garden.jpg": "© 2008 Charles Barbin",
    "Blinds.jpg": "© 2008 Lennart Poettering, Andrea Cimitan",
    "Dune.jpg": "© 2007 Marco Cogoni, 2008 Hylke Bons",
    "FreshFlower.jpg": "© 2005 Jens Ansorg",
    "GreenMeadow.jpg": "© 2005 Timothy Schellhase, 2008 Lapo Calamandrei",
    "RainDrops.jpg": '© 2008 "blackcombwhistler07"',
    "Storm.jpg": "© 2008 Sergey Nazarov",
    "TwoWings.jpg": "© 2008 Charles Barbin, Hylke Bons",
    "Wood.jpg": "© 2008 Jean-François Fortin Tam",
}
# scikit-image's bundled real photographs (licences from the docstrings of skimage.data); test patterns,
# microscopy and drawings are left out, and so is motorcycle_left (Middlebury stereo data: no licence stated)
SKIMAGE_BACKGROUNDS: dict[str, tuple[str, str]] = {
    "astronaut.png": ("public domain", "Eileen Collins, NASA Great Images database (scikit-image data)"),
    "chelsea.png": ("CC0-1.0", "Chelsea the cat © Stefan van der Walt (scikit-image data)"),
    "coffee.png": ("CC0-1.0", "coffee cup © Rachel Michetti, Pikolo Espresso Bar (scikit-image data)"),
    "rocket.jpg": ("public domain", "DSCOVR launch on Falcon 9, SpaceX (scikit-image data)"),
    "hubble_deep_field.jpg": ("public domain", "Hubble eXtreme Deep Field, NASA (scikit-image data)"),
    "camera.png": ("CC0-1.0", "cameraman © Lav Varshney (scikit-image data)"),
    "brick.png": ("CC0-1.0", "brick wall, CC0Textures Bricks25 (scikit-image data)"),
    "grass.png": ("CC0-1.0", "grass © linolafett, DeviantArt (scikit-image data)"),
    "gravel.png": ("CC0-1.0", "gravel, CC0Textures Gravel04 (scikit-image data)"),
}

# ------------------------------------------------------------------------------------------- stamp choice
_EXCLUDED_PREFIXES = (
    "symbols/",  # letters, digits, faces, chess, money, shapes
    "town/flags/",
    "town/roadsigns/",
    "clothes/hats/",  # vector drawings
    "naturalforces/",  # lightning (drawn), fire and smoke (not objects)
    "seasonal/easter/",  # drawings
    "seasonal/hanukkah/",  # drawings
    "seasonal/newyears/",  # drawings, fireworks
)
_CLIPART = frozenset(  # drawn (not photographed) stamps outside the folders above
    {
        "animals/mammals/hedgehog.png",
        "clothes/button.png",
        "food/pizza.png",
        "medical/tooth.png",
        "military/final-roll-call.png",  # a memorial (boots, rifle, helmet), and its sound is a bugle call
        "people/body_parts/eye.png",
        "town/monuments/inukshuk-outline.png",
        "seasonal/christmas/Santa.png",
        "seasonal/christmas/bow.png",
        "seasonal/christmas/hard_candy.png",
        "seasonal/christmas/lamp.png",
        "seasonal/christmas/santahat.png",
        "seasonal/christmas/star.png",
        "seasonal/christmas/stocking.png",
        "seasonal/christmas/tree.png",
        "seasonal/christmas/xmas_tp_bulb.png",
        "seasonal/halloween/bat_left.png",
        "seasonal/halloween/blackcat.png",
        "seasonal/halloween/ghost.png",
        "seasonal/halloween/grave-c.png",
        "seasonal/halloween/skull.png",
        "seasonal/halloween/spider.png",
    }
)
_CATEGORY_ALIASES = {  # cleaned stem → category (variants of one kind of object share it)
    "cow_white": "cow", "pig_golden": "pig", "sheep_lamb": "sheep", "heron_greatblue": "heron",
    "heron_greatblue_flying": "heron", "little_penguin": "penguin", "magellanic_penguin": "penguin",
    "european_bear": "bear", "edward_bear": "teddy_bear", "gnu_baby": "gnu", "gnu_baby_stand": "gnu",
    "gnu_sitting": "gnu", "gnu_stand": "gnu", "tiger_sumatran": "tiger", "donkey_eating": "donkey",
    "rabbit_little": "rabbit", "tamarin_emperor": "tamarin", "helmeted_guineafowl": "guineafowl",
    "chicken_profile": "chicken", "albino_peahen": "peahen", "pink_flamingo": "flamingo",
    "heron": "heron", "silver_gull": "gull", "rainbow_lorikeet": "lorikeet", "adelaide_rosella": "rosella",
    "indian_blackbuck": "blackbuck", "rhino_black": "rhinoceros", "murray_mussel": "mussel",
    "drum_tomtom_floor": "drum", "cymbal_crash": "cymbal", "scissors_small_closed": "scissors",
    "scissors_small_open": "scissors", "camera_35mm": "camera", "mallet_metal": "mallet",
    "guitar_classical": "guitar", "guitar_electric": "electric_guitar", "guitar_electric_bass": "bass_guitar",
    "apple_fuji": "apple", "apple_granny_smith": "apple", "apple_green": "apple", "apple_red": "apple",
    "apple_sierra_beauty": "apple", "apricot_whole": "apricot", "cherry_stella": "cherry",
    "orange_seville": "orange", "sliced_lime": "lime", "sliced_orange": "orange", "walnut_shelled": "walnut",
    "pumpkin_small": "pumpkin", "cep": "mushroom", "candy_cane_photo": "candy_cane",
    "christmas_tree_photo": "christmas_tree", "german_christmas_toy": "nutcracker_doll",
    "christmas_pudding": "pudding", "mince_pie": "pie", "roast_turkey": "roast", "grave": "gravestone",
    "moon_3qt": "moon", "moon_crescent": "moon", "moon_full": "moon", "sedan_police": "police_car",
    "wrench_adjustable": "wrench", "wrench_plumbers": "wrench", "paintbrush_large": "paintbrush",
    "pen_dryerase": "pen", "measuring_tape": "tape_measure", "inukshuk_photo": "inukshuk",
    "fireman": "firefighter", "home_compost_bin": "compost_bin", "uk_post_box": "mailbox",
    "usps_mailbox": "mailbox", "pitcher_small": "pitcher", "mercurythermometer": "thermometer",
    "bandage_adhesive": "bandage", "old_naval_shell": "artillery_shell", "f22_raptor": "fighter_jet",
    "infantry_stryker": "armoured_vehicle", "bradley": "tank", "ww2_german_gun": "tank",
    "7spoke": "wheel", "747": "airplane", "wheel_tractor": "wheel", "voyager": "space_probe",
    "rubberduck": "rubber_duck", "garbagecan": "garbage_can", "mandarine": "mandarin", "plyers": "pliers",
    "clothespin_new": "clothespin", "clothespin_old": "clothespin", "xmaswreath": "wreath",
    "coraltrout": "coral_trout", "wildboar": "wild_boar", "crowned_crane": "crane", "bluegroper": "groper",
    "balloon": "hot_air_balloon", "chinesejunk": "junk_boat",
    "walnutboat": "sailboat", "pink_tricycle": "tricycle", "green_korean_bus": "bus",
    "sportscar": "sports_car", "garbagetruck": "garbage_truck", "beetle": "car", "sedan": "car",
    "indycar": "race_car", "lettuce_bolted": "lettuce", "redlettuce": "lettuce", "garlics": "garlic",
    "chilepepper": "chili_pepper", "yellowpepper": "pepper", "pattypan_squash": "squash",
    "holly_leaves": "holly", "holm_oak": "tree", "liberia_palm": "palm_tree", "chuvanna_plastic_poo": "flower",
    "red_gazania": "gazania", "whitestar_petunia": "petunia", "yellow_flower": "flower",
    "anemone_red": "anemone", "australian_rules_football": "football", "rugby_goal_posts": "goal_posts",
    "tennis_racket": "tennis_racket", "trophy_cup": "trophy", "wheelie_bin": "wheelie_bin",
    "nandou": "rhea", "tucan": "toucan", "xanthia": "moth", "brown_slug": "slug", "woodlouse": "woodlouse",
    "gander": "goose", "drake": "duck", "doe": "deer", "dromedary": "camel", "pepper_grinder": "pepper_mill",
    "cylinder": "gas_cylinder", "glass": "drinking_glass", "hen": "chicken", "rooster": "rooster",
    "mountaingoat": "mountain_goat", "sea_lion": "sea_lion", "spacewalk": "astronaut",
    "apollo_lander": "lunar_lander", "grannysmith": "doll", "cementmixer": "cement_mixer",
}  # fmt: skip


def _clean_stem(stem: str) -> str:
    s = stem.lower().replace("-", "_")
    s = re.sub(r"_mirror$", "", s)
    s = re.sub(r"^\d+_", "", s)  # planets: 3_earth
    s = re.sub(r"(?<=[a-z])_?\d+[a-z]?$", "", s)  # frog_1, pig_golden2, tree336, fireman240a
    return s


def stamp_category(stem: str) -> str:
    """A readable snake_case category from a stamp's file stem (``firetruck``, ``cow_white`` → ``cow``)."""
    s = _clean_stem(stem)
    if re.fullmatch(r"grave_[a-z]", s):
        s = "grave"
    if s.startswith("dreydl"):
        s = "dreidel"
    s = _CATEGORY_ALIASES.get(s, s)
    return s or stem.lower()


def _group_of(stem: str) -> str:
    """The near-duplicate group of a stamp: variants of one photo (``frog``/``frog-1``, ``gnu-baby``/``gnu-stand``,
    ``cep``/``cep-2``) share it."""
    s = stem.lower()
    s = re.sub(r"_mirror$", "", s)
    s = s.split("-")[0]
    s = re.sub(r"(?<=[a-z])_?\d+[a-z]?$", "", s)
    return s


def asset_split(key: str, salt: str = _SPLIT_SALT) -> str:
    """The split (train/val/test, :data:`SPLIT_FRACTIONS`) of an asset group ``key``, by a stable hash."""
    u = _hash_unit(key, salt)
    a, b = SPLIT_FRACTIONS[0], SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]
    return SPLITS[0] if u < a else (SPLITS[1] if u < b else SPLITS[2])


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Stamp:
    """A Tux Paint cut-out. ``recording`` is its same-stem OGG when that has a signal (then it can sound)."""

    rel: str  # path relative to the stamps folder, e.g. "animals/birds/rooster.png"
    path: Path
    category: str
    group: str  # split key (near-duplicates and stamps with an identical recording share it)
    split: str
    size: tuple[int, int]  # (width, height) of the PNG
    recording: Path | None = None

    @property
    def asset(self) -> str:
        return f"tuxpaint:{self.rel}"

    @property
    def recording_asset(self) -> str:
        return f"tuxpaint:{Path(self.rel).with_suffix('.ogg').as_posix()}" if self.recording else ""


@dataclass(frozen=True)
class PhotoBackground:
    """A background photograph and where it came from."""

    asset: str  # e.g. "skimage:chelsea.png", "mate-backgrounds:nature/Aqua.jpg"
    path: Path
    split: str
    licence: str
    attribution: str


@dataclass(frozen=True)
class PhotoAssets:
    """The assets of one split (or of all splits): stamps that can sound, silent-only stamps, backgrounds."""

    sounding: tuple[Stamp, ...]
    silent: tuple[Stamp, ...]
    backgrounds: tuple[PhotoBackground, ...]

    @property
    def stamps(self) -> tuple[Stamp, ...]:
        return self.sounding + self.silent

    def names(self) -> set[str]:
        """Every asset id (stamp images, their recordings, backgrounds)."""
        out = {s.asset for s in self.stamps} | {b.asset for b in self.backgrounds}
        return out | {s.recording_asset for s in self.sounding}

    def counts(self) -> dict[str, int]:
        return {"sounding": len(self.sounding), "silent": len(self.silent), "backgrounds": len(self.backgrounds)}


# -------------------------------------------------------------------------------------------- discovery


def _excluded(rel: str, path: Path) -> bool:
    if rel.startswith(_EXCLUDED_PREFIXES) or rel in _CLIPART:
        return True
    if "cartoon" in rel.split("/")[:-1] or path.stem.lower().endswith("_mirror"):
        return True
    if rel.startswith("clothes/t_"):  # outline drawings of clothes
        return True
    return path.with_suffix(".svg").is_file()  # a render of a vector drawing


def _recording_digest(ogg: Path) -> str | None:
    """A digest of the decoded samples, or None when the file is missing, unreadable or silent."""
    try:
        if ogg.stat().st_size < 512:
            return None
        audio, sr = read_audio(ogg)
    except (OSError, DataError):
        return None
    if audio.size == 0 or float(np.abs(audio).max()) <= 1e-3:
        return None
    q = np.round(audio.mean(axis=0) * 32767).astype(np.int16)
    return hashlib.sha1(q.tobytes() + str(sr).encode()).hexdigest()


@functools.lru_cache(maxsize=4)
def _discover_stamps(root: Path) -> tuple[Stamp, ...]:
    found: list[tuple[str, Path, tuple[int, int], Path | None, str | None]] = []
    for p in sorted(root.rglob("*.png")):
        rel = p.relative_to(root).as_posix()
        if _excluded(rel, p):
            continue
        try:
            with Image.open(p) as im:
                size = im.size
                has_alpha = "A" in im.getbands() or "transparency" in im.info
        except OSError:
            continue
        if not has_alpha or max(size) < MIN_STAMP_PX:
            continue
        ogg = p.with_suffix(".ogg")
        digest = _recording_digest(ogg) if ogg.is_file() else None
        found.append((rel, p, size, ogg if digest else None, digest))
    # split groups: the stem group, joined (union-find) across stamps whose recordings are sample-identical
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for _rel, p, _size, _ogg, digest in found:
        g = find(_group_of(p.stem))
        if digest:
            d = find("audio:" + digest)
            lo, hi = sorted((g, d), key=lambda k: (k.startswith("audio:"), k))
            parent[hi] = lo
    out = []
    for rel, p, size, rec, _digest in found:
        group = find(_group_of(p.stem))
        out.append(Stamp(rel, p, stamp_category(p.stem), group, asset_split("stamp:" + group), size, rec))
    return tuple(out)


def _hash_unit(key: str, salt: str = _SPLIT_SALT) -> float:
    return int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "big") / 2.0**64


def _ranked_splits(keys: list[str]) -> dict[str, str]:
    """Splits for a small family of assets: ordered by their stable hash, the first ~70 % train, then ~10 % val
    and ~20 % test, at least one each (when there are three), so every split gets some of the family."""
    order = sorted(keys, key=lambda k: (_hash_unit(k), k))
    n = len(order)
    n_val = max(1, round(SPLIT_FRACTIONS[1] * n)) if n >= 3 else 0
    n_test = max(1, round(SPLIT_FRACTIONS[2] * n)) if n >= 2 else 0
    n_train = n - n_val - n_test
    return {
        k: SPLITS[0] if i < n_train else SPLITS[1] if i < n_train + n_val else SPLITS[2] for i, k in enumerate(order)
    }


@functools.lru_cache(maxsize=4)
def _discover_backgrounds(mate_root: Path, skimage_dir: Path | None) -> tuple[PhotoBackground, ...]:
    out = []
    if skimage_dir is not None:
        found = {n: v for n, v in SKIMAGE_BACKGROUNDS.items() if (skimage_dir / n).is_file()}
        split = _ranked_splits([f"background:{n}" for n in found])
        for name, (licence, attribution) in found.items():
            out.append(
                PhotoBackground(
                    f"skimage:{name}", skimage_dir / name, split[f"background:{name}"], licence, attribution
                )
            )
    mate = sorted(mate_root.glob("*.jpg"))
    split = _ranked_splits([f"background:{p.name}" for p in mate])
    for p in mate:
        authors = MATE_AUTHORS.get(p.name, "MATE backgrounds contributors")
        out.append(
            PhotoBackground(
                f"mate-backgrounds:{mate_root.name}/{p.name}",
                p,
                split[f"background:{p.name}"],
                MATE_LICENCE,
                f"{p.stem} {authors} (Debian mate-backgrounds)",
            )
        )
    return tuple(out)


def photo_assets(
    split: str | None = None,
    *,
    stamps_root: str | Path | None = None,
    backgrounds_root: str | Path | None = None,
) -> PhotoAssets:
    """The assets of ``split`` (``None``: all), discovered from the installed packages.

    Raises :class:`~soundmask.errors.DataError` naming the package to install when a folder is missing.
    """
    sroot = Path(stamps_root) if stamps_root is not None else TUXPAINT_ROOT
    broot = Path(backgrounds_root) if backgrounds_root is not None else MATE_ROOT
    if not sroot.is_dir():
        raise DataError(
            "no Tux Paint stamps (the s4real/ms3real presets paste them)",
            sroot,
            "install tuxpaint-stamps-default (apt-get install tuxpaint-stamps-default)",
        )
    if not broot.is_dir():
        raise DataError(
            "no MATE nature backgrounds (the s4real/ms3real presets paste objects on them)",
            broot,
            "install mate-backgrounds (apt-get install mate-backgrounds)",
        )
    if split is not None and split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}", fix=f"use one of {', '.join(SPLITS)}")
    stamps = _discover_stamps(sroot.resolve())
    backgrounds = _discover_backgrounds(broot.resolve(), _skimage_data_dir())
    if not any(s.recording for s in stamps) or not backgrounds:
        raise DataError(
            "no stamp with a recording or no background photo found",
            sroot if not stamps else broot,
            "reinstall tuxpaint-stamps-default and mate-backgrounds",
        )
    keep = (lambda s: True) if split is None else (lambda s: s.split == split)
    return PhotoAssets(
        tuple(s for s in stamps if s.recording and keep(s)),
        tuple(s for s in stamps if not s.recording and keep(s)),
        tuple(b for b in backgrounds if keep(b)),
    )


# ------------------------------------------------------------------------------------------ image loading
@functools.lru_cache(maxsize=1024)
def _stamp_rgba(path: Path) -> np.ndarray:
    """The stamp as RGBA uint8, cropped to its alpha's bounding box."""
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGBA"), dtype=np.uint8)
    ys, xs = np.nonzero(a[..., 3] > 8)
    if len(ys) == 0:
        return a
    return np.ascontiguousarray(a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


@functools.lru_cache(maxsize=64)
def _background_rgb(path: Path, max_short_side: int = 512) -> tuple[np.ndarray, bool]:
    """The photo as RGB uint8 (shorter side at most ``max_short_side``) and whether it is greyscale."""
    with Image.open(path) as im:
        im.draft("RGB", (max_short_side * 2, max_short_side * 2))  # JPEG: decode at a reduced size
        grey = im.mode in ("L", "LA", "I", "I;16")
        rgb = im.convert("RGB")
    w, h = rgb.size
    s = max_short_side / min(w, h)
    if s < 1:
        rgb = rgb.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8), grey


@functools.lru_cache(maxsize=1)
def _sound_library() -> SoundLibrary:
    # only the renderer is needed (sources are built per stamp): no discovery of soundfonts or espeak
    return SoundLibrary(tuxpaint_root=False, soundfont=False, espeak=False)


# --------------------------------------------------------------------------------------------- records
@dataclass
class _Placed:
    stamp: Stamp
    sounding: bool
    rgb: np.ndarray  # (h, w, 3) float32 0..1
    alpha: np.ndarray  # (h, w) float32 0..1
    x0: int
    y0: int
    full_area: int  # alpha > ALPHA_CUT pixels of the scaled stamp, inside the frame or not
    mask: np.ndarray  # (H, W) bool, alpha > ALPHA_CUT inside the frame (before occlusion)
    flipped: bool
    object_id: int = 0


@dataclass
class PhotoScene:
    """One generated real-photo clip: the :class:`Clip` and where its pixels and sounds came from."""

    clip: Clip
    seed: int
    preset: str
    split: str
    objects: list[dict[str, Any]]  # per object: id, category, sounding, stamp, recording, visible fraction...
    assets: dict[str, tuple[str, str]]  # asset id → (licence, attribution), for every asset the clip uses
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.clip.name

    def to_clip(self) -> Clip:
        return self.clip


# ------------------------------------------------------------------------------------------- composition
def _scaled_stamp(stamp: Stamp, target: float, flip: bool, gain: float) -> tuple[np.ndarray, np.ndarray]:
    a = _stamp_rgba(stamp.path)
    h0, w0 = a.shape[:2]
    s = min(target / max(h0, w0), MAX_UPSCALE)
    w, h = max(2, round(w0 * s)), max(2, round(h0 * s))
    im = Image.fromarray(a, "RGBA").resize((w, h), Image.Resampling.LANCZOS)  # Pillow premultiplies alpha
    if flip:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    x = np.asarray(im, dtype=np.float32) / 255.0
    return np.clip(x[..., :3] * gain, 0.0, 1.0), x[..., 3]


def _frame_mask(alpha: np.ndarray, x0: int, y0: int, H: int, W: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    h, w = alpha.shape
    ya, yb, xa, xb = max(0, y0), min(H, y0 + h), max(0, x0), min(W, x0 + w)
    if ya < yb and xa < xb:
        m[ya:yb, xa:xb] = alpha[ya - y0 : yb - y0, xa - x0 : xb - x0] > ALPHA_CUT
    return m


def _visible_ok(placed: list[_Placed], H: int, W: int) -> bool:
    """Every object keeps enough of itself after the ones above it (later in the list) are pasted."""
    top = np.zeros((H, W), np.int32)
    for k, q in enumerate(placed):
        top[q.mask] = k + 1
    min_px = MIN_FRAME_FRACTION * H * W
    for k, q in enumerate(placed):
        vis = int((top == k + 1).sum())
        need = MIN_VISIBLE_SOUNDING if q.sounding else MIN_VISIBLE
        if vis < min_px or vis < need * q.full_area:
            return False
    return True


def _place(
    stamp: Stamp, sounding: bool, below: list[_Placed], H: int, W: int, rng: np.random.Generator, tries: int = 25
) -> _Placed | None:
    """Paste ``stamp`` on top of ``below`` at a random scale/position/flip that keeps everyone visible enough."""
    short = min(H, W)
    for t in range(tries):
        hi = SIZE_RANGE[1] - (SIZE_RANGE[1] - SIZE_RANGE[0]) * 0.6 * t / max(1, tries - 1)  # shrink when crowded
        target = float(rng.uniform(SIZE_RANGE[0], hi)) * short
        flip = bool(rng.random() < 0.5)
        gain = float(rng.uniform(0.85, 1.15))
        rgb, alpha = _scaled_stamp(stamp, target, flip, gain)
        h, w = alpha.shape
        cx, cy = rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * H
        x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
        full = int((alpha > ALPHA_CUT).sum())
        q = _Placed(stamp, sounding, rgb, alpha, x0, y0, full, _frame_mask(alpha, x0, y0, H, W), flip)
        if full > 0 and _visible_ok([*below, q], H, W):
            return q
    return None


def _background(bg: PhotoBackground, H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    img, grey = _background_rgb(bg.path)
    h, w = img.shape[:2]
    ch = float(rng.uniform(0.5, 1.0)) * min(h, w * H / W)
    cw = ch * W / H
    x = float(rng.uniform(0, w - cw))
    y = float(rng.uniform(0, h - ch))
    im = Image.fromarray(img).resize((W, H), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = np.asarray(im, dtype=np.float32) / 255.0
    if grey:  # brick, grass, gravel, camera: a mild random tint
        out = np.clip(out * rng.uniform(0.92, 1.08, 3).astype(np.float32), 0.0, 1.0)
    return out


def _photometric(img: np.ndarray, T: int, rng: np.random.Generator) -> np.ndarray:
    """Per-clip colour jitter and blur, then per-frame noise and JPEG: (H, W, 3) float → (T, H, W, 3) uint8."""
    im = Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8))
    im = ImageEnhance.Brightness(im).enhance(float(rng.uniform(0.75, 1.25)))
    im = ImageEnhance.Contrast(im).enhance(float(rng.uniform(0.75, 1.25)))
    im = ImageEnhance.Color(im).enhance(float(rng.uniform(0.75, 1.25)))
    hue = int(round(rng.uniform(-0.03, 0.03) * 255))
    if hue:
        hsv = np.asarray(im.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + hue) % 256
        im = Image.fromarray(hsv, "HSV").convert("RGB")
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    base = np.asarray(im, dtype=np.float32)
    sigma = float(rng.uniform(0.0, 4.0))
    quality = int(rng.integers(55, 93)) if rng.random() < 0.6 else 0
    frames = []
    for _ in range(T):
        f = np.clip(base + rng.normal(0.0, sigma, base.shape) + 0.5, 0, 255).astype(np.uint8)
        if quality:
            buf = io.BytesIO()
            Image.fromarray(f).save(buf, format="JPEG", quality=quality)
            buf.seek(0)
            with Image.open(buf) as j:
                f = np.asarray(j.convert("RGB"), dtype=np.uint8)
        frames.append(f)
    return np.stack(frames)


# ------------------------------------------------------------------------------------------------- audio
def _track(stamp: Stamp, duration: float, sr: int, rng: np.random.Generator, tries: int = 6) -> np.ndarray:
    """The stamp's recording over ``duration`` s (tiled from a random offset), with sound in every 1-s window."""
    assert stamp.recording is not None
    lib = _sound_library()
    src = SoundSource(
        stamp.category, "recording", stamp.recording_asset, str(stamp.recording), TUXPAINT_LICENCE, TUXPAINT_ATTRIBUTION
    )
    n = round(duration * sr)
    best, best_score = None, -1.0
    for _ in range(tries):
        off = int(rng.uniform(0.0, 1.0) * sr)
        y = lib.render(src, (n + off) / sr, sr, rng)[off : off + n]
        wins = [y[i * sr : (i + 1) * sr] for i in range(max(1, n // sr))]
        score = min(float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) for w in wins if len(w))
        if score > best_score:
            best, best_score = y, score
        if score >= 0.01:  # −40 dBFS: every second has sound (the track's RMS is about −20 dBFS)
            break
    assert best is not None
    return best.astype(np.float32)


# ---------------------------------------------------------------------------------------------- the clip
def _pick(pool: list[Stamp], avoid: set[str], used: set[str], rng: np.random.Generator) -> Stamp | None:
    cands = [s for s in pool if s.category not in avoid and s.rel not in used]
    return cands[int(rng.integers(len(cands)))] if cands else None


def generate_photo_clip(
    config: SynthConfig, seed: int, *, progress: Callable[[str], None] | None = None, max_attempts: int = 30
) -> PhotoScene:
    """The real-photo clip of ``seed`` for an ``s4real`` / ``ms3real`` config (see the module docstring)."""
    cfg = config.resolved()
    p = cfg.preset_spec()
    if p.source != "photo":
        raise ConfigError(f"preset {p.name} is not a real-photo preset", fix="use s4real or ms3real")
    assert cfg.width and cfg.height and cfg.frames and cfg.sample_rate and cfg.min_objects and cfg.max_objects
    W, H, T, sr = cfg.width, cfg.height, cfg.frames, cfg.sample_rate
    duration = T / cfg.fps
    say = progress or (lambda _s: None)
    split = split_of(seed) if cfg.split == "auto" else cfg.split
    assets = photo_assets(split)
    if not assets.sounding or not assets.backgrounds:
        raise DataError(f"the {split} split has no stamp with a recording or no background", TUXPAINT_ROOT)
    r_layout, r_photo, r_sound = (
        np.random.default_rng(s) for s in np.random.SeedSequence([int(seed), p.index]).spawn(3)
    )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    say("compose")
    sound_pool = sorted(assets.sounding, key=lambda s: s.rel)
    any_pool = sorted(assets.stamps, key=lambda s: s.rel)
    multi = p.sounding[1] > 1
    for _attempt in range(max_attempts):
        n = int(r_layout.integers(cfg.min_objects, cfg.max_objects + 1))
        n_sound = 1 if not multi else int(r_layout.integers(p.sounding[0], min(p.sounding[1], n - 1) + 1))
        chosen: list[tuple[Stamp, bool]] = []
        used: set[str] = set()
        cats: set[str] = set()
        for _ in range(n_sound):
            s = _pick(sound_pool, cats, used, r_layout)
            if s is None:
                break
            chosen.append((s, True))
            used.add(s.rel)
            cats.add(s.category)
        sounding_cats = set(cats)
        for k in range(n - len(chosen)):
            # the first silent object has a recording when the split has one (its sound can be swapped in)
            s = _pick(sound_pool, sounding_cats, used, r_layout) if k == 0 else None
            s = s or _pick(any_pool, sounding_cats, used, r_layout)
            if s is None:
                break
            chosen.append((s, False))
            used.add(s.rel)
        if sum(snd for _, snd in chosen) < max(1, p.sounding[0]) or len(chosen) < 2:
            continue
        order = [chosen[i] for i in r_layout.permutation(len(chosen))]  # depth order, bottom first
        bg = assets.backgrounds[int(r_layout.integers(len(assets.backgrounds)))]
        placed: list[_Placed] = []
        ok = True
        for stamp, snd in order:
            q = _place(stamp, snd, placed, H, W, r_layout)
            if q is None and not snd:  # a silent object that does not fit: another one, else drop it
                alt = _pick(any_pool, sounding_cats, used | {s.rel for s, _ in chosen}, r_layout)
                q = _place(alt, False, placed, H, W, r_layout) if alt is not None else None
            if q is None and snd:
                ok = False
                break
            if q is not None:
                placed.append(q)
        n_silent = sum(not q.sounding for q in placed)
        if ok and len(placed) >= cfg.min_objects and n_silent >= 1:
            break
    else:
        raise RuntimeError(f"seed {seed}: no layout with every sounding object visible in {max_attempts} attempts")

    # ids: a random permutation, independent of the depth order
    ids = r_layout.permutation(len(placed)) + 1
    for q, i in zip(placed, ids, strict=True):
        q.object_id = int(i)
    canvas = _background(bg, H, W, r_layout)
    inst = np.zeros((H, W), np.uint16)
    for q in placed:
        h, w = q.alpha.shape
        ya, yb, xa, xb = max(0, q.y0), min(H, q.y0 + h), max(0, q.x0), min(W, q.x0 + w)
        if ya >= yb or xa >= xb:
            continue
        a = q.alpha[ya - q.y0 : yb - q.y0, xa - q.x0 : xb - q.x0, None]
        rgb = q.rgb[ya - q.y0 : yb - q.y0, xa - q.x0 : xb - q.x0]
        canvas[ya:yb, xa:xb] = canvas[ya:yb, xa:xb] * (1.0 - a) + rgb * a
        inst[q.mask] = q.object_id
    timings["compose"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    say("photometric")
    frames = _photometric(canvas, T, r_photo)
    timings["photometric"] = time.perf_counter() - t1

    # ---- audio: a track per object with a recording; the mixture is the sum of the sounding ones
    t1 = time.perf_counter()
    say("sound")
    n_samples = round(duration * sr)
    by_id = sorted(placed, key=lambda q: q.object_id)
    tracks: dict[int, np.ndarray] = {}
    gains: dict[int, float] = {}
    for q in by_id:
        if q.stamp.recording is None:
            continue
        tracks[q.object_id] = _track(q.stamp, duration, sr, r_sound).astype(np.float64)
        gains[q.object_id] = 1.0 if not multi else float(10 ** (r_sound.uniform(-6.0, 0.0) / 20))
    sounding_ids = [q.object_id for q in by_id if q.sounding]
    mix = np.sum([tracks[i] * gains[i] for i in sounding_ids], axis=0)
    peak = float(np.abs(mix).max())
    scale = 0.9 / peak if peak > 0.9 else 1.0
    object_audio = {i: (tracks[i] * gains[i] * scale).astype(np.float32)[None] for i in tracks}
    audio = np.zeros((1, n_samples), np.float32)
    for i in sounding_ids:  # exactly the float32 sum of the sounding tracks, in id order
        audio += object_audio[i]
    timings["sound"] = time.perf_counter() - t1

    # ---- ground truth and records
    instances = np.repeat(inst[None], T, axis=0)
    sound = np.isin(inst, sounding_ids)
    masks = np.repeat(sound[None], T, axis=0)
    name = f"{p.name}_{int(seed):06d}"
    sounding_q = [q for q in by_id if q.sounding]
    used_assets: dict[str, tuple[str, str]] = {bg.asset: (bg.licence, bg.attribution)}
    objects = []
    for q in by_id:
        used_assets[q.stamp.asset] = (TUXPAINT_LICENCE, TUXPAINT_ATTRIBUTION)
        if q.object_id in tracks:
            used_assets[q.stamp.recording_asset] = (TUXPAINT_LICENCE, TUXPAINT_ATTRIBUTION)
        vis = int((inst == q.object_id).sum())
        objects.append(
            {
                "id": q.object_id,
                "category": q.stamp.category,
                "sounding": q.sounding,
                "stamp": q.stamp.asset,
                "recording": q.stamp.recording_asset if q.object_id in tracks else "",
                "visible_fraction": round(vis / max(1, q.full_area), 4),
                "flipped": q.flipped,
                "gain_db": round(float(20 * np.log10(gains[q.object_id] * scale)), 3) if q.object_id in gains else None,
            }
        )
    clip = Clip(
        name,
        frames,
        audio,
        sr,
        masks=masks,
        mask_valid=np.ones(T, bool),
        category=sounding_q[0].stamp.category,
        split=split,
        frame_times=np.arange(T, dtype=np.float64) / cfg.fps,
        meta={
            "start_time": 0,
            "seed": int(seed),
            "label": "v1s" if len(sounding_q) == 1 else "v1m",
            "vid": name,
            "background": bg.asset,
        },
        instances=instances,
        instance_categories={q.object_id: q.stamp.category for q in by_id},
        object_audio=object_audio,
    )
    timings["total"] = time.perf_counter() - t0
    return PhotoScene(clip, int(seed), p.name, split, objects, used_assets, timings)


def write_licences(path: str | Path, usage: dict[str, tuple[str, str, int]]) -> Path:
    """Write ``asset,licence,attribution,clips`` (one row per asset a dataset uses) to ``path`` atomically."""
    with atomic_path(Path(path)) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("asset", "licence", "attribution", "clips"))
        for asset in sorted(usage):
            licence, attribution, n = usage[asset]
            w.writerow((asset, licence, attribution, n))
    return Path(path)
