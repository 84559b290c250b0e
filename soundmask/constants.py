"""Protocol and physics constants, each defined once (bottom layer: imports nothing from soundmask).

Modules that used to define these keep their public names as aliases (e.g. ``soundmask.synth.acoustics.SPEED_OF_SOUND``,
``soundmask.metrics.TEST_EVERY``, ``soundmask.data.avsbench.NUM_FRAMES``).
"""

from __future__ import annotations

__all__ = [
    "ALPHA_THRESHOLD",
    "AVSBENCH_NUM_FRAMES",
    "AVSBENCH_SAMPLE_RATE",
    "MIC_SPACING",
    "SCENE_SAMPLE_RATE",
    "SPEED_OF_SOUND",
    "TEST_EVERY",
    "VOTE_THRESHOLD",
]

# ---------------------------------------------------------------------------------------------- physics
SPEED_OF_SOUND = 343.0  # m/s, speed of sound in air (~20 °C) for every delay / TDoA / direction computation
MIC_SPACING = 0.2  # m, distance between the left and right microphones of the stereo camera rig

# ------------------------------------------------------------------------------- EchoSegnet (3DAVS-S34-O7)
TEST_EVERY = 8  # 3D-GS ``llffhold``: view ``idx % 8 == 0`` of the name-sorted cameras is a test view
ALPHA_THRESHOLD = 0.8  # rendered sound mask = ``alpha > 0.8`` of the selected Gaussians (strict)
VOTE_THRESHOLD = 0.5  # a Gaussian is kept when ``votes1 / (votes0 + votes1) > 0.5``
SCENE_SAMPLE_RATE = 44100  # Hz, 3DAVS-S34-O7 binaural clips and our posed scenes (same layout)

# ----------------------------------------------------------------------------------- AVSBench (S4/MS3/AVSS)
AVSBENCH_SAMPLE_RATE = 16000  # Hz, the audio_wav files of AVSBench-object and AVSBench-semantic
AVSBENCH_NUM_FRAMES = 5  # frames per AVSBench-object (and AVSS v1s/v1m) clip, one per second
