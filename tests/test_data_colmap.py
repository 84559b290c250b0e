"""COLMAP sparse models: text/binary round trips, quaternions, Camera conversion, errors naming the file."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from soundmask.data import colmap
from soundmask.data.colmap import (
    CAMERA_MODELS,
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    ColmapPoint3D,
    camera_from_image,
    image_from_camera,
    qvec_to_rotmat,
    read_model,
    rotmat_to_qvec,
    write_model,
)
from soundmask.data.types import Camera, Intrinsics
from soundmask.errors import DataError


def random_model(rng: np.random.Generator) -> ColmapModel:
    model = ColmapModel()
    names = ["SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV", "OPENCV_FISHEYE"]
    for cid, name in enumerate(names, start=1):
        n = CAMERA_MODELS[name].num_params
        model.cameras[cid] = ColmapCamera(
            cid, name, int(rng.integers(10, 4000)), int(rng.integers(10, 4000)), rng.normal(size=n) * 100
        )
    for iid in (3, 1, 7, 2):  # ids need not be contiguous or sorted
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        npts = int(rng.integers(0, 6)) if iid != 7 else 0  # one image with no 2D points (empty line)
        ids = rng.integers(-1, 50, size=npts)
        model.images[iid] = ColmapImage(
            iid,
            q,
            rng.normal(size=3),
            int(rng.integers(1, len(names) + 1)),
            f"frame_{iid:03d}.png",
            rng.normal(size=(npts, 2)) * 500,
            ids,
        )
    for pid in range(1, 9):
        tl = int(rng.integers(0, 5))
        model.points3D[pid * 10] = ColmapPoint3D(
            pid * 10,
            rng.normal(size=3),
            rng.integers(0, 256, size=3),
            float(rng.random()),
            rng.integers(1, 8, size=tl),
            rng.integers(0, 6, size=tl),
        )
    return model


def assert_models_equal(a: ColmapModel, b: ColmapModel) -> None:
    assert list(a.cameras) == list(b.cameras)
    for k, c in a.cameras.items():
        d = b.cameras[k]
        assert (c.id, c.model, c.width, c.height) == (d.id, d.model, d.width, d.height)
        np.testing.assert_array_equal(c.params, d.params)
    assert list(a.images) == list(b.images)
    for k, im in a.images.items():
        jm = b.images[k]
        assert (im.id, im.camera_id, im.name) == (jm.id, jm.camera_id, jm.name)
        np.testing.assert_array_equal(im.qvec, jm.qvec)
        np.testing.assert_array_equal(im.tvec, jm.tvec)
        np.testing.assert_array_equal(im.xys, jm.xys)
        np.testing.assert_array_equal(im.point3D_ids, jm.point3D_ids)
    assert list(a.points3D) == list(b.points3D)
    for k, p in a.points3D.items():
        q = b.points3D[k]
        np.testing.assert_array_equal(p.xyz, q.xyz)
        np.testing.assert_array_equal(p.rgb, q.rgb)
        assert p.error == q.error
        np.testing.assert_array_equal(p.image_ids, q.image_ids)
        np.testing.assert_array_equal(p.point2D_idxs, q.point2D_idxs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_text_binary_round_trips(tmp_path, seed):
    model = random_model(np.random.default_rng(seed))
    write_model(model, tmp_path / "txt", binary=False)
    write_model(model, tmp_path / "bin", binary=True)
    assert sorted(p.name for p in (tmp_path / "txt").iterdir()) == ["cameras.txt", "images.txt", "points3D.txt"]
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == ["cameras.bin", "images.bin", "points3D.bin"]
    from_txt, from_bin = read_model(tmp_path / "txt"), read_model(tmp_path / "bin")
    assert_models_equal(model, from_txt)
    assert_models_equal(model, from_bin)
    # text → binary → text stays identical too
    write_model(from_txt, tmp_path / "bin2", binary=True)
    write_model(read_model(tmp_path / "bin2"), tmp_path / "txt2", binary=False)
    for n in ("cameras.txt", "images.txt", "points3D.txt"):
        assert (tmp_path / "txt" / n).read_text() == (tmp_path / "txt2" / n).read_text()


def test_binary_layout_matches_spec(tmp_path):
    """Byte-level check of cameras.bin / images.bin / points3D.bin against COLMAP's documented structs."""
    model = ColmapModel(
        {5: ColmapCamera(5, "PINHOLE", 640, 480, [500.0, 501.0, 320.0, 240.0])},
        {2: ColmapImage(2, [1, 0, 0, 0], [0.1, 0.2, 0.3], 5, "a.png", [[1.5, 2.5]], [-1])},
        {9: ColmapPoint3D(9, [1, 2, 3], [10, 20, 30], 0.5, [2], [0])},
    )
    write_model(model, tmp_path, binary=True)
    cams = (tmp_path / "cameras.bin").read_bytes()
    assert cams == struct.pack("<QIiQQ4d", 1, 5, 1, 640, 480, 500.0, 501.0, 320.0, 240.0)
    imgs = (tmp_path / "images.bin").read_bytes()
    assert imgs == (
        struct.pack("<QI7dI", 1, 2, 1, 0, 0, 0, 0.1, 0.2, 0.3, 5) + b"a.png\x00" + struct.pack("<Qddq", 1, 1.5, 2.5, -1)
    )
    pts = (tmp_path / "points3D.bin").read_bytes()
    assert pts == (
        struct.pack("<Q", 1) + struct.pack("<Q3d3BdQ", 9, 1, 2, 3, 10, 20, 30, 0.5, 1) + struct.pack("<II", 2, 0)
    )


