"""`--set KEY=VALUE` parsing against typed dataclass configs."""

from __future__ import annotations

import pytest

from soundmask.avs2d.seac.segmenter import SeACConfig
from soundmask.avs2d.seac.train import SeACTrainConfig
from soundmask.config import parse_overrides
from soundmask.errors import ConfigError


def test_values_are_typed():
    d = parse_overrides(["top_n=12", "lam=0.5", "mode=training-free", "encoder_path=none", "epochs=3",
                         "proposer-path=/tmp/w.pt"], SeACConfig, SeACTrainConfig)
    assert d == {"top_n": 12, "lam": 0.5, "mode": "training-free", "encoder_path": None, "epochs": 3,
                 "proposer_path": "/tmp/w.pt"}
    SeACConfig(**{k: v for k, v in d.items() if k in SeACConfig.__dataclass_fields__})


@pytest.mark.parametrize("pair, match", [("nope=1", "unknown option"), ("top_n=many", "not a valid int"),
                                         ("mode=magic", "not one of"), ("top_n", "KEY=VALUE")])
def test_bad_values_are_one_line_config_errors(pair, match):
    with pytest.raises(ConfigError, match=match) as e:
        parse_overrides([pair], SeACConfig, SeACTrainConfig)
    assert "\n" not in str(e.value)
