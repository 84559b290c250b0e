"""Camera poses from the frames of a video: structure from motion with COLMAP (``pycolmap``, CPU).

:func:`estimate_poses` runs COLMAP's standard sparse pipeline on a list of frames:

1. **Features**: SIFT on every frame (one shared ``SIMPLE_PINHOLE`` camera: a video has one lens and one zoom;
   lens distortion is not modelled, so strongly distorted footage (fisheye, action cameras) reconstructs worse).
2. **Matching**: sequential (each frame with its ``overlap`` successors and a quadratic sequence beyond, the
   order of a video), or exhaustive for up to ``exhaustive_up_to`` frames; geometric verification by COLMAP.
   Sequential is the default: on our orbit-camera scenes exhaustive matching linked look-alike views from
   opposite sides of the room and folded the model in 2 of 4 scenes, sequential in none of 8.
3. **Incremental mapping** (registration, triangulation, bundle adjustment); the model with the most
   registered frames is kept.

Low-texture or low-resolution frames give few SIFT keypoints at COLMAP's default contrast threshold; when fewer
than ``min_registered`` of the frames register, the run is repeated once with a lower peak threshold
(``retry_peak_threshold``) and the better model is kept. A :class:`PoseEstimate` names its frames, their cameras
(our :class:`~soundmask.data.types.Camera`, OpenCV axes, at the size of the given frames), the sparse points and
colours (they initialise the Gaussians), and what was measured (registered share, mean reprojection error).
:class:`PoseError` says why poses could not be estimated (a caller falls back to 2D).

The scale and orientation of the model are COLMAP's own (arbitrary units, first camera near the origin);
nothing downstream needs metres except the stereo TDoA cue, which :mod:`soundmask.pipeline.video` makes
scale-free.
"""

from __future__ import annotations

import contextlib
import tempfile
import time as _time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.config import option
from soundmask.data.types import Camera, Intrinsics
from soundmask.errors import ConfigError, SoundmaskError

__all__ = ["PoseConfig", "PoseError", "PoseEstimate", "estimate_poses"]


class PoseError(SoundmaskError):
    """Camera poses could not be estimated (too few frames registered, no pycolmap)."""


@dataclass
class PoseConfig:
    """Options of pose estimation (``soundmask run``: ``--poses-*``)."""

    max_side: int = option(640, "frames are resized so that their longest side is at most this for SIFT")
    min_side: int = option(256, "smaller frames are upsampled to this longest side for SIFT")
    min_registered: float = option(0.6, "poses count when at least this share of the frames registers")
    exhaustive_up_to: int = option(
        0, "match every frame pair up to this many frames (0: always sequential, in video order)"
    )
    overlap: int = option(12, "sequential matching: each frame is matched with this many following frames")
    retry_peak_threshold: float = option(0.002, "SIFT contrast threshold of the second try (COLMAP: 0.0067)")
    seed: int = option(0, "random seed of the mapper")
    threads: int = option(
        1,
        "COLMAP threads: 1 gives the same model on every run (a resumed run equals an "
        "uninterrupted one); more are faster but vary from run to run",
    )

    def __post_init__(self) -> None:
        if (
            self.max_side < 32
            or not 0 < self.min_registered <= 1
            or self.exhaustive_up_to < 0
            or self.overlap < 1
            or self.threads < 1
        ):
            raise ConfigError(
                "max-side >= 32, min-registered in (0, 1], exhaustive-up-to >= 0, overlap and threads >= 1"
            )


@dataclass
class PoseEstimate:
    """What structure from motion found: ``cameras[name]`` for each registered frame (``names`` in input order),
    ``points`` (N, 3) / ``colors`` (N, 3) uint8 of the sparse model, and what was measured."""

    names: list[str]
    cameras: dict[str, Camera]
    points: np.ndarray
    colors: np.ndarray
    total_frames: int
    mean_reprojection_error: float
    attempts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def registered_share(self) -> float:
        return len(self.names) / max(self.total_frames, 1)

    def summary(self) -> dict[str, Any]:
        return {
            "registered": len(self.names),
            "frames": self.total_frames,
            "registered_share": round(self.registered_share, 4),
            "points": int(len(self.points)),
            "mean_reprojection_error_px": round(self.mean_reprojection_error, 4),
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
        }


def _pycolmap() -> Any:
    try:
        import pycolmap
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise PoseError(
            "pycolmap is not installed, so camera poses cannot be estimated",
            fix="pip install pycolmap (it ships COLMAP for the CPU)",
        ) from e
    return pycolmap


@contextlib.contextmanager
def _quiet(pycolmap: Any) -> Iterator[None]:
    """COLMAP logs every step through glog on stderr; the outcome is reported by us, so keep only fatal errors."""
    log = pycolmap.logging
    old = log.minloglevel
    log.minloglevel = 3
    try:
        yield
    finally:
        log.minloglevel = old