def test_text_reader_accepts_colmap_written_text(tmp_path):
    (tmp_path / "cameras.txt").write_text(
        "# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
        "# Number of cameras: 1\n1 SIMPLE_RADIAL 3072 2304 2559.81 1536 1152 -0.0204\n"
    )
    (tmp_path / "images.txt").write_text(
        "# Image list with two lines of data per image:\n"
        "1 0.851773 0.0165051 0.503764 -0.142941 -0.737434 1.02973 3.74354 1 P1180141.JPG\n"
        "2362.39 248.498 58396 1784.7 268.254 59027 1784.7 268.254 -1\n"
        "2 0.851773 0.0165051 0.503764 -0.142941 -0.737434 1.02973 3.74354 1 P1180142.JPG\n"
        "\n"
    )
    (tmp_path / "points3D.txt").write_text(
        "63390 1.67241 0.292931 0.609726 115 121 122 1.33927 16 6542 15 7345 6 6714\n"
    )
    m = read_model(tmp_path)
    assert m.cameras[1].model == "SIMPLE_RADIAL" and m.cameras[1].params[3] == -0.0204
    assert m.images[1].point3D_ids.tolist() == [58396, 59027, -1] and m.images[1].xys[0, 0] == 2362.39
    assert m.images[2].xys.shape == (0, 2) and m.images[2].name == "P1180142.JPG"
    assert m.points3D[63390].image_ids.tolist() == [16, 15, 6]
    assert m.points3D[63390].point2D_idxs.tolist() == [6542, 7345, 6714]


@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 1e-3))
def test_quaternion_matrix_round_trip(q):
    q = np.asarray(q) / np.linalg.norm(q)
    R = qvec_to_rotmat(q)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    q2 = rotmat_to_qvec(R)
    assert q2[0] >= 0 and np.linalg.norm(q2) == pytest.approx(1.0)
    assert min(np.abs(q2 - q).max(), np.abs(q2 + q).max()) < 1e-9  # q and -q are the same rotation
    np.testing.assert_allclose(qvec_to_rotmat(q2), R, atol=1e-12)


def test_quaternion_known_values():
    np.testing.assert_allclose(qvec_to_rotmat([1, 0, 0, 0]), np.eye(3))
    # 90° about z: x → y
    c = np.sqrt(0.5)
    np.testing.assert_allclose(qvec_to_rotmat([c, 0, 0, c]) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(rotmat_to_qvec(np.diag([1.0, -1.0, -1.0])), [0, 1, 0, 0], atol=1e-12)  # 180° about x


def random_camera(rng: np.random.Generator) -> Camera:
    q = rng.normal(size=4)
    c2w = np.eye(4)
    c2w[:3, :3] = qvec_to_rotmat(q)
    c2w[:3, 3] = rng.normal(size=3) * 3
    return Camera(Intrinsics(300.0, 310.0, 64.5, 48.25, 128, 96), c2w, name="x.png")


def test_camera_conversion_round_trip(rng):
    for _ in range(20):
        cam = random_camera(rng)
        img = image_from_camera(cam, image_id=4, camera_id=2)
        ccam = ColmapCamera.from_intrinsics(cam.intrinsics, 2)
        back = camera_from_image(img, ccam)
        np.testing.assert_allclose(back.camera_to_world, cam.camera_to_world, atol=1e-12)
        assert back.intrinsics == cam.intrinsics and back.name == "x.png"
        np.testing.assert_allclose(img.world_to_camera, cam.world_to_camera, atol=1e-12)


def test_projection_matches_colmap_convention(rng):
    """Our Camera.project gives what COLMAP computes: x_cam = R(q) X + t, u = fx x/z + cx (OpenCV axes)."""
    cam = random_camera(rng)
    img = image_from_camera(cam, 1)
    # points in front of the camera
    pc = np.stack([rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50), rng.uniform(1, 5, 50)], axis=1)
    world = (pc - img.tvec) @ qvec_to_rotmat(img.qvec)  # R^T (pc - t)
    xc = world @ qvec_to_rotmat(img.qvec).T + img.tvec
    k = cam.intrinsics
    uv_colmap = np.stack([k.fx * xc[:, 0] / xc[:, 2] + k.cx, k.fy * xc[:, 1] / xc[:, 2] + k.cy], axis=1)
    uv, z = cam.project(world)
    np.testing.assert_allclose(uv, uv_colmap, atol=1e-9)
    np.testing.assert_allclose(z, pc[:, 2], atol=1e-12)
    # the camera centre from COLMAP (-R^T t) is our camera_to_world translation
    np.testing.assert_allclose(-qvec_to_rotmat(img.qvec).T @ img.tvec, cam.center, atol=1e-12)
    # a point straight ahead on the optical axis lands on the principal point
    ahead = cam.camera_to_world[:3, :3] @ [0, 0, 2.0] + cam.center
    np.testing.assert_allclose(cam.project(ahead)[0][0], [k.cx, k.cy], atol=1e-9)


