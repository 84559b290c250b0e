"""Renderer exactness (ids/depth against an independent ray cast), projection, conventions; primitives."""

from __future__ import annotations

import ctypes.util
import time

import numpy as np
import pytest

from soundmask.data.types import Camera, Intrinsics
from soundmask.synth import meshes as M

moderngl = pytest.importorskip("moderngl", reason="the renderer needs `pip install moderngl`")

from soundmask.synth.render import Light, Lighting, Renderer, RenderResult  # noqa: E402

from _raycast import _moller_trumbore, boundary, raycast  # noqa: E402


@pytest.fixture(scope="module")
def renderer():
    # only a machine without libEGL skips; any other failure fails
    if ctypes.util.find_library("EGL") is None:
        pytest.skip("libEGL not found: `apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri`")
    with Renderer(64, 48) as r:
        yield r


def look_at(eye, target, up=(0.0, 0.0, 1.0), roll: float = 0.0) -> np.ndarray:
    """camera_to_world (OpenCV: x right, y down, z forward) looking from ``eye`` at ``target``."""
    eye = np.asarray(eye, float)
    f = np.asarray(target, float) - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    c, s = np.cos(roll), np.sin(roll)
    r, d = c * r + s * d, -s * r + c * d
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = r, d, f, eye
    return m


def random_scene(seed: int) -> list[M.Instance]:
    rng = np.random.default_rng(seed)
    makers = [
        lambda c: M.box(rng.uniform(0.2, 0.6, 3), color=c),
        lambda c: M.sphere(rng.uniform(0.15, 0.35), sections=24, rings=12, color=c),
        lambda c: M.cylinder(rng.uniform(0.1, 0.25), rng.uniform(0.3, 0.8), sections=24, color=c),
        lambda c: M.cone(rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.8), sections=24, color=c),
        lambda c: M.capsule(rng.uniform(0.08, 0.2), rng.uniform(0.5, 0.9), sections=16, rings=4, color=c),
    ]
    out = [M.Instance(M.box((4.0, 4.0, 0.02), color="wood"), 0, M.translation((0, 0, -0.01)))]
    n = int(rng.integers(3, 6))
    for k in range(n):
        mesh = M.on_floor(makers[int(rng.integers(len(makers)))](rng.integers(30, 255, 3)))
        pose = M.translation((*rng.uniform(-1.0, 1.0, 2), rng.uniform(0.0, 0.3))) @ M.rotation_z(
            rng.uniform(0, 2 * np.pi)
        )
        out.append(M.Instance(mesh, k + 1, pose))
    return out


def random_camera(seed: int, width: int = 64, height: int = 48) -> Camera:
    rng = np.random.default_rng(1000 + seed)
    a = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(2.2, 3.5)
    eye = (dist * np.cos(a), dist * np.sin(a), rng.uniform(0.6, 2.0))
    fx = rng.uniform(45, 70)
    K = Intrinsics(
        fx,
        fx * rng.uniform(0.9, 1.1),
        width / 2 + rng.uniform(-6, 6),
        height / 2 + rng.uniform(-5, 5),
        width,
        height,
    )
    return Camera(K, look_at(eye, (*rng.uniform(-0.3, 0.3, 2), 0.3), roll=rng.uniform(-0.3, 0.3)))


@pytest.mark.parametrize("seed", range(8))
def test_ids_and_depth_match_raycast(renderer: Renderer, seed: int) -> None:
    instances = random_scene(seed)
    camera = random_camera(seed)
    out = renderer.render(instances, camera)
    ref_ids, ref_depth = raycast(instances, camera)
    assert out.ids.shape == (48, 64) and out.ids.dtype == np.int32
    same = out.ids == ref_ids
    assert same.mean() >= 0.995, f"ids agree on {same.mean():.4f} of the pixels"
    # disagreements only on silhouettes: an id boundary right there, in the reference or the render
    ref_hit = np.isfinite(ref_depth)
    edges = boundary(ref_ids, ref_hit) | boundary(out.ids, out.hit)
    assert np.all(edges[~same])
    assert len(np.unique(ref_ids)) >= 2  # the camera does see objects
    # hit or miss (room vs empty space, both id 0) agrees too, except on the room's silhouette
    agree = (ref_hit == out.hit) & same
    assert agree.mean() >= 0.995 and np.all(edges[~agree])
    both = same & ref_hit & out.hit
    err = np.abs(out.depth[both].astype(np.float64) - ref_depth[both])
    assert np.all(err <= 1e-4 + 1e-5 * ref_depth[both]), f"max depth error {err.max():.3g} m"


