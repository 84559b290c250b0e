"""`--set KEY=VALUE` parsing against typed dataclass configs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from soundmask.avs2d import DEFAULT_METHOD, MethodConfig
from soundmask.avs2d.seac.segmenter import SeACConfig
from soundmask.avs2d.seac.train import SeACTrainConfig
from soundmask.config import cli_options, nested, option, parse_overrides
from soundmask.errors import ConfigError


def test_values_are_typed():
    d = parse_overrides(
        ["top_n=12", "lam=0.5", "mode=training-free", "encoder_path=none", "epochs=3", "proposer-path=/tmp/w.pt"],
        SeACConfig,
        SeACTrainConfig,
    )
    assert d == {
        "top_n": 12,
        "lam": 0.5,
        "mode": "training-free",
        "encoder_path": None,
        "epochs": 3,
        "proposer_path": "/tmp/w.pt",
    }
    SeACConfig(**{k: v for k, v in d.items() if k in SeACConfig.__dataclass_fields__})


@pytest.mark.parametrize(
    "pair, match",
    [
        ("nope=1", "unknown option"),
        ("top_n=many", "not a valid int"),
        ("mode=magic", "not one of"),
        ("top_n", "KEY=VALUE"),
    ],
)
def test_bad_values_are_one_line_config_errors(pair, match):
    with pytest.raises(ConfigError, match=match) as e:
        parse_overrides([pair], SeACConfig, SeACTrainConfig)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------ nested configs
@dataclass
class _Recon:
    iterations: int = option(100, "steps")
    backend: str = option("auto", "rasterizer")
    seed: int = option(0, "random seed")


@dataclass
class _Lift(MethodConfig):
    backend: str = option("auto", "rasterizer")
    seed: int = option(0, "random seed")


@dataclass
class _Outer:
    seed: int = option(7, "scene seed")
    lift: _Lift = nested(_Lift)
    recon: _Recon = nested(lambda: _Recon(iterations=40))


def _app() -> tuple[typer.Typer, list[_Outer]]:
    got: list[_Outer] = []
    app = typer.Typer()

    @app.command()
    @cli_options(_Outer)
    def run(config: _Outer) -> None:
        got.append(config)

    return app, got


def test_nested_configs_become_options_by_their_own_names():
    app, got = _app()
    r = CliRunner().invoke(
        app,
        [
            "--iterations",
            "5",
            "--backend",
            "tile",
            "--method",
            "seac",
            "--seed",
            "3",
            "--set",
            "top_n=4",
            "--set",
            "lam=0.5",
        ],
    )
    assert r.exit_code == 0, r.output
    c = got[-1]
    assert c.recon.iterations == 5 and c.recon.backend == c.lift.backend == "tile"  # one option, both configs
    assert c.seed == 3 and c.lift.seed == 0 and c.recon.seed == 0  # the outer field hides the nested ones
    assert c.lift.method == "seac" and c.lift.method_options == ("top_n=4", "lam=0.5")
    assert c.lift.options() == {"top_n": 4, "lam": 0.5}


def test_nested_defaults_come_from_the_factory():
    app, got = _app()
    assert CliRunner().invoke(app, []).exit_code == 0
    c = got[-1]
    assert c.recon.iterations == 40 and c.lift.method == DEFAULT_METHOD and c.lift.method_options == ()
    assert c == _Outer()


def test_a_bad_method_or_method_option_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown 2D AVS method"):
        MethodConfig(method="nope")
    with pytest.raises(ConfigError, match="unknown option"):
        MethodConfig(method="seac", method_options=("bogus=1",))
    with pytest.raises(ConfigError, match="not a valid int"):
        MethodConfig(method="seac", method_options=("top_n=many",))


def test_closed_sets_are_checked_with_the_allowed_values_and_match_their_registries():
    import typing

    from soundmask.pipeline.lift3d import LiftConfig
    from soundmask.splat.render import BACKENDS, Backend
    from soundmask.splat.train import ReconstructConfig

    assert set(typing.get_args(Backend)) == {"auto", *BACKENDS}
    for make, match in (
        (lambda: ReconstructConfig(backend="cuda"), "backend='cuda' is not one of auto, compiled, tile"),
        (lambda: ReconstructConfig(device="tpu"), "device='tpu' is not one of"),
        (lambda: LiftConfig(grouping="x"), "grouping='x' is not one of auto, instances"),
        (lambda: LiftConfig(render_views="all"), "render_views='all' is not one of test, none"),
    ):
        with pytest.raises(ConfigError, match=match):
            make()
