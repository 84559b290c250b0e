"""VGGish audio embeddings (Hershey et al. 2017, "CNN architectures for large-scale audio classification";
tensorflow/models ``research/audioset/vggish``) in torch, from a user-given checkpoint — no weights ship.

Architecture (VGG configuration "A" cut down): 3×3 convolutions 64 → pool → 128 → pool → 256, 256 → pool →
512, 512 → pool, each with ReLU, 2×2 max-pools of stride 2; the (512, 6, 4) feature map is flattened in
TensorFlow's (height, width, channel) order, then fully connected 4096 → 4096 → 128 with ReLUs (the final
ReLU is the torchvggish port's; ``final_relu=False`` drops it). Input: 96×64 log-mel patches with VGGish's
front-end parameters (log offset 0.01, 0.96 s patches every 0.96 s, the incomplete tail dropped).

Checkpoints use the key names of the common torchvggish port (``features.{0,3,6,8,11,13}.*``,
``embeddings.{0,2,4}.*``); the layer widths are read from the tensor shapes, so narrower models load too.
PCA post-processing (the AudioSet release's whitening) is applied when the checkpoint holds
``pproc._pca_matrix``/``pproc._pca_means`` or ``pca_path`` names a file with ``pca_eigen_vectors``/
``pca_means``; its 8-bit quantisation is not applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from soundmask.audio.embed.base import VGGISH_FEATURES, AudioEmbedder, PatchOutput, PathLike, log_mel_patches
from soundmask.errors import ConfigError

__all__ = ["VGGishNet", "VggishEmbedder", "load_vggish_state_dict"]

_CONV_KEYS = (0, 3, 6, 8, 11, 13)  # indices of the convolutions in ``features`` (ReLU/pool layers between)
_FC_KEYS = (0, 2, 4)
_FIX = "pass path= to a torchvggish state_dict (.pth), e.g. vggish-10086976.pth"


class VGGishNet(nn.Module):
    """VGGish with configurable widths: ``widths`` = channels of the four convolution stages (64, 128, 256,
    512), ``hidden`` = the two fully connected layers (4096), ``embedding_dim`` = output (128)."""

    def __init__(
        self,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        hidden: int = 4096,
        embedding_dim: int = 128,
        final_relu: bool = True,
    ) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        layers: list[nn.Module] = []
        c_in = 1
        for stage in ((w1,), (w2,), (w3, w3), (w4, w4)):
            for c_out in stage:
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        fc: list[nn.Module] = [
            nn.Linear(w4 * 6 * 4, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, embedding_dim),
        ]
        if final_relu:
            fc.append(nn.ReLU(inplace=True))
        self.embeddings = nn.Sequential(*fc)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 96, 64)`` log-mel patches → ``(N, embedding_dim)``."""
        x = self.features(patches)  # (N, C, 6, 4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # TensorFlow's NHWC flattening order
        return self.embeddings(x)