def _resized(frames: Sequence[np.ndarray], max_side: int, min_side: int) -> tuple[list[np.ndarray], float]:
    import cv2

    H, W = frames[0].shape[:2]
    s = min(1.0, max_side / max(H, W))
    if max(H, W) < min_side:  # tiny frames: SIFT finds more (and better localised) keypoints on an upsampled copy
        s = min_side / max(H, W)
    if s == 1.0:
        return [np.ascontiguousarray(f) for f in frames], 1.0
    size = (max(8, round(W * s)), max(8, round(H * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return [cv2.resize(np.ascontiguousarray(f), size, interpolation=interp) for f in frames], s


def _run_once(pycolmap: Any, folder: Path, n: int, cfg: PoseConfig, peak_threshold: float | None) -> Any:
    """One COLMAP run on the images in ``folder/images``; the model with the most registered images (or None)."""
    db = folder / "database.db"
    if db.exists():
        db.unlink()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_PINHOLE"
    ext = pycolmap.FeatureExtractionOptions()
    ext.num_threads = cfg.threads
    if peak_threshold is not None:
        ext.sift.peak_threshold = peak_threshold
    images = folder / "images"
    pycolmap.extract_features(
        db,
        images,
        camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader,
        extraction_options=ext,
        device=pycolmap.Device.cpu,
    )
    match = pycolmap.FeatureMatchingOptions()
    match.num_threads = cfg.threads
    if n <= cfg.exhaustive_up_to:
        pycolmap.match_exhaustive(db, matching_options=match, device=pycolmap.Device.cpu)
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = cfg.overlap
        pycolmap.match_sequential(db, matching_options=match, pairing_options=pairing, device=pycolmap.Device.cpu)
    opts = pycolmap.IncrementalPipelineOptions()
    opts.random_seed = cfg.seed
    opts.num_threads = cfg.threads
    sparse = folder / f"sparse_{peak_threshold}"
    sparse.mkdir(exist_ok=True)
    maps = pycolmap.incremental_mapping(db, images, sparse, options=opts)
    if not maps:
        return None
    return max(maps.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))


def _to_estimate(rec: Any, names: list[str], size: tuple[int, int], scale: float) -> PoseEstimate:
    """Our cameras (intrinsics at ``size`` = the given frames' (H, W); SIFT ran at ``scale`` × that)."""
    H, W = size
    cams: dict[str, Camera] = {}
    for im in rec.images.values():
        name = Path(im.name).stem
        cam = rec.cameras[im.camera_id]
        f, cx, cy = (float(v) for v in cam.params[:3])
        k = Intrinsics(f / scale, f / scale, cx / scale, cy / scale, W, H)  # both: pixel corners at integers
        w2c = np.eye(4)
        w2c[:3] = np.asarray(im.cam_from_world().matrix(), dtype=np.float64)
        cams[name] = Camera(k, np.linalg.inv(w2c), name=name)
    pts = [(p.xyz, p.color) for p in rec.points3D.values()]
    xyz = np.array([p for p, _ in pts], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([c for _, c in pts], dtype=np.uint8).reshape(-1, 3)
    ordered = [n for n in names if n in cams]
    return PoseEstimate(ordered, cams, xyz, rgb, len(names), float(rec.compute_mean_reprojection_error()))


def estimate_poses(
    frames: Sequence[np.ndarray],
    names: Sequence[str],
    cfg: PoseConfig | None = None,
    *,
    work_dir: str | Path | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> PoseEstimate:
    """Camera poses of ``frames`` ((H, W, 3) uint8, all one size) named ``names`` (see the module docstring).

    Raises :class:`PoseError` when fewer than ``cfg.min_registered`` of the frames register (the message says how
    many did and what to try). ``work_dir`` keeps COLMAP's database and models (default: a temporary folder)."""
    from soundmask.data.io import write_image

    cfg = cfg or PoseConfig()
    names = list(names)
    if len(frames) != len(names) or len(set(names)) != len(names):
        raise ValueError("give one unique name per frame")
    if len(frames) < 3:
        raise PoseError(
            f"{len(frames)} frame(s): structure from motion needs at least 3 views", fix="sample more frames (--fps)"
        )
    pycolmap = _pycolmap()
    say = progress or (lambda stage, frac: None)
    t0 = _time.perf_counter()
    small, scale = _resized(frames, cfg.max_side, cfg.min_side)
    with contextlib.ExitStack() as stack:
        folder = Path(work_dir) if work_dir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (folder / "images").mkdir(parents=True, exist_ok=True)
        for name, f in zip(names, small, strict=True):
            write_image(folder / "images" / f"{name}.png", f)
        best: PoseEstimate | None = None
        attempts: list[dict[str, Any]] = []
        for k, peak in enumerate((None, cfg.retry_peak_threshold)):
            say("poses", k / 2)
            with _quiet(pycolmap):
                rec = _run_once(pycolmap, folder, len(names), cfg, peak)
            est = _to_estimate(rec, names, frames[0].shape[:2], scale) if rec is not None else None
            attempts.append(
                {
                    "peak_threshold": peak if peak is not None else "colmap default",
                    "registered": len(est.names) if est else 0,
                }
            )
            if est is not None and (best is None or len(est.names) > len(best.names)):
                best = est
            if best is not None and best.registered_share >= cfg.min_registered:
                break
    say("poses", 1.0)
    n_reg = len(best.names) if best is not None else 0
    if best is None or best.registered_share < cfg.min_registered:
        raise PoseError(
            f"camera poses could not be estimated: COLMAP registered {n_reg} of {len(names)} frames "
            f"(at least {cfg.min_registered:.0%} are needed)",
            fix="film with more texture in view and slower camera motion, or sample more frames (--fps)",
        )
    best.attempts = attempts
    best.seconds = _time.perf_counter() - t0
    return best
