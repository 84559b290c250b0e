"""Closed option sets of the 2D methods' configs: typed Literal, checked from --set and from Python, the
registry-backed ones in step with their registries."""

from __future__ import annotations

import typing

import pytest

from soundmask.avs2d.avsc.segmenter import AVSCConfig
from soundmask.avs2d.options import AudioEmbedderName, ImageEncoderName, ProposerName, literal_values
from soundmask.avs2d.sdavs.segmenter import SDAVSConfig
from soundmask.avs2d.seac.config import ProposerStageConfig, SeACConfig, SeACTrainConfig
from soundmask.config import parse_overrides
from soundmask.errors import ConfigError


def builtin(registry: dict, package: str) -> set[str]:
    """Names whose implementation lives in ``package`` (tests elsewhere may register more)."""
    return {k for k, v in registry.items() if (v if isinstance(v, str) else v.__module__).startswith(package)}


def test_the_literals_match_the_registries() -> None:
    from soundmask.audio.embed import EMBEDDERS
    from soundmask.vision.backbones import IMAGE_ENCODERS
    from soundmask.vision.proposals import PROPOSERS

    assert set(typing.get_args(AudioEmbedderName)) == builtin(EMBEDDERS, "soundmask.audio.embed")
    assert set(typing.get_args(ImageEncoderName)) == set(IMAGE_ENCODERS)
    assert set(typing.get_args(ProposerName)) == set(PROPOSERS)


@pytest.mark.parametrize(
    "cls, field",
    [
        (SeACConfig, "mode"),
        (SeACConfig, "proposer"),
        (SeACConfig, "encoder"),
        (SeACConfig, "audio"),
        (AVSCConfig, "audio"),
        (AVSCConfig, "filter_rule"),
        (AVSCConfig, "audio_activation"),
        (SDAVSConfig, "audio"),
        (ProposerStageConfig, "synth_presets"),
    ],
)
def test_closed_fields_are_literals(cls: type, field: str) -> None:
    assert literal_values(typing.get_type_hints(cls)[field])


@pytest.mark.parametrize(
    "cls, key, good, bad",
    [
        (SeACConfig, "proposer", "yolo", "detr"),
        (SeACConfig, "encoder", "clip", "vit"),
        (SeACConfig, "audio", "clap", "beats"),
        (SeACConfig, "mode", "training-free", "magic"),
        (AVSCConfig, "audio", "vggish", "beats"),
        (AVSCConfig, "filter_rule", "argmax", "max"),
        (AVSCConfig, "audio_activation", "softmax", "relu"),
        (SDAVSConfig, "audio", "ast", "beats"),
    ],
)
def test_set_and_python_accept_the_names_and_nothing_else(cls: type, key: str, good: str, bad: str) -> None:
    assert parse_overrides([f"{key}={good}"], cls) == {key: good}
    assert getattr(cls(**{key: good}), key) == good
    with pytest.raises(ConfigError, match="not one of") as e:
        parse_overrides([f"{key}={bad}"], cls)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=f"{key}='{bad}' is not one of") as e:
        cls(**{key: bad})
    assert "\n" not in str(e.value) and good in str(e.value)  # lists the allowed values


def test_tuple_of_presets() -> None:
    d = parse_overrides(["synth_presets=s4,avss"], ProposerStageConfig, SeACTrainConfig)
    assert ProposerStageConfig(**d).synth_presets == ("s4", "avss")
    with pytest.raises(ConfigError, match="synth_presets='s5' is not one of s4, ms3"):
        ProposerStageConfig(**parse_overrides(["synth_presets=s4,s5"], ProposerStageConfig))


def test_an_embedder_registered_at_run_time_is_accepted() -> None:
    from soundmask.audio.embed import EMBEDDERS, register_embedder

    register_embedder("test-options-embedder", "soundmask.audio.embed.yamnet:YamnetEmbedder")
    try:
        assert SeACConfig(audio="test-options-embedder").audio == "test-options-embedder"
        assert AVSCConfig(audio="test-options-embedder").audio == "test-options-embedder"
    finally:
        EMBEDDERS.pop("test-options-embedder")