def _torch_load(path: Path) -> Mapping[str, torch.Tensor]:
    if not path.is_file():
        raise ConfigError("VGGish checkpoint not found", path, _FIX)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle/zip errors of many kinds
        raise ConfigError(
            f"cannot read the checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})", path, _FIX
        ) from e
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ConfigError(f"the checkpoint holds a {type(obj).__name__}, not a state_dict", path, _FIX)
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_vggish_state_dict(path: PathLike) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Read a torchvggish-style checkpoint: ``(network state_dict, PCA tensors)`` (PCA empty when absent).
    Raises a one-line :class:`ConfigError` naming the file for a missing file or missing/misshaped keys."""
    p = Path(path)
    state = _torch_load(p)
    wanted = [f"features.{i}.{t}" for i in _CONV_KEYS for t in ("weight", "bias")]
    wanted += [f"embeddings.{i}.{t}" for i in _FC_KEYS for t in ("weight", "bias")]
    missing = [k for k in wanted if k not in state]
    if missing:
        some = ", ".join(sorted(state)[:4]) or "none"
        raise ConfigError(
            f"not a VGGish state_dict: {len(missing)} key(s) missing, e.g. {missing[0]} "
            f"(found {some}{', ...' if len(state) > 4 else ''})",
            p,
            _FIX,
        )
    net = {k: state[k] for k in wanted}
    pca = {}
    if "pproc._pca_matrix" in state and "pproc._pca_means" in state:
        pca = {"pca_eigen_vectors": state["pproc._pca_matrix"], "pca_means": state["pproc._pca_means"]}
    return net, pca


def _build(state: Mapping[str, torch.Tensor], final_relu: bool, path: Path) -> VGGishNet:
    try:
        widths = tuple(int(state[f"features.{i}.weight"].shape[0]) for i in (0, 3, 6, 11))
        hidden, emb = int(state["embeddings.0.weight"].shape[0]), int(state["embeddings.4.weight"].shape[0])
        net = VGGishNet(widths, hidden, emb, final_relu)  # type: ignore[arg-type]
        net.load_state_dict(state, strict=True)
    except (RuntimeError, IndexError, ValueError) as e:
        first = " ".join(str(e).split())[:200]
        raise ConfigError(f"the VGGish weights do not fit together ({first})", path, _FIX) from e
    return net.eval()


class VggishEmbedder(AudioEmbedder):
    """128-d VGGish embeddings per 0.96 s patch (hop 0.96 s); no class scores (``labels`` is None).

    ``path``: a torchvggish-style state_dict; ``pca_path``: optional PCA parameters (``pca_eigen_vectors``
    (D, D), ``pca_means`` (D,)); ``final_relu``: keep the torchvggish port's ReLU after the last layer."""

    name = "vggish"
    sample_rate = VGGISH_FEATURES.sample_rate
    labels = None
    params = VGGISH_FEATURES

    def __init__(
        self,
        path: PathLike | None = None,
        pca_path: PathLike | None = None,
        final_relu: bool = True,
        batch_size: int = 64,
    ) -> None:
        if path is None:
            raise ConfigError("VGGish needs a checkpoint; none ships with soundmask", fix=_FIX)
        self.path = Path(path)
        state, pca = load_vggish_state_dict(self.path)
        self.net = _build(state, final_relu, self.path)
        if pca_path is not None:
            pca = dict(_torch_load(Path(pca_path)))
            if not {"pca_eigen_vectors", "pca_means"} <= pca.keys():
                raise ConfigError(
                    "PCA file lacks pca_eigen_vectors/pca_means",
                    pca_path,
                    "pass the torchvggish PCA parameters file (vggish_pca_params-*.pth)",
                )
        last = self.net.embeddings[4]
        assert isinstance(last, nn.Linear)  # the embedding layer (see VGGishNet)
        self.embedding_dim = int(last.out_features)
        self._pca: tuple[np.ndarray, np.ndarray] | None = None
        if pca:
            matrix = np.asarray(pca["pca_eigen_vectors"], np.float32)
            means = np.asarray(pca["pca_means"], np.float32).reshape(-1)
            d = self.embedding_dim
            if matrix.shape != (d, d) or means.shape != (d,):
                raise ConfigError(
                    f"PCA shapes {matrix.shape}/{means.shape} do not fit {d}-d embeddings",
                    pca_path or self.path,
                    "pass the PCA file made for this checkpoint",
                )
            self._pca = (matrix, means)
        self.batch_size = max(1, int(batch_size))

    def _embed(self, waveform: np.ndarray) -> PatchOutput:
        patches, times = log_mel_patches(waveform, self.params)
        x = torch.from_numpy(patches[:, None])
        with torch.inference_mode():
            emb = torch.cat([self.net(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)])
        out = emb.numpy()
        if self._pca is not None:
            matrix, means = self._pca
            out = (out - means) @ matrix.T
        return PatchOutput(times, out, None, self.params.patch_samples / self.sample_rate)
