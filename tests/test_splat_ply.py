"""PLY read/write of Gaussian scenes in the 3DGS layout (soundmask.splat.ply)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from soundmask.errors import DataError
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.ply import read_ply, standard_properties, write_ply

STANDARD_DEG1 = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                 + [f"f_rest_{i}" for i in range(9)]
                 + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])  # fmt: skip


def random_gaussians(n: int, degree: int, n_feat: int = 0, n_basis: int = 0, seed: int = 0,
                     time_range: tuple[float, float] = (0.0, 1.0)) -> Gaussians:  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return Gaussians(
        means=torch.randn(n, 3, generator=g) * 10,
        log_scales=torch.randn(n, 3, generator=g) - 3,
        quats=torch.randn(n, 4, generator=g),
        opacity_logits=torch.randn(n, generator=g) * 4,
        sh=torch.randn(n, k, 3, generator=g),
        features=torch.randn(n, n_feat, generator=g) if n_feat else None,
        motion=torch.randn(n, n_basis, 3, generator=g) if n_basis else None,
        time_range=time_range,
    )


def assert_same(a: Gaussians, b: Gaussians) -> None:
    assert set(a.tensors()) == set(b.tensors())
    for name, ta in a.tensors().items():
        tb = getattr(b, name)
        assert tb.dtype == torch.float32 and tb.shape == ta.shape, name
        assert torch.equal(ta, tb), name
    assert tuple(a.time_range) == tuple(b.time_range)


def header_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    end = data.index(b"end_header\n")
    return data[:end].decode("ascii").splitlines()


# -------------------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("degree", [0, 1, 3])
@pytest.mark.parametrize("n_feat,n_basis", [(0, 0), (5, 0), (0, 4), (3, 6)])
def test_round_trip(tmp_path: Path, degree: int, n_feat: int, n_basis: int) -> None:
    g = random_gaussians(257, degree, n_feat, n_basis, seed=degree, time_range=(0.25, 7.125 / 3))
    out = write_ply(g, tmp_path / "sub" / "scene.ply")
    assert out == tmp_path / "sub" / "scene.ply"
    assert_same(g, read_ply(out))
    assert [p.name for p in out.parent.iterdir()] == ["scene.ply"]  # no temporary file left behind


@given(n=st.integers(0, 20), degree=st.sampled_from([0, 1, 2, 3]), n_feat=st.integers(0, 3),
       n_basis=st.integers(0, 3), seed=st.integers(0, 2**16))  # fmt: skip
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, n: int, degree: int, n_feat: int,
                             n_basis: int, seed: int) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("ply") / "g.ply"
    g = random_gaussians(n, degree, n_feat, n_basis, seed)
    assert_same(g, read_ply(write_ply(g, path)))


def test_f_rest_is_channel_major(tmp_path: Path) -> None:
    g = random_gaussians(3, 1)
    g.sh = torch.arange(3 * 4 * 3, dtype=torch.float32).reshape(3, 4, 3)  # sh[n, k, c] = 12n + 3k + c
    path = write_ply(g, tmp_path / "g.ply")
    names = [ln.split()[-1] for ln in header_lines(path) if ln.startswith("property")]
    body = path.read_bytes().index(b"end_header\n") + len(b"end_header\n")
    rows = np.fromfile(path, dtype=np.dtype([(n, "<f4") for n in names]), offset=body)
    assert len(rows) == 3
    # f_rest_{c*(K-1) + k-1} = sh[:, k, c]: for vertex 0, red coefficients 3, 6, 9 come first, then green...
    assert [float(rows[0][f"f_rest_{i}"]) for i in range(9)] == [3, 6, 9, 4, 7, 10, 5, 8, 11]
    assert [float(rows[1][f"f_dc_{c}"]) for c in range(3)] == [12, 13, 14]
    assert all(float(rows[2][f"n{a}"]) == 0 for a in "xyz")


def test_header_lists_standard_properties_first(tmp_path: Path) -> None:
    path = write_ply(random_gaussians(4, 1, n_feat=2, n_basis=1), tmp_path / "g.ply")
    lines = header_lines(path)
    assert lines[:2] == ["ply", "format binary_little_endian 1.0"]
    assert "element vertex 4" in lines
    assert [ln.split()[0] for ln in lines if ln.split()[0] == "element"] == ["element"]
    props = [ln.split() for ln in lines if ln.startswith("property")]
    assert all(p[1] == "float" for p in props)
    names = [p[2] for p in props]
    assert names[: len(STANDARD_DEG1)] == STANDARD_DEG1 == standard_properties(1)
    assert names[len(STANDARD_DEG1) :] == ["feat_0", "feat_1", "motion_0_0", "motion_0_1", "motion_0_2"]
    # the binary body is exactly N rows of float32 after the header
    assert path.stat().st_size == len("\n".join(lines)) + len("\nend_header\n") + 4 * 4 * len(names)


def test_overwrite_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "g.ply"
    write_ply(random_gaussians(5, 0), path)
    bad = random_gaussians(5, 0)
    bad.means[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        write_ply(bad, path)
    assert_same(random_gaussians(5, 0), read_ply(path))  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["g.ply"]


# -------------------------------------------------------------------------------------- other tools' files
def test_ascii_shuffled_doubles(tmp_path: Path) -> None:
    # property order shuffled, doubles, an unknown property, uchar colours, a face element after the vertices
    text = """ply
