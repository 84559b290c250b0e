"""Segment Anything (Kirillov et al. 2023) or SAM-HQ (Ke et al. 2023) masks, prompted (``get_proposer("sam")``).

The model is Hugging Face ``transformers``' ``SamModel`` (``SamHQModel`` for a ``"sam_hq"`` folder, when the
installed transformers has it) with its ``SamProcessor``, loaded from a user-given local folder (what
``model.save_pretrained`` + ``processor.save_pretrained`` write; ``local_files_only``: nothing is downloaded).

Prompts:

- ``boxes_from="yolo"`` (default) or any other name in :data:`~soundmask.vision.proposals.PROPOSERS` (or a
  :class:`~soundmask.vision.proposals.base.ProposalSource` instance): that source's boxes, one prompt each. The
  score of a mask is the box's confidence × SAM's predicted IoU; the box's class name is kept.
- ``boxes_from="grid"``: a ``points_per_side``² grid of single foreground points (cell centres, as SAM's automatic
  mask generator), one prompt each; masks whose predicted IoU is below ``pred_iou_thresh`` are dropped and the
  score is the predicted IoU.

Per prompt SAM gives three masks (``multimask_output``); the one with the highest predicted IoU is kept. The
predicted IoU is clipped to [0, 1] (the head is a plain regression). A mask's box is its tight box
(:func:`~soundmask.vision.types.mask_boxes`); the prompts are in ``extra["prompt_boxes"]`` (x0, y0, x1, y1) or
``extra["prompt_points"]`` (x, y), SAM's predicted IoU in ``extra["pred_iou"]``. Empty masks are
dropped; the result then goes through the usual NMS(0.5) + top-N selection. The image is encoded once; the
prompts go through the mask decoder ``batch_size`` at a time.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from soundmask.errors import ConfigError
from soundmask.hf_local import load_pretrained, model_folder
from soundmask.vision.proposals.base import ProposalSource, select_top
from soundmask.vision.types import Proposals, mask_boxes

__all__ = ["SamProposer", "point_grid"]


def point_grid(points_per_side: int, height: int, width: int) -> np.ndarray:
    """(n², 2) ``x, y`` pixel coordinates of the centres of an n×n grid of cells over the image."""
    c = (np.arange(points_per_side) + 0.5) / points_per_side
    xs, ys = np.meshgrid(c * width, c * height)
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


class SamProposer(ProposalSource):
    """SAM / SAM-HQ masks from box or point-grid prompts; see the module docstring.

    ``path``: the local model folder; ``boxes_from``: ``"grid"``, a proposal-source name or instance;
    ``box_kwargs``: options of that source (e.g. ``{"refine": False}`` for ``"yolo"``: SAM does the refining);
    ``points_per_side`` / ``pred_iou_thresh``: the grid mode; ``batch_size``: prompts per mask-decoder call;
    ``device``: default CUDA when available.
    """

    name = "sam"

    def __init__(
        self,
        path: Any = None,
        boxes_from: str | ProposalSource = "yolo",
        box_kwargs: dict[str, Any] | None = None,
        points_per_side: int = 8,
        pred_iou_thresh: float = 0.5,
        top_n: int = 8,
        nms_iou: float = 0.5,
        batch_size: int = 16,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(top_n, nms_iou)
        if points_per_side < 1:
            raise ConfigError(f"points_per_side must be >= 1, got {points_per_side}", fix="pass e.g. 8")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}", fix="pass e.g. 16")
        if not isinstance(boxes_from, ProposalSource) and boxes_from != "grid":
            from soundmask.vision.proposals import PROPOSERS

            if boxes_from == self.name or boxes_from not in PROPOSERS:
                names = ", ".join(["grid"] + sorted(n for n in PROPOSERS if n != self.name))
                raise ConfigError(f"boxes_from={boxes_from!r} is not a box source for SAM", fix=f"use one of {names}")
        self.points_per_side = int(points_per_side)
        self.pred_iou_thresh = float(pred_iou_thresh)
        self.batch_size = int(batch_size)

        import transformers

        has_hq = hasattr(transformers, "SamHQModel")
        p = model_folder(
            path,
            "SamModel",
            ("sam", "sam_hq") if has_hq else ("sam",),
            who="the sam proposer",
            preprocessor="processor",
            preprocessor_class="SamProcessor",
        )
        self.model_type = json.loads((p / "config.json").read_text())["model_type"]
        model_cls: type[transformers.PreTrainedModel]
        if self.model_type == "sam_hq":
            model_cls = transformers.SamHQModel
            proc_cls = getattr(transformers, "SamHQProcessor", transformers.SamProcessor)
        else:
            model_cls, proc_cls = transformers.SamModel, transformers.SamProcessor
        self.path = p
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = load_pretrained(model_cls, p, "SAM model").eval().to(self.device)
        self.processor = load_pretrained(proc_cls, p, "SAM processor")
        side = int(self.model.config.vision_config.image_size)
        probe = self.processor(images=np.zeros((8, 8, 3), np.uint8), return_tensors="pt")["pixel_values"]
        if tuple(probe.shape[-2:]) != (side, side):
            raise ConfigError(
                f"the processor pads images to {tuple(probe.shape[-2:])} but the model expects {side}×{side}",
                p,
                "save the processor that belongs to this model",
            )

        self.box_source: ProposalSource | None = None
        if isinstance(boxes_from, ProposalSource):
            self.box_source = boxes_from
        elif boxes_from != "grid":
            from soundmask.vision.proposals import get_proposer

            self.box_source = get_proposer(boxes_from, **(box_kwargs or {}))
        self.boxes_from = "grid" if self.box_source is None else self.box_source.name

    # ---------------------------------------------------------------------------------------------- model
    @torch.inference_mode()
    def _decode(
        self, image: np.ndarray, boxes: np.ndarray | None, points: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best-of-three masks (P, H, W) bool and their predicted IoU (P,) for P box or point prompts (pixels)."""
        h, w = image.shape[:2]
        enc = self.processor(images=image, return_tensors="pt")
        pixel_values = enc["pixel_values"].to(self.device, self.model.dtype)
        original, reshaped = enc["original_sizes"], enc["reshaped_input_sizes"]
        # prompts in the resized (not padded) input's pixels, as the processor's own coordinate normalisation
        rh, rw = (float(v) for v in reshaped[0])
        scale = np.array([rw / w, rh / h], np.float32)
        emb = self.model.get_image_embeddings(pixel_values)
        if isinstance(emb, (tuple, list)):  # SAM-HQ: the image embedding and the ViT's intermediate features
            embeddings = {"image_embeddings": emb[0], "intermediate_embeddings": emb[1]}
        else:
            embeddings = {"image_embeddings": emb}
        prompts = boxes if boxes is not None else points
        assert prompts is not None  # boxes or points
        n = len(prompts)
        masks, ious = [], []
        for s in range(0, n, self.batch_size):
            prompt: dict[str, torch.Tensor] = {}
            if boxes is not None:
                b = boxes[s : s + self.batch_size] * np.tile(scale, 2)
                prompt["input_boxes"] = torch.from_numpy(b[None]).to(self.device, self.model.dtype)
            else:
                pt = prompts[s : s + self.batch_size] * scale  # the points
                prompt["input_points"] = torch.from_numpy(pt[None, :, None, :]).to(self.device, self.model.dtype)
                prompt["input_labels"] = torch.ones(1, len(pt), 1, dtype=torch.long, device=self.device)
            out = self.model(**embeddings, **prompt, multimask_output=True)
            iou = out.iou_scores[0].float()  # (p, 3)
            best = iou.argmax(dim=1)
            low_res = out.pred_masks[0][torch.arange(len(best), device=best.device), best]  # (p, h', w')
            full = self.processor.post_process_masks([low_res[:, None].float().cpu()], original, reshaped)[0]
            masks.append(full[:, 0].numpy().astype(bool))
            ious.append(iou.gather(1, best[:, None])[:, 0].cpu().numpy())
        return np.concatenate(masks), np.clip(np.concatenate(ious), 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------------------------------ proposals
    def _propose(self, image: np.ndarray) -> Proposals:
        h, w = image.shape[:2]
        if self.box_source is not None:
            src = self.box_source.propose(image)
            if len(src) == 0:
                return Proposals.empty(h, w, self.name)
            masks, iou = self._decode(image, src.boxes, None)
            scores, names, prompts, key = src.scores * iou, src.names, src.boxes, "prompt_boxes"
            keep = np.ones(len(masks), bool)
        else:
            points = point_grid(self.points_per_side, h, w)
            masks, iou = self._decode(image, None, points)
            scores, names, prompts, key = iou, (), points, "prompt_points"
            keep = iou >= self.pred_iou_thresh
        keep &= masks.reshape(len(masks), -1).any(axis=1)
        idx = np.flatnonzero(keep)
        if len(idx) == 0:
            return Proposals.empty(h, w, self.name)
        boxes = mask_boxes(masks[idx])
        # select here (the usual rule, on 1×1 placeholders carrying the indices as names) so that the per-mask
        # extras can follow; propose's own selection then keeps them all
        placeholder = Proposals(np.zeros((len(idx), 1, 1), bool), scores[idx], boxes, tuple(map(str, idx)))
        idx = np.array([int(i) for i in select_top(placeholder, self.top_n, self.nms_iou).names], np.int64)
        return Proposals(
            masks[idx],
            scores[idx],
            mask_boxes(masks[idx]),
            tuple(names[i] for i in idx) if names else (),
            self.name,
            {key: prompts[idx], "pred_iou": iou[idx], "boxes_from": self.boxes_from},
        )
