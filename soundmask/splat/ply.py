"""Gaussian scenes as PLY files in the layout of 3D Gaussian splatting (Kerbl et al. 2023).

What :func:`write_ply` writes (``binary_little_endian 1.0``, one ``vertex`` element, every property a
``float``), in this order — the order of the reference ``GaussianModel.save_ply``, so the files open in
common splat viewers and tools:

``x y z``
    centre (``Gaussians.means``).
``nx ny nz``
    normals, always zero (the reference writes them; nothing reads them).
``f_dc_0 f_dc_1 f_dc_2``
    the DC spherical-harmonic coefficient per colour channel (``sh[:, 0]``).
``f_rest_0 … f_rest_{3(K−1)−1}``
    the other K − 1 coefficients, **channel-major**: all of red, then green, then blue, i.e.
    ``sh[:, 1:, :].transpose(1, 2).reshape(N, -1)`` (``f_rest_{c(K−1)+k−1}`` is coefficient k of channel c).
    Absent for SH degree 0.
``opacity``
    the opacity logit (``opacity_logits``; sigmoid gives the opacity).
``scale_0 scale_1 scale_2``
    log scales (``log_scales``; exp gives the standard deviations).
``rot_0 rot_1 rot_2 rot_3``
    the quaternion ``w x y z`` as optimised (not normalised).

soundmask's own channels follow as extra ``float`` properties, which viewers ignore: ``feat_0 … feat_{F−1}``
(``features``), ``motion_{b}_{c}`` (``motion[:, b, c]``, basis b, axis c, b-major) and ``motion_group``
(the rigid body of each Gaussian, 0 = static); ``time_range`` goes in a header line
``comment soundmask time_range <t0> <t1>``, and the rigid bodies' tracks (:mod:`soundmask.splat.motion`) in
``comment soundmask rigid_pivot <k> <x> <y> <z>`` (one per body) and
``comment soundmask rigid_pose <k> <time> <tx> <ty> <tz> <rx> <ry> <rz>`` (one per body and knot).

:func:`read_ply` also reads what other tools write: any property order, ``ascii`` / ``binary_little_endian``
/ ``binary_big_endian``, any numeric type (``float``, ``double``, ``uchar``…), no ``f_rest`` (degree 0),
other elements before or after ``vertex``, and unknown properties (ignored). A file it cannot use raises
:class:`~soundmask.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from soundmask.data.io import PathLike, atomic_path, require_file
from soundmask.errors import DataError
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.motion import RigidMotion

__all__ = ["read_ply", "standard_properties", "write_ply"]

# PLY scalar type names (both the classic and the sized spellings) → numpy type codes (no byte order).
_PLY_TYPES: dict[str, str] = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_TIME_COMMENT = "soundmask time_range"
_PIVOT_COMMENT = "soundmask rigid_pivot"
_POSE_COMMENT = "soundmask rigid_pose"
_MAX_HEADER_LINE = 1 << 16
_MAX_HEADER_LINES = 1 << 16
_FIX_3DGS = "export the scene as a 3D Gaussian splatting PLY (x y z, f_dc_*, opacity, scale_*, rot_*)"
_REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3")  # fmt: skip


def standard_properties(sh_degree: int) -> list[str]:
    """The 3DGS vertex properties, in the reference order, for SH degree ``sh_degree`` (0–3)."""
    k = (sh_degree + 1) ** 2
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(3 * (k - 1))]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])  # fmt: skip


# ------------------------------------------------------------------------------------------------ write
def write_ply(gaussians: Gaussians, path: PathLike) -> Path:
    """Write ``gaussians`` as a binary little-endian 3DGS PLY at ``path`` (atomically); returns the path.

    Every value is stored as float32, so :func:`read_ply` gives back float32 tensors equal to the input's
    float32 values. Raises ``ValueError`` for NaN or infinite parameters (the file could not be read back)."""
    g = gaussians
    n = len(g)

    def col(t: torch.Tensor) -> np.ndarray:
        a = t.detach().to("cpu", torch.float32).numpy()
        return a.reshape(n, int(np.prod(a.shape[1:], dtype=np.int64)))

    sh = g.sh.detach()
    blocks = [col(g.means), np.zeros((n, 3), np.float32), col(sh[:, 0]),
              col(sh[:, 1:, :].transpose(1, 2)), col(g.opacity_logits), col(g.log_scales), col(g.quats)]  # fmt: skip
    names = standard_properties(g.sh_degree)
    if g.features is not None:
        blocks.append(col(g.features))
        names += [f"feat_{i}" for i in range(g.features.shape[1])]
    if g.motion is not None:
        blocks.append(col(g.motion))  # (N, B, 3) row-major → motion_{b}_{c} with b outer
        names += [f"motion_{b}_{c}" for b in range(g.motion.shape[1]) for c in range(3)]
    if g.group is not None:
        blocks.append(col(g.group))
        names.append("motion_group")
    table = np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype="<f4")
    assert table.shape[1] == len(names)
    if not np.isfinite(table).all():
        bad = [names[j] for j in np.flatnonzero(~np.isfinite(table).all(axis=0))]
        raise ValueError(f"refusing to write Gaussians with NaN/inf values (in {', '.join(bad[:8])})")

    t0, t1 = (float(t) for t in g.time_range)
    header = ["ply", "format binary_little_endian 1.0", f"comment {_TIME_COMMENT} {t0!r} {t1!r}",
              *_rigid_comments(g.rigid), f"element vertex {n}", *(f"property float {name}" for name in names),
              "end_header"]  # fmt: skip
    final = Path(path)
    with atomic_path(final) as tmp, tmp.open("wb") as f:  # the file closes before the rename
        f.write(("\n".join(header) + "\n").encode("ascii"))
        table.tofile(f)
    return final


# ------------------------------------------------------------------------------------------------- read
@dataclass
class _Element:
    name: str
    count: int
    props: list[tuple[str, str]] = field(default_factory=list)  # (name, numpy code); lists have code "list"
    lists: list[tuple[str, str, str]] = field(default_factory=list)  # (name, count code, item code)


@dataclass
class _Header:
    fmt: str
    elements: list[_Element]
    comments: list[str]
    data_start: int


def read_ply(path: PathLike) -> Gaussians:
    """Read a 3D Gaussian splatting PLY (ours or another tool's) as float32 CPU :class:`Gaussians`.

    SH degree comes from the number of ``f_rest_*`` properties (0, 9, 24 or 45 → degree 0–3); ``features``
    and ``motion`` from ``feat_*`` / ``motion_*_*`` when present; ``time_range`` from the soundmask comment
    (default ``(0, 1)``)."""
    p = require_file(path, "PLY file", "check the path of the Gaussian scene")
    header = _read_header(p)
    vertex = next((e for e in header.elements if e.name == "vertex"), None)
    if vertex is None:
        names = ", ".join(e.name for e in header.elements) or "none"
        raise DataError(f"PLY file has no 'vertex' element (elements: {names})", p, _FIX_3DGS)
    if vertex.lists:
        raise DataError(
            f"PLY 'vertex' element has list properties ({', '.join(n for n, _, _ in vertex.lists)}), "
            "which a Gaussian scene never has",
            p,
            _FIX_3DGS,
        )
    present = {name for name, _ in vertex.props}
    missing = [r for r in _REQUIRED if r not in present]
    if missing:
        hint = " (it looks like a plain point cloud)" if not {"x", "y", "z"} & set(missing) else ""
        raise DataError(
            f"PLY vertex element lacks {', '.join(missing)}{hint}",
            p,
            _FIX_3DGS + "; for a point cloud use Gaussians.from_points",
        )
    k, n_feat, n_basis = _layout(present, p)

    columns = _read_vertices(p, header, vertex)

    def take(names: list[str]) -> np.ndarray:
        out = np.empty((vertex.count, len(names)), np.float32)
        for j, name in enumerate(names):
            out[:, j] = columns[name]
        bad = ~np.isfinite(out).all(axis=0)
        if bad.any():
            which = [names[j] for j in np.flatnonzero(bad)]
            rows = int((~np.isfinite(out)).any(axis=1).sum())
            raise DataError(
                f"PLY has NaN or infinite values in {', '.join(which[:8])} ({rows} vertices)",
                p,
                "re-export the scene, or drop the broken Gaussians before saving",
            )
        return out

    n = vertex.count
    dc = take(["f_dc_0", "f_dc_1", "f_dc_2"])
    rest = take([f"f_rest_{i}" for i in range(3 * (k - 1))]).reshape(n, 3, k - 1).transpose(0, 2, 1)
    sh = np.concatenate([dc[:, None, :], rest], axis=1)
    features = take([f"feat_{i}" for i in range(n_feat)]) if n_feat else None
    group = None
    if "motion_group" in present:
        group = torch.from_numpy(take(["motion_group"])[:, 0].round().astype(np.int64))
    rigid = _rigid(header.comments, p)
    if (group is None) != (rigid is None):
        raise DataError(
            "PLY has "
            + (
                "a motion_group property but no rigid_pose comments"
                if rigid is None
                else "rigid_pose comments but no motion_group property"
            ),
            p,
            "rewrite the file with soundmask.splat.ply.write_ply",
        )
    motion = None
    if n_basis:
        motion = take([f"motion_{b}_{c}" for b in range(n_basis) for c in range(3)]).reshape(n, n_basis, 3)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    return Gaussians(
        means=t(take(["x", "y", "z"])),
        log_scales=t(take(["scale_0", "scale_1", "scale_2"])),
        quats=t(take(["rot_0", "rot_1", "rot_2", "rot_3"])),
        opacity_logits=t(take(["opacity"])[:, 0]),
        sh=t(sh),
        features=None if features is None else t(features),
        motion=None if motion is None else t(motion),
        time_range=_time_range(header.comments, p),
        group=group,
        rigid=rigid,
    )


def _rigid_comments(rigid: RigidMotion | None) -> list[str]:
    if rigid is None:
        return []
    out = [f"comment {_PIVOT_COMMENT} {k} " + " ".join(repr(float(v)) for v in rigid.pivots[k])
           for k in range(rigid.num_groups)]  # fmt: skip
    for k in range(rigid.num_groups):
        for f, t in enumerate(rigid.times.tolist()):
            vals = [*rigid.translations[k, f].tolist(), *rigid.rotations[k, f].tolist()]
            out.append(f"comment {_POSE_COMMENT} {k} {float(t)!r} " + " ".join(repr(float(v)) for v in vals))
    return out


def _rigid(comments: list[str], p: Path) -> RigidMotion | None:
    """The rigid tracks of the header comments (None when there are none)."""
    pivots: dict[int, list[float]] = {}
    poses: dict[int, list[list[float]]] = {}
    for c in comments:
        for prefix, size in ((_PIVOT_COMMENT, 4), (_POSE_COMMENT, 8)):
            if not c.startswith(prefix + " "):
                continue
            try:
                vals = [float(v) for v in c[len(prefix) :].split()]
                if len(vals) != size or vals[0] != int(vals[0]) or vals[0] < 0:
                    raise ValueError(f"{len(vals)} values")
            except ValueError as e:
                raise DataError(f"malformed PLY comment {c!r} ({e})", p, "rewrite the file with write_ply") from e
            if prefix == _PIVOT_COMMENT:
                pivots[int(vals[0])] = vals[1:]
            else:
                poses.setdefault(int(vals[0]), []).append(vals[1:])
    if not pivots and not poses:
        return None
    K = len(pivots)
    fix = "rewrite the file with soundmask.splat.ply.write_ply"
    if sorted(pivots) != list(range(K)) or sorted(poses) != list(range(K)):
        raise DataError("PLY rigid_pivot / rigid_pose comments do not number the same bodies 0..K-1", p, fix)
    tracks = [np.array(sorted(poses[k]), dtype=np.float64) for k in range(K)]
    if any(t.shape != tracks[0].shape or not np.array_equal(t[:, 0], tracks[0][:, 0]) for t in tracks):
        raise DataError("PLY rigid_pose comments give the bodies different knot times", p, fix)
    a = np.stack(tracks)  # (K, F, 7)
    try:
        return RigidMotion(
            times=torch.as_tensor(a[0, :, 0], dtype=torch.float32),
            translations=torch.as_tensor(a[:, :, 1:4], dtype=torch.float32),
            rotations=torch.as_tensor(a[:, :, 4:7], dtype=torch.float32),
            pivots=torch.as_tensor(np.array([pivots[k] for k in range(K)]), dtype=torch.float32),
        )
    except ValueError as e:
        raise DataError(f"PLY rigid tracks are inconsistent ({e})", p, fix) from e


def _read_header(p: Path) -> _Header:
    """Parse the PLY header; a file that is not a PLY, or whose header is cut short or malformed, is a DataError."""
    fmt: str | None = None
    elements: list[_Element] = []
    comments: list[str] = []
    try:
        with p.open("rb") as f:
            magic = f.readline(8).rstrip(b"\r\n")
            if magic != b"ply":
                raise DataError(
                    "not a PLY file (it does not start with 'ply')",
                    p,
                    "pass a .ply file written by a Gaussian splatting tool",
                )
            for _ in range(_MAX_HEADER_LINES):
                raw = f.readline(_MAX_HEADER_LINE)
                if not raw.endswith(b"\n"):
                    problem = (
                        "PLY header ends before 'end_header'"
                        if len(raw) < _MAX_HEADER_LINE
                        else (f"PLY header line longer than {_MAX_HEADER_LINE} bytes")
                    )
                    raise DataError(problem, p, "the file is truncated or corrupt; re-export it")
                line = raw.decode("latin-1").strip()
                words = line.split()
                if not words:
                    continue
                key = words[0]
                if key == "end_header":
                    break
                if key == "comment":
                    comments.append(line[len("comment") :].strip())
                elif key == "obj_info":
                    continue
                elif key == "format":
                    if len(words) < 2 or words[1] not in _FORMATS:
                        raise DataError(
                            f"unknown PLY format line {line!r}",
                            p,
                            "use ascii, binary_little_endian or binary_big_endian",
                        )
                    fmt = words[1]
                elif key == "element":
                    if len(words) != 3 or not words[2].isdigit():
                        raise DataError(f"malformed PLY header line {line!r}", p, "re-export the file")
                    elements.append(_Element(words[1], int(words[2])))
                elif key == "property":
                    _parse_property(words, line, elements, p)
                else:
                    raise DataError(f"unexpected PLY header line {line!r}", p, "re-export the file")
            else:
                raise DataError("PLY header has no 'end_header'", p, "the file is corrupt; re-export it")
            data_start = f.tell()
    except OSError as e:
        raise DataError(f"cannot read PLY file ({e})", p, "check the file's permissions") from e
    if fmt is None:
        raise DataError("PLY header has no 'format' line", p, "re-export the file")
    return _Header(fmt, elements, comments, data_start)


def _parse_property(words: list[str], line: str, elements: list[_Element], p: Path) -> None:
    if not elements:
        raise DataError(f"PLY property before any element: {line!r}", p, "re-export the file")
    el = elements[-1]
    if len(words) == 5 and words[1] == "list" and words[2] in _PLY_TYPES and words[3] in _PLY_TYPES:
        el.lists.append((words[4], _PLY_TYPES[words[2]], _PLY_TYPES[words[3]]))
        el.props.append((words[4], "list"))
    elif len(words) == 3 and words[1] in _PLY_TYPES:
        el.props.append((words[2], _PLY_TYPES[words[1]]))
    else:
        raise DataError(
            f"malformed or unknown-type PLY property {line!r}",
            p,
            f"property types must be one of {', '.join(sorted(set(_PLY_TYPES)))}",
        )


def _layout(present: set[str], p: Path) -> tuple[int, int, int]:
    """(K SH coefficients, number of features, number of motion bases) from the vertex property names."""
    rest = _indices(present, r"f_rest_(\d+)")
    if rest and rest != list(range(len(rest))):
        raise DataError(f"PLY f_rest_* properties are not numbered 0..{len(rest) - 1}", p, _FIX_3DGS)
    k = 1 + len(rest) // 3
    if len(rest) % 3 or k not in (1, 4, 9, 16):
        raise DataError(
            f"PLY has {len(rest)} f_rest_* properties; expected 0, 9, 24 or 45 (SH degree 0-3)",
            p,
            "export with spherical harmonics of degree 3 or less",
        )
    feats = _indices(present, r"feat_(\d+)")
    if feats != list(range(len(feats))):
        raise DataError(
            f"PLY feat_* properties are not numbered 0..{len(feats) - 1}",
            p,
            "rewrite the file with soundmask.splat.ply.write_ply",
        )
    bases = sorted({int(m.group(1)) for s in present if (m := re.fullmatch(r"motion_(\d+)_[012]", s))})
    n_basis = len(bases)
    want = {f"motion_{b}_{c}" for b in range(n_basis) for c in range(3)}
    if bases != list(range(n_basis)) or not want <= present:
        raise DataError(
            "PLY motion_<basis>_<axis> properties are incomplete",
            p,
            "rewrite the file with soundmask.splat.ply.write_ply",
        )
    return k, len(feats), n_basis


def _indices(names: set[str], pattern: str) -> list[int]:
    return sorted(int(m.group(1)) for s in names if (m := re.fullmatch(pattern, s)))


def _read_vertices(p: Path, h: _Header, vertex: _Element) -> np.ndarray:
    """The vertex element as a structured array (one field per property)."""
    names = [n for n, _ in vertex.props]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"PLY vertex element repeats properties {', '.join(dup)}", p, "re-export the file")
    order = _FORMATS[h.fmt]
    if order is None:
        return _read_ascii(p, h, vertex)
    before = h.elements[: h.elements.index(vertex)]
    offset = 0
    for el in before:
        if el.lists:
            raise DataError(
                f"binary PLY has list element {el.name!r} before 'vertex', which soundmask cannot skip",
                p,
                "write the vertex element first",
            )
        offset += el.count * np.dtype([(f"p{i}", order + c) for i, (_, c) in enumerate(el.props)]).itemsize
    dtype = np.dtype([(n, order + c) for n, c in vertex.props])
    start = h.data_start + offset
    need = vertex.count * dtype.itemsize
    have = p.stat().st_size - start
    if have < need:
        raise DataError(
            f"truncated PLY: {vertex.count} vertices need {need} bytes, the file holds {max(have, 0)}",
            p,
            "re-export or re-download the file",
        )
    return np.fromfile(p, dtype=dtype, count=vertex.count, offset=start)


def _read_ascii(p: Path, h: _Header, vertex: _Element) -> np.ndarray:
    with p.open("rb") as f:
        f.seek(h.data_start)
        try:
            lines = f.read().decode("ascii").splitlines()
        except UnicodeDecodeError as e:
            raise DataError("ascii PLY body holds non-ascii bytes", p, "re-export the file") from e
    skip = sum(el.count for el in h.elements[: h.elements.index(vertex)])
    rows = lines[skip : skip + vertex.count]
    try:
        values = np.array(" ".join(rows).split(), dtype=np.float64)
    except ValueError as e:
        raise DataError(f"ascii PLY vertex data is not numeric ({e})", p, "re-export the file") from e
    nprop = len(vertex.props)
    if len(rows) < vertex.count or values.size != vertex.count * nprop:
        raise DataError(
            f"truncated or malformed ascii PLY: {vertex.count} vertices x {nprop} properties need "
            f"{vertex.count * nprop} values, found {values.size}",
            p,
            "re-export the file",
        )
    table = values.reshape(vertex.count, nprop)
    out = np.empty(vertex.count, np.dtype([(n, "f8") for n, _ in vertex.props]))
    for j, (name, _) in enumerate(vertex.props):
        out[name] = table[:, j]
    return out


def _time_range(comments: list[str], p: Path) -> tuple[float, float]:
    for c in comments:
        if c.startswith(_TIME_COMMENT):
            parts = c[len(_TIME_COMMENT) :].split()
            try:
                t0, t1 = (float(v) for v in parts)
            except ValueError as e:
                raise DataError(
                    f"malformed PLY comment {c!r}", p, f"write it as 'comment {_TIME_COMMENT} <t0> <t1>' or remove it"
                ) from e
            return (t0, t1)
    return (0.0, 1.0)
