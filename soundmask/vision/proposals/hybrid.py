"""``hybrid`` proposals: the COCO detector's objects first, the learned proposer's masks after them.

On real photographs the learned decoder (trained on the generator's renders and on real-photo composites) misses
objects that YOLOv3-tiny finds whenever they are of a COCO class (dog, cow, elephant, bear, bird, toilet...); on
renders and for non-COCO objects (instruments, kettles) the learned masks are better. This source keeps the
``detections`` (4) most confident detections with confidence ≥ ``min_detection`` (GrabCut-refined,
:class:`~.yolo.YoloGrabCutProposer`, with their COCO names), then adds the learned masks that overlap no kept
mask by more than ``nms_iou`` (mask IoU), up to ``top_n`` in all. Scores: ``0.5 + 0.5·confidence`` for
detections and ``0.5·objectness`` for learned masks, so the final selection ranks detections first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from soundmask.vision.proposals.base import ProposalSource, check_image, mask_iou
from soundmask.vision.types import Proposals

__all__ = ["HybridProposer"]


class HybridProposer(ProposalSource):
    """Detections (``yolo``) first, then learned masks; see the module docstring. ``weights``/``encoder`` go to
    the learned proposer, ``min_detection`` is the detector's confidence floor and ``detections`` the most
    detections kept."""

    name = "hybrid"

    def __init__(
        self,
        top_n: int = 8,
        nms_iou: float = 0.5,
        weights: str | Path | None = None,
        encoder: Any = None,
        min_detection: float = 0.01,
        detections: int = 4,
    ) -> None:
        from soundmask.vision.proposals.learned import LearnedProposer
        from soundmask.vision.proposals.yolo import YoloGrabCutProposer

        super().__init__(top_n, nms_iou)
        self.learned = LearnedProposer(weights=weights, top_n=top_n, nms_iou=nms_iou, encoder=encoder)
        self.detector = YoloGrabCutProposer(top_n=min(detections, top_n), nms_iou=nms_iou, conf_threshold=min_detection)

    def propose(self, image: np.ndarray) -> Proposals:
        return self.propose_batch(np.asarray(image)[None])[0]

    def propose_batch(self, images: np.ndarray) -> list[Proposals]:
        """The merged proposals of each image; no second NMS on the boxes (:meth:`_merge` already suppressed
        learned masks by mask IoU, and a learned mask inside a detection's box is often another object)."""
        images = np.stack([check_image(im) for im in images])
        learned = self.learned.propose_batch(images)
        return [self._merge(self.detector.propose(im), lp) for im, lp in zip(images, learned, strict=True)]

    def _merge(self, det: Proposals, learned: Proposals) -> Proposals:
        masks = list(det.masks)
        scores = [0.5 + 0.5 * float(s) for s in det.scores]
        boxes = list(det.boxes)
        names = list(det.names) if det.names else [""] * len(det)
        if len(learned):
            over = mask_iou(learned.masks, det.masks).max(1) if len(det) else np.zeros(len(learned))
            for i in np.flatnonzero(over <= self.nms_iou):
                if len(masks) >= self.top_n:
                    break
                masks.append(learned.masks[i])
                scores.append(0.5 * float(learned.scores[i]))
                boxes.append(learned.boxes[i])
                names.append("")
        h, w = det.masks.shape[1:] if len(det) else learned.masks.shape[1:]
        if not masks:
            return Proposals.empty(h, w, self.name)
        return Proposals(np.stack(masks), np.array(scores), np.stack(boxes), tuple(names), self.name)
