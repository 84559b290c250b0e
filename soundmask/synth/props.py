"""Procedural object meshes, one builder per generator category: the fallback when no furniture model exists
(violin, drum, flute... have none in Sweet Home 3D) or the furniture package is not installed.

Every builder takes a ``numpy.random.Generator`` (colour and proportion variation) and returns a
:class:`~soundmask.synth.meshes.Mesh` in world convention (z up, front facing −y) at roughly real size;
:func:`build` then scales it to the height the caller asks for and stands it on the floor. The shapes are
deliberately simple compositions of boxes, cylinders, cones and spheres — recognisable silhouettes for
segmentation, not art.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .meshes import Mesh, box, capsule, composite, cone, cylinder, normalized, rotation_z, sphere, translation

__all__ = ["BUILDERS", "build"]

Builder = Callable[[np.random.Generator], Mesh]


# ------------------------------------------------------------------------------------------- helpers
def _rx(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[1:3, 1:3] = [[c, -s], [s, c]]
    return m


def _ry(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    return m


def _at(xyz: tuple[float, float, float], *rot: np.ndarray) -> np.ndarray:
    """Rotations applied in order, then a translation to ``xyz``."""
    m = np.eye(4)
    for r in rot:
        m = r @ m
    return translation(xyz) @ m


def _scaled(mesh: Mesh, sx: float, sy: float, sz: float) -> Mesh:
    return mesh.transformed(np.diag([sx, sy, sz, 1.0]))


def _tint(rng: np.random.Generator, base: tuple[int, int, int], spread: int = 25) -> tuple[int, int, int]:
    c = np.clip(np.asarray(base) + rng.integers(-spread, spread + 1, 3), 0, 255)
    return int(c[0]), int(c[1]), int(c[2])


def _pick(rng: np.random.Generator, *colors: tuple[int, int, int]) -> tuple[int, int, int]:
    return colors[int(rng.integers(len(colors)))]


WOOD = ((150, 95, 50), (110, 65, 35), (185, 130, 75), (70, 40, 25))
METAL = ((200, 170, 80), (190, 190, 195), (60, 60, 65))
PLASTIC = ((235, 235, 235), (30, 30, 35), (200, 40, 40), (40, 70, 180), (230, 200, 40))
FUR = ((120, 80, 45), (40, 35, 30), (220, 200, 170), (170, 120, 70), (150, 150, 150), (240, 240, 235))


def _stringed(rng: np.random.Generator, length: float, body_w: float, neck: float, name: str) -> Mesh:
    """Guitar-family silhouette standing upright: two flattened lobes, a neck and a head."""
    col = _tint(rng, _pick(rng, *WOOD))
    dark = _tint(rng, (40, 30, 25), 10)
    lower = _scaled(sphere(0.5, 24, 12, col), body_w, body_w * 0.35, body_w * 1.1)
    upper = _scaled(sphere(0.5, 24, 12, col), body_w * 0.8, body_w * 0.33, body_w * 0.85)
    hole = cylinder(body_w * 0.12, 0.01, 16, dark)
    z_low, z_up = body_w * 0.55, body_w * 1.35
    neck_len = length - z_up - body_w * 0.2
    return composite(
        [
            (lower, (0, 0, z_low)),
            (upper, (0, 0, z_up)),
            (hole, _at((0, -body_w * 0.17, z_low + body_w * 0.35), _rx(np.pi / 2))),
            (box((neck, neck * 0.6, neck_len), dark), (0, 0, z_up + neck_len / 2)),
            (box((neck * 1.5, neck * 0.7, body_w * 0.35), dark), (0, 0, length - body_w * 0.17)),
        ],
        name=name,
    )


# ------------------------------------------------------------------------------------------ builders
def piano(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (25, 20, 20), *WOOD[:2]), 12)
    return composite(
        [
            (box((1.5, 0.35, 1.25), col), (0, 0.1, 0.625)),
            (box((1.45, 0.3, 0.05), col), (0, -0.2, 0.72)),
            (box((1.3, 0.18, 0.03), (240, 240, 235)), (0, -0.22, 0.76)),
            (box((1.3, 0.05, 0.05), (20, 20, 20)), (0, -0.14, 0.79)),
            (box((0.08, 0.45, 0.7), col), (-0.7, -0.15, 0.35)),
            (box((0.08, 0.45, 0.7), col), (0.7, -0.15, 0.35)),
        ],
        name="piano",
    )


def guitar(rng: np.random.Generator) -> Mesh:
    return _stringed(rng, 1.0, 0.36, 0.05, "guitar")


def violin(rng: np.random.Generator) -> Mesh:
    return _stringed(rng, 0.6, 0.2, 0.03, "violin")


def cello(rng: np.random.Generator) -> Mesh:
    m = _stringed(rng, 1.2, 0.42, 0.05, "cello")
    spike = cylinder(0.01, 0.15, 8, (60, 60, 60))
    return composite([(m, (0, 0, 0.15)), (spike, (0, 0, 0.075))], name="cello")


def flute(rng: np.random.Generator) -> Mesh:
    col = _pick(rng, (200, 200, 205), (215, 185, 90))
    return composite(
        [
            (cylinder(0.012, 0.66, 16, col), _at((0, 0, 0.02), _ry(np.pi / 2))),
            (box((0.04, 0.03, 0.01), (70, 70, 75)), (-0.25, 0, 0.035)),
            (box((0.3, 0.01, 0.01), (150, 150, 155)), (0.05, 0, 0.033)),
        ],
        name="flute",
    )


def trumpet(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, (210, 170, 70), 15)
    return composite(
        [
            (cylinder(0.012, 0.4, 16, col), _at((0, 0, 0.06), _ry(np.pi / 2))),
            (cone(0.07, 0.2, 24, col), _at((0.27, 0, 0.06), _ry(-np.pi / 2))),
            (cylinder(0.012, 0.3, 16, col), _at((0.02, 0, 0.015), _ry(np.pi / 2))),
            (box((0.1, 0.03, 0.06), col), (0.0, 0, 0.04)),
        ],
        name="trumpet",
    )


def saxophone(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, (205, 160, 60), 15)
    return composite(
        [
            (cylinder(0.03, 0.55, 20, col), (0, 0, 0.38)),
            (cylinder(0.05, 0.15, 20, col), _at((0.05, 0, 0.12), _ry(0.6))),
            (cone(0.08, 0.16, 24, col), _at((0.13, 0, 0.22), _ry(np.pi))),
            (cylinder(0.012, 0.12, 12, (40, 40, 40)), _at((-0.04, 0, 0.7), _ry(-0.8))),
        ],
        name="saxophone",
    )


def drum(rng: np.random.Generator) -> Mesh:
    shell = _tint(rng, _pick(rng, (170, 30, 30), (30, 60, 150), (30, 30, 30), (220, 220, 220)), 20)
    skin = (235, 232, 220)
    chrome = (190, 190, 195)
    return composite(
        [
            (cylinder(0.28, 0.4, 28, shell), _at((0, 0.05, 0.29), _rx(np.pi / 2))),
            (cylinder(0.27, 0.005, 28, skin), _at((0, -0.152, 0.29), _rx(np.pi / 2))),
            (cylinder(0.17, 0.15, 24, shell), (0.42, -0.15, 0.58)),
            (cylinder(0.01, 0.5, 8, chrome), (0.42, -0.15, 0.25)),
            (cylinder(0.13, 0.13, 24, shell), (-0.12, 0.0, 0.78)),
            (cylinder(0.23, 0.006, 32, (215, 180, 70)), (-0.5, 0.05, 1.05)),
            (cylinder(0.01, 1.05, 8, chrome), (-0.5, 0.05, 0.525)),
        ],
        name="drum",
    )


def xylophone(rng: np.random.Generator) -> Mesh:
    frame = _tint(rng, WOOD[1], 15)
    parts: list[tuple[Mesh, np.ndarray | tuple[float, float, float]]] = [
        (box((0.06, 0.5, 0.7), frame), (-0.45, 0, 0.35)),
        (box((0.06, 0.5, 0.7), frame), (0.45, 0, 0.35)),
        (box((0.96, 0.5, 0.04), frame), (0, 0, 0.7)),
    ]
    for k in range(10):
        c = _pick(rng, (200, 60, 50), (230, 180, 40), (60, 150, 80), (60, 100, 200), (180, 120, 60))
        parts.append((box((0.07, 0.45 - 0.02 * k, 0.03), c), (-0.4 + 0.089 * k, 0, 0.735)))
    return composite(parts, name="xylophone")


def accordion(rng: np.random.Generator) -> Mesh:
    body = _tint(rng, _pick(rng, (170, 30, 30), (25, 25, 25), (30, 90, 60)), 15)
    parts: list[tuple[Mesh, np.ndarray | tuple[float, float, float]]] = [
        (box((0.1, 0.2, 0.4), body), (-0.2, 0, 0.2)),
        (box((0.1, 0.2, 0.4), body), (0.2, 0, 0.2)),
        (box((0.05, 0.19, 0.36), (240, 240, 235)), (-0.26, 0, 0.2)),
    ]
    for k in range(7):
        parts.append((box((0.04, 0.19, 0.38), (30, 30, 30) if k % 2 else (230, 230, 225)), (-0.12 + 0.04 * k, 0, 0.2)))
    return composite(parts, name="accordion")


def speaker(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (30, 30, 32), WOOD[1], (230, 230, 230)), 10)
    cone_col = (20, 20, 22)
    return composite(
        [
            (box((0.3, 0.3, 0.55), col), (0, 0, 0.275)),
            (cone(0.11, 0.05, 24, cone_col), _at((0, -0.165, 0.18), _rx(np.pi / 2))),
            (cone(0.05, 0.03, 20, cone_col), _at((0, -0.16, 0.42), _rx(np.pi / 2))),
        ],
        name="speaker",
    )


def radio(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, *PLASTIC, WOOD[0]), 20)
    return composite(
        [
            (box((0.35, 0.12, 0.2), col), (0, 0, 0.1)),
            (cylinder(0.06, 0.01, 20, (40, 40, 40)), _at((-0.08, -0.065, 0.1), _rx(np.pi / 2))),
            (box((0.12, 0.01, 0.05), (210, 200, 160)), (0.09, -0.065, 0.12)),
            (cylinder(0.004, 0.35, 6, (180, 180, 185)), _at((0.12, 0, 0.35), _ry(0.35))),
            (box((0.3, 0.02, 0.02), (60, 60, 60)), (0, 0, 0.21)),
        ],
        name="radio",
    )


def tv(rng: np.random.Generator) -> Mesh:
    frame = _tint(rng, (25, 25, 28), 8)
    screen = _tint(rng, (35, 45, 60), 20)
    w = float(rng.uniform(0.9, 1.2))
    h = w * 9 / 16
    return composite(
        [
            (box((w, 0.05, h), frame), (0, 0, 0.25 + h / 2)),
            (box((w - 0.04, 0.01, h - 0.04), screen), (0, -0.03, 0.25 + h / 2)),
            (box((0.08, 0.05, 0.25), frame), (0, 0, 0.125)),
            (box((0.4, 0.22, 0.02), frame), (0, 0, 0.01)),
        ],
        name="tv",
    )


def phone(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (25, 25, 28), (235, 235, 235), (200, 40, 40)), 10)
    return composite(
        [
            (box((0.2, 0.18, 0.07), col), (0, 0, 0.035)),
            (capsule(0.025, 0.22, 12, 4, col), _at((0, 0, 0.1), _ry(np.pi / 2))),
            (cylinder(0.04, 0.005, 16, (230, 230, 230)), (0, -0.02, 0.072)),
        ],
        name="phone",
    )


def clock(rng: np.random.Generator) -> Mesh:
    rim = _tint(rng, _pick(rng, *WOOD[:2], (30, 30, 30), (200, 40, 40)), 15)
    r = 0.15
    return composite(
        [
            (cylinder(r, 0.05, 32, rim), _at((0, 0, r + 0.04), _rx(np.pi / 2))),
            (cylinder(r * 0.88, 0.01, 32, (245, 245, 240)), _at((0, -0.026, r + 0.04), _rx(np.pi / 2))),
            (box((0.01, 0.005, r * 0.7), (20, 20, 20)), (0, -0.033, r + 0.04 + r * 0.3)),
            (box((r * 0.5, 0.005, 0.012), (20, 20, 20)), (r * 0.22, -0.033, r + 0.04)),
            (box((0.2, 0.08, 0.04), rim), (0, 0, 0.02)),
        ],
        name="clock",
    )


def fan(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (235, 235, 235), (40, 40, 45), (60, 110, 180)), 12)
    parts: list[tuple[Mesh, np.ndarray | tuple[float, float, float]]] = [
        (cylinder(0.18, 0.04, 24, col), (0, 0, 0.02)),
        (cylinder(0.02, 1.0, 12, col), (0, 0, 0.52)),
        (sphere(0.08, 16, 8, col), (0, 0.05, 1.05)),
        (cylinder(0.25, 0.02, 32, (200, 200, 205)), _at((0, -0.06, 1.05), _rx(np.pi / 2))),
    ]
    for k in range(3):
        a = 2 * np.pi * k / 3
        blade = _scaled(sphere(0.5, 12, 6, col), 0.22, 0.02, 0.09)
        parts.append((blade, _at((0.12 * np.cos(a), -0.05, 1.05 + 0.12 * np.sin(a)), _ry(-a))))
    return composite(parts, name="fan")


def washing_machine(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, (238, 238, 238), 8)
    return composite(
        [
            (box((0.6, 0.6, 0.85), col), (0, 0, 0.425)),
            (cylinder(0.2, 0.03, 32, (120, 125, 130)), _at((0, -0.31, 0.4), _rx(np.pi / 2))),
            (cylinder(0.15, 0.035, 32, (40, 60, 80)), _at((0, -0.315, 0.4), _rx(np.pi / 2))),
            (box((0.55, 0.02, 0.1), (200, 200, 205)), (0, -0.305, 0.78)),
        ],
        name="washing_machine",
    )


def microwave(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (235, 235, 235), (40, 40, 42), (190, 190, 195)), 8)
    return composite(
        [
            (box((0.5, 0.38, 0.3), col), (0, 0, 0.15)),
            (box((0.32, 0.01, 0.2), (25, 25, 30)), (-0.06, -0.195, 0.15)),
            (box((0.08, 0.01, 0.22), (90, 90, 95)), (0.18, -0.195, 0.15)),
        ],
        name="microwave",
    )


def kettle(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (200, 200, 205), (200, 40, 40), (235, 235, 235), (30, 30, 30)), 12)
    return composite(
        [
            (cylinder(0.09, 0.2, 24, col), (0, 0, 0.1)),
            (cone(0.09, 0.06, 24, col), (0, 0, 0.23)),
            (box((0.03, 0.04, 0.16), (30, 30, 30)), (0.11, 0, 0.13)),
            (cone(0.025, 0.1, 12, col), _at((-0.12, 0, 0.17), _ry(-1.0))),
        ],
        name="kettle",
    )


def vacuum_cleaner(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (200, 40, 40), (60, 90, 200), (230, 200, 40), (60, 60, 65)), 15)
    return composite(
        [
            (capsule(0.14, 0.45, 20, 6, col), _at((0, 0.1, 0.15), _rx(np.pi / 2))),
            (cylinder(0.02, 0.9, 10, (60, 60, 60)), _at((0, -0.25, 0.5), _rx(0.5))),
            (box((0.3, 0.08, 0.04), (40, 40, 40)), (0, -0.45, 0.02)),
        ],
        name="vacuum_cleaner",
    )


def _quadruped(
    rng: np.random.Generator,
    length: float,
    height: float,
    head: float,
    tail: float,
    name: str,
    colors: tuple[tuple[int, int, int], ...] = FUR,
    ears: bool = False,
    neck: float = 0.0,
) -> Mesh:
    col = _tint(rng, _pick(rng, *colors), 15)
    leg_h = height * 0.5
    body_r = height * 0.2
    z_body = leg_h + body_r * 0.8
    parts: list[tuple[Mesh, np.ndarray | tuple[float, float, float]]] = [
        (capsule(body_r, length, 16, 6, col), _at((0, 0, z_body), _rx(np.pi / 2))),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                (cylinder(body_r * 0.28, leg_h, 10, col), (sx * body_r * 0.55, sy * (length / 2 - body_r), leg_h / 2))
            )
    hz = z_body + body_r + neck
    hy = -length / 2 - head * 0.2
    if neck > 0:
        parts.append(
            (
                cylinder(body_r * 0.45, neck + body_r, 12, col),
                _at((0, hy + head * 0.2, z_body + (neck + body_r) / 2), _rx(-0.3)),
            )
        )
    parts.append((sphere(head / 2, 16, 8, col), (0, hy, hz)))
    parts.append(
        (_scaled(sphere(0.5, 12, 6, col), head * 0.5, head * 0.7, head * 0.45), (0, hy - head * 0.45, hz - head * 0.12))
    )
    parts.append((sphere(head * 0.07, 8, 4, (15, 15, 15)), (0, hy - head * 0.8, hz - head * 0.08)))
    if ears:
        for sx in (-1, 1):
            parts.append((cone(head * 0.15, head * 0.35, 8, col), (sx * head * 0.25, hy, hz + head * 0.55)))
    if tail > 0:
        parts.append(
            (cylinder(body_r * 0.12, tail, 8, col), _at((0, length / 2 + tail * 0.3, z_body + tail * 0.3), _rx(0.9)))
        )
    return composite(parts, name=name)


def dog(rng: np.random.Generator) -> Mesh:
    return _quadruped(rng, 0.55, 0.6, 0.2, 0.25, "dog", ears=bool(rng.integers(2)))


def cat(rng: np.random.Generator) -> Mesh:
    return _quadruped(rng, 0.35, 0.3, 0.12, 0.28, "cat", ears=True)


def horse(rng: np.random.Generator) -> Mesh:
    return _quadruped(
        rng, 1.4, 1.6, 0.3, 0.5, "horse", colors=((110, 70, 40), (60, 40, 25), (200, 190, 170), (40, 35, 30)), neck=0.35
    )


def bird(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (40, 40, 45), (200, 60, 40), (60, 110, 200), (230, 200, 40), (100, 150, 60)), 20)
    return composite(
        [
            (_scaled(sphere(0.5, 16, 8, col), 0.09, 0.16, 0.1), (0, 0, 0.08)),
            (sphere(0.04, 12, 6, col), (0, -0.08, 0.14)),
            (cone(0.015, 0.04, 8, (230, 170, 40)), _at((0, -0.125, 0.135), _rx(np.pi / 2))),
            (box((0.05, 0.1, 0.015), col), _at((0, 0.11, 0.09), _rx(-0.4))),
            (cylinder(0.004, 0.04, 6, (200, 150, 60)), (0.02, 0, 0.02)),
            (cylinder(0.004, 0.04, 6, (200, 150, 60)), (-0.02, 0, 0.02)),
        ],
        name="bird",
    )


def chicken(rng: np.random.Generator) -> Mesh:
    col = _tint(rng, _pick(rng, (240, 235, 225), (150, 90, 40), (60, 50, 40)), 15)
    return composite(
        [
            (_scaled(sphere(0.5, 16, 8, col), 0.2, 0.3, 0.22), (0, 0, 0.22)),
            (sphere(0.06, 12, 6, col), (0, -0.14, 0.36)),
            (box((0.015, 0.06, 0.04), (200, 30, 30)), (0, -0.14, 0.43)),
            (cone(0.02, 0.05, 8, (230, 170, 40)), _at((0, -0.21, 0.36), _rx(np.pi / 2))),
            (box((0.12, 0.04, 0.16), col), _at((0, 0.16, 0.3), _rx(-0.5))),
            (cylinder(0.008, 0.12, 6, (220, 170, 50)), (0.04, 0, 0.06)),
            (cylinder(0.008, 0.12, 6, (220, 170, 50)), (-0.04, 0, 0.06)),
        ],
        name="chicken",
    )


def person(rng: np.random.Generator) -> Mesh:
    skin = _tint(rng, _pick(rng, (225, 180, 150), (190, 140, 100), (140, 95, 65), (90, 60, 45)), 10)
    shirt = _tint(rng, _pick(rng, *PLASTIC, (80, 120, 70)), 25)
    trousers = _tint(rng, _pick(rng, (40, 50, 90), (30, 30, 30), (120, 100, 80)), 15)
    hair = _tint(rng, _pick(rng, (30, 25, 20), (110, 70, 30), (200, 170, 100), (150, 150, 150)), 10)
    return composite(
        [
            (capsule(0.07, 0.85, 12, 4, trousers), (-0.1, 0, 0.425)),
            (capsule(0.07, 0.85, 12, 4, trousers), (0.1, 0, 0.425)),
            (capsule(0.18, 0.6, 16, 6, shirt), _at((0, 0, 1.12))),
            (capsule(0.05, 0.65, 10, 4, shirt), (-0.25, 0, 1.1)),
            (capsule(0.05, 0.65, 10, 4, shirt), (0.25, 0, 1.1)),
            (sphere(0.055, 10, 5, skin), (-0.25, 0, 0.75)),
            (sphere(0.055, 10, 5, skin), (0.25, 0, 0.75)),
            (cylinder(0.05, 0.1, 10, skin), (0, 0, 1.47)),
            (_scaled(sphere(0.5, 16, 8, skin), 0.19, 0.21, 0.24), (0, 0, 1.62)),
            (_scaled(sphere(0.5, 16, 8, hair), 0.2, 0.22, 0.15), (0, 0.02, 1.7)),
        ],
        name="person",
    )


def stand(rng: np.random.Generator, top: tuple[float, float] = (0.45, 0.45), height: float = 0.7) -> Mesh:
    """A small table for objects that would be too low on the floor (phones, radios, birds...)."""
    col = _tint(rng, _pick(rng, *WOOD, (235, 235, 235), (40, 40, 40)), 12)
    w, d = top
    parts: list[tuple[Mesh, np.ndarray | tuple[float, float, float]]] = [
        (box((w, d, 0.04), col), (0, 0, height - 0.02))
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                (box((0.04, 0.04, height - 0.04), col), (sx * (w / 2 - 0.03), sy * (d / 2 - 0.03), (height - 0.04) / 2))
            )
    return composite(parts, name="stand")


BUILDERS: dict[str, Builder] = {
    f.__name__: f
    for f in (
        piano, guitar, violin, cello, flute, trumpet, saxophone, drum, xylophone, accordion, speaker, radio, tv,
        phone, clock, fan, washing_machine, microwave, kettle, vacuum_cleaner, dog, cat, horse, bird, chicken, person,
    )
}  # fmt: skip


def build(shape: str, rng: np.random.Generator, height: float | None = None, yaw: float = 0.0) -> Mesh:
    """The procedural mesh ``shape`` (a key of :data:`BUILDERS`), scaled to ``height`` metres (when given),
    turned by ``yaw`` about z and standing on the floor centred over the origin."""
    try:
        f = BUILDERS[shape]
    except KeyError:
        raise KeyError(f"no procedural builder {shape!r}; known: {sorted(BUILDERS)}") from None
    mesh = f(rng)
    if height is not None:
        mesh = normalized(mesh, height, "height")
    if yaw:
        mesh = mesh.transformed(rotation_z(yaw))
    return mesh