def test_intrinsics_from_models():
    assert ColmapCamera(1, "SIMPLE_PINHOLE", 100, 80, [90, 50, 40]).to_intrinsics() == Intrinsics(
        90, 90, 50, 40, 100, 80
    )
    assert ColmapCamera(1, "OPENCV", 100, 80, [90, 91, 50, 40, 0, 0, 0, 0]).to_intrinsics().fy == 91
    with pytest.raises(ValueError, match="distortion"):
        ColmapCamera(1, "OPENCV", 100, 80, [90, 91, 50, 40, 0.1, 0, 0, 0]).to_intrinsics()
    assert (
        ColmapCamera(1, "OPENCV", 100, 80, [90, 91, 50, 40, 0.1, 0, 0, 0]).to_intrinsics(allow_distortion=True).fx == 90
    )
    with pytest.raises(ValueError, match="not a pinhole"):
        ColmapCamera(1, "OPENCV_FISHEYE", 100, 80, [90, 91, 50, 40, 0, 0, 0, 0]).to_intrinsics()
    with pytest.raises(ValueError, match="takes 4 params"):
        ColmapCamera(1, "PINHOLE", 100, 80, [1, 2, 3])


# ------------------------------------------------------------------------------------------- errors
def test_missing_folder_and_incomplete_model(tmp_path):
    with pytest.raises(DataError, match="COLMAP model folder not found") as e:
        read_model(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    (tmp_path / "cameras.bin").write_bytes(b"")
    (tmp_path / "images.txt").write_text("")
    with pytest.raises(DataError, match="no complete COLMAP model") as e:
        read_model(tmp_path)
    assert str(tmp_path) in str(e.value) and "cameras.bin" in str(e.value)


@pytest.mark.parametrize("which", ["cameras", "images", "points3D"])
def test_truncated_binary_names_the_file(tmp_path, which):
    write_model(random_model(np.random.default_rng(3)), tmp_path, binary=True)
    f = tmp_path / f"{which}.bin"
    data = f.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 5):
        f.write_bytes(data[:cut])
        with pytest.raises(DataError, match="truncated|too short") as e:
            read_model(tmp_path)
        assert str(f) in str(e.value)


def test_trailing_garbage_and_bad_model_id(tmp_path):
    write_model(random_model(np.random.default_rng(4)), tmp_path, binary=True)
    f = tmp_path / "cameras.bin"
    f.write_bytes(f.read_bytes() + b"xx")
    with pytest.raises(DataError, match="unexpected bytes") as e:
        read_model(tmp_path)
    assert str(f) in str(e.value)
    f.write_bytes(struct.pack("<QIiQQ", 1, 1, 99, 10, 10))
    with pytest.raises(DataError, match="unknown camera model id 99"):
        read_model(tmp_path)


def test_bad_text_line_names_file_and_line(tmp_path):
    write_model(random_model(np.random.default_rng(5)), tmp_path, binary=False)
    f = tmp_path / "cameras.txt"
    f.write_text(f.read_text() + "99 PINHOLE 10 10 1 2\n")
    with pytest.raises(DataError, match=r"line \d+: bad camera line") as e:
        read_model(tmp_path)
    assert str(f) in str(e.value)


def test_image_referring_to_missing_camera(tmp_path):
    model = random_model(np.random.default_rng(6))
    next(iter(model.images.values())).camera_id = 999
    write_model(model, tmp_path)
    with pytest.raises(DataError, match="missing camera 999"):
        read_model(tmp_path)


def test_module_exports():
    for name in colmap.__all__:
        assert hasattr(colmap, name)
