"""Offscreen rasteriser for synthetic scenes: colour, object ids and metric depth in one pass.

Runs on the CPU through OpenGL 3.3 on Mesa's llvmpipe via a headless EGL context (``moderngl``); no
display, no GPU. Needs the pip package ``moderngl`` (with its ``glcontext``) and the Debian packages
``libegl1 libegl-mesa0 libgl1-mesa-dri`` (see :func:`create_context` for what to check when EGL fails).

Conventions
-----------
* World: z up, metres (:mod:`soundmask.synth.meshes`). Cameras: :class:`soundmask.data.types.Camera`
  (OpenCV x right, y down, z forward; pixel centres at integer + 0.5).
* The GL projection is built from K exactly: a camera-frame point (X, Y, Z) lands at window coordinates
  ``(fx X/Z + cx, fy Y/Z + cy)``, and GL samples every pixel at its centre, so pixel (row r, column c)
  shows the surface hit by the ray through ``(c + 0.5, r + 0.5)``. Image row 0 is GL's window row 0,
  so no flip is needed when reading back (the image is "upside down" for GL, which does not matter
  because nothing is culled).
* :class:`RenderResult`: ``rgb`` uint8 (H, W, 3); ``ids`` int32 (H, W), the ``object_id`` of the
  visible instance, 0 for the room and for empty background; ``depth`` float32 (H, W), the
  camera-frame z (not the ray length) in metres of the visible surface, **+inf where nothing was hit**
  (``result.hit`` is ``isfinite(depth)``).
* No multisampling, so ids and depth are exact point samples at pixel centres (the colour is aliased
  too; render larger and downsample if you want smooth colour edges).
* Both sides of every triangle are drawn and lit (normals are turned to face the camera), so meshes
  with any winding work. Depth testing uses a 24-bit buffer holding linear depth
  ``(z − near)/(far − near)``, i.e. about ``(far − near)·6e-8`` m resolution for resolving occlusion;
  the ``depth`` image itself is float32 camera z interpolated per pixel.

Usage::

    with Renderer(256, 256) as r:
        for cam in cameras:
            out = r.render(instances, cam)

Meshes are uploaded once on first use (keyed by identity) and reused for every later frame; call
:meth:`Renderer.forget` to free one, or let :meth:`Renderer.release` / the context manager free all.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np

from soundmask.data.types import Camera

from .meshes import Instance, Mesh

__all__ = [
    "Light",
    "Lighting",
    "RenderResult",
    "Renderer",
    "create_context",
    "projection_from_intrinsics",
]

MAX_LIGHTS = 4

_VERTEX_SHADER = """
#version 330
uniform mat4 u_modelview;
uniform mat3 u_normal_matrix;
uniform mat4 u_proj;
in vec3 in_pos;
in vec3 in_color;
in vec3 in_normal;
in vec2 in_uv;
in vec4 in_rect;
out vec3 v_pos;
out vec3 v_color;
out vec3 v_normal;
out vec2 v_uv;
flat out vec4 v_rect;
void main() {
    vec4 pc = u_modelview * vec4(in_pos, 1.0);
    v_pos = pc.xyz;
    v_color = in_color;
    v_normal = u_normal_matrix * in_normal;
    v_uv = in_uv;
    v_rect = in_rect;
    gl_Position = u_proj * pc;
}
"""

_FRAGMENT_SHADER = """
#version 330
#define N_LIGHTS @MAX_LIGHTS@
uniform sampler2D u_texture;
uniform bool u_textured;
uniform int u_object_id;
uniform vec3 u_ambient;
uniform int u_num_lights;
uniform vec4 u_light_pos[N_LIGHTS];     // camera frame; w = 0: direction towards the light, w = 1: position
uniform vec3 u_light_color[N_LIGHTS];   // colour × intensity
uniform float u_light_falloff[N_LIGHTS];
uniform float u_near;
uniform float u_far;
in vec3 v_pos;
in vec3 v_color;
in vec3 v_normal;
in vec2 v_uv;
flat in vec4 v_rect;
layout(location = 0) out vec4 f_color;
layout(location = 1) out int f_id;
layout(location = 2) out float f_depth;
void main() {
    vec3 ng = normalize(cross(dFdx(v_pos), dFdy(v_pos)));
    if (dot(ng, v_pos) > 0.0) ng = -ng;              // geometric normal, facing the camera
    vec3 n = ng;
    if (dot(v_normal, v_normal) > 0.25) {
        n = normalize(v_normal);
        if (dot(n, ng) < 0.0) n = -n;                 // back side of a smooth surface
    }
    vec3 albedo = v_color;
    if (u_textured && v_rect.z > 0.0) {
        vec2 st = v_rect.xy + fract(v_uv) * v_rect.zw;
        albedo *= textureGrad(u_texture, st, dFdx(v_uv) * v_rect.zw, dFdy(v_uv) * v_rect.zw).rgb;
    }
    vec3 light = u_ambient;
    for (int i = 0; i < u_num_lights; ++i) {
        vec3 l;
        float att = 1.0;
        if (u_light_pos[i].w == 0.0) {
            l = normalize(u_light_pos[i].xyz);
        } else {
            vec3 d = u_light_pos[i].xyz - v_pos;
            float r = length(d) / u_light_falloff[i];
            l = d / max(length(d), 1e-6);
            att = 1.0 / (1.0 + r * r);
        }
        light += u_light_color[i] * att * max(dot(n, l), 0.0);
    }
    f_color = vec4(clamp(albedo * light, 0.0, 1.0), 1.0);
    f_id = u_object_id;
    f_depth = v_pos.z;
    gl_FragDepth = (v_pos.z - u_near) / (u_far - u_near);
}
""".replace("@MAX_LIGHTS@", str(MAX_LIGHTS))


@dataclass(frozen=True)
class Light:
    """A directional light (``direction``: world vector pointing *towards* the light) or a point light
    (``position``: world metres; brightness falls as 1/(1 + (d/falloff)²)). ``color`` RGB in [0, 1]."""

    kind: Literal["directional", "point"] = "directional"
    direction: tuple[float, float, float] = (0.3, -0.5, 1.0)
    position: tuple[float, float, float] = (0.0, 0.0, 2.5)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    intensity: float = 0.6
    falloff: float = 3.0


@dataclass(frozen=True)
class Lighting:
    """Lambert lighting: ``ambient`` (RGB in [0, 1] or a grey level) plus up to 4 lights."""

    ambient: float | tuple[float, float, float] = 0.35
    lights: tuple[Light, ...] = (
        Light("directional", direction=(0.4, -0.6, 1.0), intensity=0.55),
        Light("directional", direction=(-0.6, 0.5, 0.4), intensity=0.25),
    )

    def __post_init__(self) -> None:
        if len(self.lights) > MAX_LIGHTS:
            raise ValueError(f"at most {MAX_LIGHTS} lights, got {len(self.lights)}")


@dataclass
class RenderResult:
    """One rendered view: rgb uint8 (H, W, 3), ids int32 (H, W) (0 = room/background), depth float32
    (H, W) camera-frame z in metres (+inf where nothing was hit)."""

    rgb: np.ndarray
    ids: np.ndarray
    depth: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def hit(self) -> np.ndarray:
        """bool (H, W): pixels where some surface (room included) was hit."""
        return np.isfinite(self.depth)

    def mask(self, object_id: int) -> np.ndarray:
        """bool (H, W): pixels showing object ``object_id``."""
        return self.ids == object_id


def create_context(device_index: int = 0) -> Any:
    """A headless OpenGL ≥ 3.3 ``moderngl.Context`` on EGL (llvmpipe on a machine without GPU).

    Requirements: pip ``moderngl`` (pulls ``glcontext``); Debian ``libegl1`` (the glvnd EGL loader),
    ``libegl-mesa0`` (Mesa's EGL vendor, registered by ``/usr/share/glvnd/egl_vendor.d/50_mesa.json``)
    and ``libgl1-mesa-dri`` (``swrast_dri.so``, i.e. llvmpipe). No X server, DISPLAY or
    ``EGL_PLATFORM`` is needed: glcontext enumerates EGL devices and Mesa offers a software device.
    Typical failures: "requested device index 0, but found 0 devices" — no EGL vendor (install
    ``libegl-mesa0``; check ``__EGL_VENDOR_LIBRARY_FILENAMES`` is unset); "eglInitialize failed
    (0x3001)" with "MESA-LOADER: failed to open swrast" — install ``libgl1-mesa-dri`` (check
    ``LIBGL_DRIVERS_PATH``). ``EGL_LOG_LEVEL=debug`` shows what Mesa tries.
    """
    try:
        import moderngl
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("soundmask.synth.render needs `pip install moderngl`") from e
    try:
        # moderngl's stub wrongly types each **settings value as a dict
        return moderngl.create_standalone_context(backend="egl", require=330, device_index=device_index)  # type: ignore[arg-type]
    except Exception as e:  # pragma: no cover - depends on the machine
        env = {
            k: os.environ[k]
            for k in (
                "__EGL_VENDOR_LIBRARY_FILENAMES",
                "LIBGL_DRIVERS_PATH",
                "EGL_PLATFORM",
            )
            if k in os.environ
        }
        hint = (
            "could not create a headless EGL OpenGL 3.3 context. Install the Debian packages "
            "`libegl1 libegl-mesa0 libgl1-mesa-dri` ('found 0 devices' = no Mesa EGL vendor; "
            "'eglInitialize failed' = no swrast_dri.so); rerun with EGL_LOG_LEVEL=debug for details"
            + (f"; environment: {env}" if env else "")
            + "."
        )
        raise RuntimeError(f"{hint} Cause: {type(e).__name__}: {e}") from e


def projection_from_intrinsics(
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    width: int,
    height: int,
    near: float,
    far: float,
) -> np.ndarray:
    """4×4 GL projection of OpenCV camera-frame points, window y = image v (no flip, see module doc).

    ``ndc_x = 2 (fx X/Z + cx)/W − 1``, ``ndc_y = 2 (fy Y/Z + cy)/H − 1``, ``ndc_z`` ∈ [−1, 1] for
    Z ∈ [near, far], ``w = Z``.
    """
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * fx / width
    P[0, 2] = 2.0 * cx / width - 1.0
    P[1, 1] = 2.0 * fy / height
    P[1, 2] = 2.0 * cy / height - 1.0
    P[2, 2] = (far + near) / (far - near)
    P[2, 3] = -2.0 * far * near / (far - near)
    P[3, 2] = 1.0
    return P


def _gl_mat(m: np.ndarray) -> bytes:
    """Column-major float32 bytes of a numpy (row-major) matrix."""
    return np.ascontiguousarray(np.asarray(m, dtype=np.float64).T, dtype=np.float32).tobytes()


@dataclass
class _GpuMesh:
    mesh: Mesh
    vao: Any
    buffers: list[Any]
    texture: Any | None
    num_faces: int


class Renderer:
    """Renders lists of :class:`~soundmask.synth.meshes.Instance` from posed cameras (see module doc).

    ``width``/``height``: image size; every camera rendered must have these intrinsics sizes.
    ``near``/``far``: clipping distances in metres (camera z). ``background``: RGB of empty pixels.
    """

    def __init__(
        self,
        width: int,
        height: int,
        near: float = 0.05,
        far: float = 100.0,
        background: Sequence[int] = (0, 0, 0),
        context: Any | None = None,
    ) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"bad image size {width}x{height}")
        if not 0 < near < far:
            raise ValueError(f"need 0 < near < far, got {near}, {far}")
        self.width, self.height = int(width), int(height)
        self.near, self.far = float(near), float(far)
        self.background = np.asarray(background, dtype=np.uint8).reshape(3)
        self._own_ctx = context is None
        self.ctx = create_context() if context is None else context
        self._released = False
        ctx = self.ctx
        self.prog = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        size = (self.width, self.height)
        self._color = ctx.texture(size, 4, dtype="f1")
        self._ids = ctx.texture(size, 1, dtype="i4")
        self._depth = ctx.texture(size, 1, dtype="f4")
        for t in (self._color, self._ids, self._depth):
            t.filter = (ctx.NEAREST, ctx.NEAREST)
        self._zbuf = ctx.depth_renderbuffer(size)
        self.fbo = ctx.framebuffer(
            color_attachments=[self._color, self._ids, self._depth],
            depth_attachment=self._zbuf,
        )
        self._meshes: dict[int, _GpuMesh] = {}
        self.prog["u_texture"].value = 0
        self.prog["u_near"].value = self.near
        self.prog["u_far"].value = self.far

    # --- resources -----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self.release()

    def release(self) -> None:
        """Free every GL object (and the context when the renderer created it). Idempotent."""
        if self._released:
            return
        self._released = True
        with self.ctx:
            for key in list(self._meshes):
                self._free(key)
            for obj in (
                self.fbo,
                self._zbuf,
                self._color,
                self._ids,
                self._depth,
                self.prog,
            ):
                obj.release()
        if self._own_ctx:
            self.ctx.release()

    def _check(self) -> None:
        if self._released:
            raise RuntimeError("Renderer was released")

    def upload(self, mesh: Mesh) -> None:
        """Upload ``mesh`` to the GL context now (otherwise done on first render)."""
        self._check()
        with self.ctx:
            self._gpu(mesh)

    def forget(self, mesh: Mesh) -> None:
        """Free the GL buffers of ``mesh`` (it is uploaded again if rendered later)."""
        with self.ctx:
            self._free(id(mesh))

    def forget_all(self) -> None:
        """Free the GL buffers of every uploaded mesh (a long-lived renderer calls this between scenes)."""
        with self.ctx:
            for key in list(self._meshes):
                self._free(key)

    def _free(self, key: int) -> None:
        g = self._meshes.pop(key, None)
        if g is None:
            return
        g.vao.release()
        for b in g.buffers:
            b.release()
        if g.texture is not None:
            g.texture.release()

    def _gpu(self, mesh: Mesh) -> _GpuMesh:
        self._check()
        g = self._meshes.get(id(mesh))
        if g is not None and g.mesh is mesh:
            return g
        ctx = self.ctx
        n = mesh.num_vertices
        normals = mesh.normals if mesh.normals is not None else np.zeros((n, 3), np.float32)
        uvs = mesh.uvs if mesh.uvs is not None else np.zeros((n, 2), np.float32)
        rects = mesh.uv_rects if mesh.uv_rects is not None else np.zeros((n, 4), np.float32)
        arrays: list[tuple[np.ndarray, str, str]] = [
            (np.ascontiguousarray(mesh.vertices, np.float32), "3f", "in_pos"),
            (np.ascontiguousarray(mesh.colors, np.uint8), "3f1", "in_color"),
            (np.ascontiguousarray(normals, np.float32), "3f", "in_normal"),
            (np.ascontiguousarray(uvs, np.float32), "2f", "in_uv"),
            (np.ascontiguousarray(rects, np.float32), "4f", "in_rect"),
        ]
        buffers = [ctx.buffer(a.tobytes()) for a, _, _ in arrays]
        ibo = ctx.buffer(np.ascontiguousarray(mesh.faces, np.int32).tobytes())
        content = [(b, fmt, name) for b, (_, fmt, name) in zip(buffers, arrays, strict=True)]
        vao = ctx.vertex_array(self.prog, content, index_buffer=ibo, index_element_size=4)
        tex = None
        if mesh.texture is not None:
            img = np.ascontiguousarray(mesh.texture[::-1])  # v up: GL's first row is v = 0
            tex = ctx.texture((img.shape[1], img.shape[0]), 3, img.tobytes(), alignment=1)
            tex.build_mipmaps()
            tex.filter = (ctx.LINEAR_MIPMAP_LINEAR, ctx.LINEAR)
            tex.repeat_x = tex.repeat_y = True
        g = _GpuMesh(mesh, vao, buffers + [ibo], tex, mesh.num_faces)
        self._meshes[id(mesh)] = g
        return g

    # --- rendering -----------------------------------------------------------------------------
    def _set_lights(self, lighting: Lighting, w2c: np.ndarray) -> None:
        amb = np.broadcast_to(np.asarray(lighting.ambient, dtype=np.float64), (3,))
        self.prog["u_ambient"].value = tuple(float(a) for a in amb)
        pos = np.zeros((MAX_LIGHTS, 4), np.float32)
        col = np.zeros((MAX_LIGHTS, 3), np.float32)
        fall = np.ones(MAX_LIGHTS, np.float32)
        R, t = w2c[:3, :3], w2c[:3, 3]
        for i, light in enumerate(lighting.lights):
            if light.kind == "directional":
                d = R @ np.asarray(light.direction, dtype=np.float64)
                pos[i, :3] = d / max(np.linalg.norm(d), 1e-12)
            elif light.kind == "point":
                pos[i, :3] = R @ np.asarray(light.position, dtype=np.float64) + t
                pos[i, 3] = 1.0
            else:
                raise ValueError(f"unknown light kind {light.kind!r}")
            col[i] = np.asarray(light.color, dtype=np.float64) * light.intensity
            fall[i] = light.falloff
        self.prog["u_num_lights"].value = len(lighting.lights)
        self.prog["u_light_pos"].write(pos.tobytes())
        self.prog["u_light_color"].write(col.tobytes())
        self.prog["u_light_falloff"].write(fall.tobytes())

    def render(
        self,
        instances: Iterable[Instance],
        camera: Camera,
        lighting: Lighting | Sequence[Light] | None = None,
    ) -> RenderResult:
        """Render ``instances`` seen from ``camera`` (intrinsics size must equal the renderer's).

        ``lighting``: a :class:`Lighting`, a sequence of :class:`Light` (with the default ambient), or
        None for the default two-light set-up.
        """
        self._check()
        K = camera.intrinsics
        if (K.width, K.height) != (self.width, self.height):
            raise ValueError(
                f"camera is {K.width}x{K.height} but the renderer is {self.width}x{self.height}; "
                "use Intrinsics.scaled() or another Renderer"
            )
        if lighting is None:
            lighting = Lighting()
        elif not isinstance(lighting, Lighting):
            lighting = Lighting(lights=tuple(lighting))
        with self.ctx:  # make our context current (several renderers may coexist in one thread)
            return self._render(instances, camera, lighting)

    def _render(self, instances: Iterable[Instance], camera: Camera, lighting: Lighting) -> RenderResult:
        K = camera.intrinsics
        ctx, prog = self.ctx, self.prog
        w2c = camera.world_to_camera
        prog["u_proj"].write(
            _gl_mat(projection_from_intrinsics(K.fx, K.fy, K.cx, K.cy, K.width, K.height, self.near, self.far))
        )
        self._set_lights(lighting, w2c)
        self.fbo.use()
        ctx.viewport = (0, 0, self.width, self.height)
        ctx.disable(ctx.CULL_FACE | ctx.BLEND)
        ctx.enable(ctx.DEPTH_TEST)
        ctx.depth_func = "<"
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        n_tri = 0
        for inst in instances:
            g = self._gpu(inst.mesh)
            if g.num_faces == 0:
                continue
            mv = w2c @ inst.model
            nm = np.linalg.inv(mv[:3, :3]).T
            prog["u_modelview"].write(_gl_mat(mv))
            prog["u_normal_matrix"].write(_gl_mat(nm))
            prog["u_object_id"].value = inst.object_id
            if g.texture is not None:
                g.texture.use(0)
                prog["u_textured"].value = True
            else:
                prog["u_textured"].value = False
            g.vao.render()
            n_tri += g.num_faces
        H, W = self.height, self.width
        rgba = np.empty((H, W, 4), np.uint8)
        ids = np.empty((H, W), np.int32)
        depth = np.empty((H, W), np.float32)
        self._color.read_into(rgba)
        self._ids.read_into(ids)
        self._depth.read_into(depth)
        empty = rgba[..., 3] == 0
        rgb = rgba[..., :3].copy()
        if empty.any():
            depth[empty] = np.inf
            ids[empty] = 0
            rgb[empty] = self.background
        return RenderResult(rgb, ids, depth, meta={"triangles": n_tri})
