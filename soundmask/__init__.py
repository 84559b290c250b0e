"""soundmask: find what is making the sound in a video, per frame in 2D and as sound-tagged objects in 3D/4D.

The package mirrors the pipeline (see ``../shared/DESIGN.md``):
``data`` (typed records, dataset readers/writers), ``synth`` (scene generator), ``audio`` (chunking, tagging,
TDoA), ``vision`` (backbones, proposals), ``avs2d`` (SeAC / AVSC / SDAVS), ``splat`` (Gaussian splatting),
``lift`` (2D→3D masks, association, tagging), ``metrics``, ``pipeline``, ``report`` and ``cli``.
"""

from soundmask.errors import DataError, SoundmaskError

__version__ = "0.1.0"

__all__ = ["DataError", "SoundmaskError", "__version__"]