format ascii 1.0
comment written by hand
obj_info some tool
element vertex 2
property double rot_1
property double opacity
property double x
property float f_dc_2
property double scale_2
property uchar red
property double rot_0
property double f_dc_0
property double y
property double scale_0
property double rot_3
property double z
property double f_dc_1
property double scale_1
property double rot_2
property double confidence
element face 1
property list uchar int vertex_indices
end_header
0.1 -2.5 1.0 0.3 -4.0 255 0.9 0.5 2.0 -3.0 0.4 3.0 0.6 -3.5 0.2 99
0.5 1.5 -1.0 -0.3 -1.0 0 1.0 -0.5 -2.0 -1.5 0.0 -3.0 1e-3 -2.5 0.0 98
3 0 1 1
"""
    path = tmp_path / "hand.ply"
    path.write_text(text)
    g = read_ply(path)
    f32 = torch.float32
    assert g.sh.shape == (2, 1, 3) and g.features is None and g.motion is None and g.time_range == (0.0, 1.0)
    assert torch.equal(g.means, torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], dtype=f32))
    assert torch.equal(g.quats, torch.tensor([[0.9, 0.1, 0.2, 0.4], [1.0, 0.5, 0.0, 0.0]], dtype=f32))
    assert torch.equal(g.opacity_logits, torch.tensor([-2.5, 1.5], dtype=f32))
    assert torch.equal(g.log_scales, torch.tensor([[-3.0, -3.5, -4.0], [-1.5, -2.5, -1.0]], dtype=f32))
    assert torch.equal(g.sh[:, 0], torch.tensor([[0.5, 0.6, 0.3], [-0.5, 1e-3, -0.3]], dtype=f32))


def _struct_ply(path: Path, fmt: str, props: list[tuple[str, str]], table: np.ndarray, extra_header: str = "",
                before: bytes = b"") -> Path:  # fmt: skip
    order = {"binary_big_endian": ">", "binary_little_endian": "<"}[fmt]
    codes = {"float": "f4", "double": "f8", "uchar": "u1", "int": "i4"}
    dt = np.dtype([(n, order + codes[t]) for n, t in props])
    rows = np.empty(len(table), dt)
    for j, (n, _) in enumerate(props):
        rows[n] = table[:, j]
    head = f"ply\nformat {fmt} 1.0\n{extra_header}element vertex {len(table)}\n"
    head += "".join(f"property {t} {n}\n" for n, t in props) + "end_header\n"
    path.write_bytes(head.encode() + before + rows.tobytes())
    return path


def test_big_endian_binary_degree1(tmp_path: Path) -> None:
    g = random_gaussians(11, 1, seed=3)
    rest = g.sh[:, 1:, :].transpose(1, 2).reshape(11, -1)
    cols = {"x": g.means[:, 0], "y": g.means[:, 1], "z": g.means[:, 2], "opacity": g.opacity_logits}
    cols |= {f"f_dc_{c}": g.sh[:, 0, c] for c in range(3)}
    cols |= {f"f_rest_{i}": rest[:, i] for i in range(9)}
    cols |= {f"scale_{i}": g.log_scales[:, i] for i in range(3)} | {f"rot_{i}": g.quats[:, i] for i in range(4)}
    names = list(cols)[::-1]  # reversed order
    rng = np.random.default_rng(1)
    types = ["double" if rng.random() < 0.5 else "float" for _ in names]
    props = [*zip(names, types, strict=True), ("flags", "uchar"), ("id", "int")]
    table = np.stack([cols[n].double().numpy() for n in names] + [np.ones(11), np.arange(11.0)], axis=1)
    # an element before the vertices (fixed size) that the reader has to skip
    path = _struct_ply(tmp_path / "be.ply", "binary_big_endian", props, table,
                       extra_header="element camera 2\nproperty double fx\nproperty uchar kind\n",
                       before=b"\x00" * (2 * 9))  # fmt: skip
    head = path.read_bytes()
    assert head.index(b"element camera") < head.index(b"element vertex")
    assert_same(g, read_ply(path))


def test_little_endian_double_with_time_comment(tmp_path: Path) -> None:
    props = [(n, "double") for n in ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
                                     "scale_2", "rot_0", "rot_1", "rot_2", "rot_3", "feat_0", "motion_0_0",
                                     "motion_0_1", "motion_0_2"]]  # fmt: skip
    table = np.arange(3 * len(props), dtype=np.float64).reshape(3, -1) / 7
    path = _struct_ply(
        tmp_path / "le.ply",
        "binary_little_endian",
        props,
        table,
        extra_header="comment soundmask time_range -1.5 4.25\n",
    )
    g = read_ply(path)
    assert g.time_range == (-1.5, 4.25)
    assert torch.equal(g.means, torch.from_numpy(table[:, :3].astype(np.float32)))
    assert torch.equal(g.features[:, 0], torch.from_numpy(table[:, 14].astype(np.float32)))
    assert torch.equal(g.motion[:, 0], torch.from_numpy(table[:, 15:18].astype(np.float32)))


# ------------------------------------------------------------------------------------------------- errors
def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.ply"
    with pytest.raises(DataError, match="not found") as e:
        read_ply(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, b"ply\nformat binary",
                                     b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"])  # fmt: skip
def test_garbage_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.ply"
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        read_ply(path)
    assert str(path) in str(e.value) and "fix:" in str(e.value) and "\n" not in str(e.value)


def test_truncated_binary(tmp_path: Path) -> None:
    path = write_ply(random_gaussians(50, 3), tmp_path / "cut.ply")
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(DataError, match="truncated") as e:
        read_ply(path)
    assert str(path) in str(e.value)


def test_truncated_ascii(tmp_path: Path) -> None:
    props = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]  # fmt: skip
    head = "ply\nformat ascii 1.0\nelement vertex 3\n" + "".join(f"property float {p}\n" for p in props)
    row = " ".join(["0.5"] * len(props))
    path = tmp_path / "cut.ply"
    path.write_text(head + "end_header\n" + f"{row}\n{row}\n" + row[:9])
    with pytest.raises(DataError, match="truncated") as e:
        read_ply(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("drop", ["opacity", "x", "rot_2", "scale_1", "f_dc_0"])
def test_missing_property(tmp_path: Path, drop: str) -> None:
    names = [n for n in standard_properties(0) if n != drop]
    path = _struct_ply(
        tmp_path / "m.ply", "binary_little_endian", [(n, "float") for n in names], np.zeros((2, len(names)))
    )
    with pytest.raises(DataError, match=drop) as e:
        read_ply(path)
    assert str(path) in str(e.value)


def test_point_cloud_and_no_vertex(tmp_path: Path) -> None:
    path = _struct_ply(
        tmp_path / "pc.ply",
        "binary_little_endian",
        [("x", "float"), ("y", "float"), ("z", "float"), ("red", "uchar")],
        np.zeros((2, 4)),
    )
    with pytest.raises(DataError, match="point cloud"):
        read_ply(path)
    path = tmp_path / "faces.ply"
    path.write_bytes(b"ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n")
    with pytest.raises(DataError, match="no 'vertex' element") as e:
        read_ply(path)
    assert str(path) in str(e.value)


def test_nan_values(tmp_path: Path) -> None:
    names = standard_properties(0)
    table = np.zeros((4, len(names)))
    table[2, names.index("scale_1")] = np.nan
    path = _struct_ply(tmp_path / "nan.ply", "binary_little_endian", [(n, "float") for n in names], table)
    with pytest.raises(DataError, match="NaN.*scale_1.*1 vertices") as e:
        read_ply(path)
    assert str(path) in str(e.value)


def test_bad_sh_count(tmp_path: Path) -> None:
    names = standard_properties(0) + [f"f_rest_{i}" for i in range(5)]
    path = _struct_ply(
        tmp_path / "sh.ply", "binary_little_endian", [(n, "float") for n in names], np.zeros((1, len(names)))
    )
    with pytest.raises(DataError, match="5 f_rest"):
        read_ply(path)