def test_reference_raycasters_agree() -> None:
    """The numpy Möller–Trumbore fallback and trimesh+embreex give the same reference."""
    pytest.importorskip("embreex")
    instances, camera = random_scene(3), random_camera(3)
    _ids, depth = raycast(instances, camera)
    tris = np.concatenate(
        [(i.mesh.vertices.astype(np.float64) @ i.model[:3, :3].T + i.model[:3, 3])[i.mesh.faces] for i in instances]
    )
    K, c2w = camera.intrinsics, camera.camera_to_world
    u, v = np.meshgrid(np.arange(K.width) + 0.5, np.arange(K.height) + 0.5)
    dirs = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], -1).reshape(-1, 3) @ c2w[:3, :3].T
    t, _tri = _moller_trumbore(c2w[:3, 3], dirs, tris)
    t = t.reshape(depth.shape)
    assert np.array_equal(np.isfinite(t), np.isfinite(depth))
    assert np.allclose(t[np.isfinite(t)], depth[np.isfinite(depth)], atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_projection_of_a_point_is_the_pixel_drawn(renderer: Renderer, seed: int) -> None:
    """A tiny triangle around a 3D point lights exactly the pixel where Camera.project puts the point."""
    rng = np.random.default_rng(seed)
    camera = random_camera(seed)
    K = camera.intrinsics
    col, row = int(rng.integers(2, K.width - 2)), int(rng.integers(2, K.height - 2))
    uv = np.array([col + 0.5, row + 0.5]) + rng.uniform(-0.2, 0.2, 2)
    z = rng.uniform(1.0, 5.0)
    pc = np.array([(uv[0] - K.cx) / K.fx * z, (uv[1] - K.cy) / K.fy * z, z])
    c2w = camera.camera_to_world
    point = c2w[:3, :3] @ pc + c2w[:3, 3]
    proj, depth = camera.project(point[None])
    assert np.allclose(proj[0], uv, atol=1e-9) and np.isclose(depth[0], z)
    assert (int(np.floor(proj[0, 0])), int(np.floor(proj[0, 1]))) == (col, row)
    # a triangle in the fronto-parallel plane through the point, circumradius 0.45 px
    r_m = 0.45 * z / max(K.fx, K.fy)
    ang = rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3
    corners_c = pc + np.stack([r_m * np.cos(ang), r_m * np.sin(ang), np.zeros(3)], 1)
    corners_w = corners_c @ c2w[:3, :3].T + c2w[:3, 3]
    tri = M.Mesh(corners_w, [[0, 1, 2]], colors=(255, 255, 255))
    out = renderer.render([M.Instance(tri, 7)], camera)
    drawn = np.argwhere(out.ids == 7)
    assert drawn.tolist() == [[row, col]]
    assert abs(out.depth[row, col] - z) < 1e-5 * z


def test_result_conventions(renderer: Renderer) -> None:
    camera = random_camera(0)
    empty = renderer.render([], camera)
    assert isinstance(empty, RenderResult)
    assert empty.rgb.shape == (48, 64, 3) and empty.rgb.dtype == np.uint8
    assert empty.depth.dtype == np.float32 and np.all(np.isinf(empty.depth)) and not empty.hit.any()
    assert np.all(empty.ids == 0) and np.all(empty.rgb == 0)
    out = renderer.render(random_scene(0), camera)
    assert out.hit.any() and np.all(out.depth[out.hit] > 0)
    assert set(np.unique(out.ids)) <= set(range(6))
    assert np.array_equal(out.mask(1), out.ids == 1)
    # the room/floor has id 0 but finite depth; empty space has id 0 and infinite depth
    assert np.any((out.ids == 0) & out.hit)
    wrong = Camera(camera.intrinsics.scaled(32, 24), camera.camera_to_world)
    with pytest.raises(ValueError, match="Intrinsics.scaled"):
        renderer.render([], wrong)


def test_background_colour_and_release() -> None:
    r = Renderer(16, 12, background=(10, 20, 30))
    K = Intrinsics(20, 20, 8, 6, 16, 12)
    out = r.render([], Camera(K, np.eye(4)))
    assert np.all(out.rgb == [10, 20, 30])
    r.release()
    r.release()  # idempotent
    with pytest.raises(RuntimeError):
        r.render([], Camera(K, np.eye(4)))


def test_lighting_is_lambert(renderer: Renderer) -> None:
    """Ambient only: colour = ambient × albedo; a head-on directional light adds intensity × albedo."""
    camera = Camera(Intrinsics(50, 50, 32, 24, 64, 48), look_at((0, -3, 0.5), (0, 0, 0.5)))
    wall = M.Instance(M.box((3.0, 0.1, 3.0), color=(200, 100, 50)), 1)
    out = renderer.render([wall], camera, Lighting(ambient=0.5, lights=()))
    assert np.abs(out.rgb[out.ids == 1].astype(int) - [100, 50, 25]).max() <= 1
    head_on = Lighting(
        ambient=0.25,
        lights=(Light("directional", direction=(0, -1, 0), intensity=0.5),),
    )
    out = renderer.render([wall], camera, head_on)
    assert np.abs(out.rgb[out.ids == 1].astype(int) - [150, 75, 38]).max() <= 1
    # a point light in front of the wall: brightest where the wall is closest to it
    point = Lighting(
        ambient=0.0,
        lights=(Light("point", position=(0, -1.0, 0.5), intensity=1.0, falloff=1.0),),
    )
    out = renderer.render([wall], camera, point)
    lum = out.rgb[..., 0].astype(float)
    uv, _ = camera.project(np.array([[0, -0.05, 0.5]]))
    c, r = np.floor(uv[0]).astype(int)
    assert lum[r, c] >= lum[out.ids == 1].max() - 1 and lum[r, c] > 80


def test_texture_orientation(renderer: Renderer) -> None:
    """uv v = 1 is the top row of the texture image; the top of a wall shows it."""
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:4] = (255, 0, 0)  # image top: red
    tex[4:] = (0, 0, 255)  # image bottom: blue
    # a wall in the xz plane, z up
    verts = [(-1, 0, 0), (1, 0, 0), (1, 0, 2), (-1, 0, 2)]
    quad = M.Mesh(
        verts,
        [[0, 1, 2], [0, 2, 3]],
        colors=(255, 255, 255),
        uvs=[(0, 0), (1, 0), (1, 1), (0, 1)],
        texture=tex,
    )
    camera = Camera(Intrinsics(40, 40, 32, 24, 64, 48), look_at((0, -4, 1), (0, 0, 1)))
    out = renderer.render([M.Instance(quad, 3)], camera, Lighting(ambient=1.0, lights=()))
    rows = np.nonzero((out.ids == 3).any(axis=1))[0]
    top, bottom = out.rgb[rows[1], 32], out.rgb[rows[-2], 32]
    assert top[0] > 200 and top[2] < 50, top
    assert bottom[2] > 200 and bottom[0] < 50, bottom


