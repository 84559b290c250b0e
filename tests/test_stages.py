"""The staged runner: caching by key, file stages, failures as results, progress protocol, timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundmask.pipeline.stages import Runner, StageFailure, stage_key


def test_a_stage_runs_once_per_key_and_its_result_comes_back_from_the_cache(tmp_path: Path) -> None:
    calls: list[int] = []
    seen: list[tuple[str, float, str]] = []

    def make(say) -> dict[str, int]:
        calls.append(1)
        say(0.5, "half")
        return {"value": 41 + len(calls)}

    r1 = Runner(tmp_path, lambda s, f, n: seen.append((s, f, n)))
    assert r1.run("square", make, key=stage_key("square", 1)) == {"value": 42}
    assert seen[0] == ("square", 0.0, "") and seen[1] == ("square", 0.5, "half") and seen[-1][1] == 1.0
    r2 = Runner(tmp_path)
    assert r2.run("square", make, key=stage_key("square", 1)) == {"value": 42}  # cached: not run again
    assert len(calls) == 1 and r2.runs[0].cached and not r1.runs[0].cached
    assert r2.run("square", make, key=stage_key("square", 2)) == {"value": 43}  # new key: runs
    assert Runner(tmp_path, resume=False).run("square", make, key=stage_key("square", 2)) == {"value": 44}
    assert Runner(None).run("square", make, key="k") == {"value": 45}  # no cache folder: always runs


def test_a_file_stage_is_fresh_only_while_its_outputs_exist(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    calls: list[int] = []

    def make(say) -> None:
        calls.append(1)
        out.write_text(f"run {len(calls)}")

    def run() -> str:
        return Runner(tmp_path / "cache").run("write", make, key="k", outputs=[out], load=out.read_text)

    assert run() == "run 1" and run() == "run 1"
    out.unlink()
    assert run() == "run 2" and len(calls) == 2
    with pytest.raises(ValueError, match="outputs and load"):
        Runner(tmp_path).run("write", make, key="k", outputs=[out])


def test_a_failure_is_a_cached_result_and_an_exception_is_not(tmp_path: Path) -> None:
    calls: list[str] = []

    def fails(say) -> StageFailure:
        calls.append("f")
        return StageFailure("poses", "no camera poses")

    assert Runner(tmp_path).run("poses", fails, key="k") == StageFailure("poses", "no camera poses")
    assert Runner(tmp_path).run("poses", fails, key="k").reason == "no camera poses" and calls == ["f"]

    def boom(say) -> int:
        calls.append("b")
        raise RuntimeError("killed")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            Runner(tmp_path).run("crash", boom, key="k")
    assert calls.count("b") == 2  # never recorded as finished


def test_timings_summary_and_silent_stages(tmp_path: Path) -> None:
    seen: list[str] = []
    r = Runner(None, lambda s, f, n: seen.append(s))
    r.run("load", lambda say: 1, silent=True)
    r.run("fit", lambda say: 2)
    assert seen == ["fit", "fit"] and list(r.timings) == ["load", "fit"]
    assert r.summary()["fit"]["cached"] is False and r.summary()["load"]["seconds"] >= 0