def test_meshes_upload_once_and_speed() -> None:
    """Many cameras over the same uploaded meshes; ~8k triangles at 256² well under 100 ms/frame."""
    rng = np.random.default_rng(0)
    spheres = [M.on_floor(M.sphere(0.25, sections=32, rings=16, color=rng.integers(0, 255, 3))) for _ in range(8)]
    insts = [M.Instance(M.box((6, 6, 0.02)), 0, M.translation((0, 0, -0.01)))]
    insts += [M.Instance(s, i + 1, M.translation((*rng.uniform(-2, 2, 2), 0))) for i, s in enumerate(spheres)]
    assert 7000 < sum(i.mesh.num_faces for i in insts) < 9000
    K = Intrinsics(200, 200, 128, 128, 256, 256)
    cams = [Camera(K, look_at((4 * np.cos(a), 4 * np.sin(a), 1.6), (0, 0, 0.3))) for a in np.linspace(0, 6, 20)]
    with Renderer(256, 256) as r:
        r.render(insts, cams[0])
        assert len(r._meshes) == 9
        t = time.perf_counter()
        for c in cams:
            out = r.render(insts, c)
        per_frame = (time.perf_counter() - t) / len(cams)
        assert len(r._meshes) == 9
        r.forget(spheres[0])
        assert len(r._meshes) == 8
    assert out.meta["triangles"] == sum(i.mesh.num_faces for i in insts)
    assert per_frame < 0.1, f"{per_frame * 1000:.1f} ms per frame"


# --- primitives ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mesh",
    [
        M.box((0.3, 0.5, 0.7)),
        M.cylinder(0.2, 0.6),
        M.cone(0.3, 0.5),
        M.sphere(0.4),
        M.capsule(0.1, 0.6),
    ],
    ids=lambda m: m.name,
)
def test_primitives_closed_and_outward(mesh: M.Mesh) -> None:
    tri = mesh.vertices.astype(np.float64)[mesh.faces]
    # outward: signed volume (divergence theorem) positive and equal to |volume|
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert vol > 0
    centroid_dir = np.einsum("ij,ij->i", mesh.face_normals(), tri.mean(axis=1))
    assert np.all(centroid_dir > -1e-9)
    assert mesh.normals is not None and np.allclose(np.linalg.norm(mesh.normals, axis=1), 1, atol=1e-5)
    b = mesh.bounds
    assert np.allclose(b[0], -b[1], atol=1e-6)  # centred


def test_normalize_and_floor() -> None:
    m = M.composite(
        [
            (M.box((0.4, 0.2, 0.1), "red"), (0, 0, 0)),
            (M.sphere(0.1, color="blue"), (0.3, 0.0, 0.2)),
        ]
    )
    n = M.normalized(m, 2.0)
    assert np.isclose(n.extents.max(), 2.0) and np.isclose(n.bounds[0, 2], 0.0, atol=1e-6)
    assert np.allclose((n.bounds[0, :2] + n.bounds[1, :2]) / 2, 0, atol=1e-6)
    h = M.normalized(m, 0.5, along="height")
    assert np.isclose(h.extents[2], 0.5)
    assert np.allclose(h.extents / h.extents[2], m.extents / m.extents[2], rtol=1e-5)
    inst = M.Instance(h, 4, M.translation((1, 2, 0)) @ M.rotation_z(np.pi / 2))
    wb = inst.world_bounds
    assert np.isclose(wb[0, 2], 0, atol=1e-6) and np.allclose((wb[0, :2] + wb[1, :2]) / 2, (1, 2), atol=1e-6)
    with pytest.raises(ValueError):
        M.Instance(h, -1)
    with pytest.raises(ValueError):
        M.Mesh(np.zeros((3, 3)), [[0, 1, 5]])
