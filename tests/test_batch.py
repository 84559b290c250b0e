"""`soundmask batch` on Ray: results equal a serial run item for item; a worker killed mid-item is retried; a corrupt
item is an error row; a re-run skips cached items; a 2-node cluster through --address; CLI errors are one line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from soundmask.errors import ConfigError, DataError
from soundmask.pipeline.batch import JOBS, BatchConfig, find_items, run_batch

TESTS = Path(__file__).parent
SOUNDMASK = [sys.executable, "-m", "soundmask.cli"]
TIMING = {"seconds", "lift_seconds", "reconstruct_seconds", "cached", "threads", "path"}
SYNTH = ["width=64", "frames=10"]


def _env() -> dict[str, str]:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of 2 CPUs for the module; Ray's workers import the test jobs from tests/."""
    old = os.environ.get("PYTHONPATH")
    os.environ.update(_env())
    JOBS["test-echo"] = "_batch_jobs:echo_job"
    sys.path.insert(0, str(TESTS))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             object_store_memory=128 * 2**20)  # fmt: skip
    yield
    ray.shutdown()
    JOBS.pop("test-echo", None)
    sys.path.remove(str(TESTS))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def _scenes(root: Path, seeds: list[int], corrupt: str | None = None) -> Path:
    for s in seeds:
        (root / f"sc{s}").mkdir(parents=True, exist_ok=True)
        (root / f"sc{s}" / "scene.json").write_text(json.dumps({"seed": s}))
    if corrupt:
        (root / corrupt).mkdir(parents=True, exist_ok=True)
        (root / corrupt / "scene.json").write_text('{"seed": 3, "frames": [')  # cut off mid-file
    return root


def _rows(res) -> list[dict]:
    return [{k: v for k, v in r.row().items() if k not in TIMING} for r in res.results]


@pytest.fixture(scope="module")
def synth_scenes(local_ray, tmp_path_factory):
    """Two tiny generated scenes, made by `batch synth` on the local Ray."""
    out = tmp_path_factory.mktemp("synth")
    res = run_batch("synth", ["0-1"], out, set_=SYNTH)
    assert [r.error for r in res.results] == [None, None]
    return out, res


def test_echo_batch_equals_serial_and_items_run_in_parallel(local_ray, tmp_path):
    data = _scenes(tmp_path / "data", [0, 1, 2, 3])
    par = run_batch("test-echo", [data], tmp_path / "ray")
    ser = run_batch("test-echo", [data], tmp_path / "serial", cfg=BatchConfig(serial=True))
    assert _rows(par) == _rows(ser) and len(par.results) == 4
    assert par.summary["total"] == ser.summary["total"] and par.summary["ok"] == 4
    assert {r.stats["pid"] for r in par.results} != {os.getpid()}  # ran in Ray's workers
    assert [r.metrics["threads"] for r in par.results] == [1] * 4  # torch threads = cpus-per-item
    table = (tmp_path / "ray" / "batch.csv").read_text().splitlines()
    assert table[0].startswith("item,input,status,error") and len(table) == 5


def test_killed_worker_is_retried_with_the_same_result(local_ray, tmp_path):
    data = _scenes(tmp_path / "data", [0, 1, 2])
    marker = tmp_path / "killed"
    ref = run_batch("test-echo", [data], tmp_path / "ref", cfg=BatchConfig(serial=True))
    res = run_batch("test-echo", [data], tmp_path / "out", set_=[f"marker={marker}"])
    assert marker.is_file()  # a worker did die mid-item
    assert [r.error for r in res.results] == [None] * 3
    assert [r.metrics["value"] for r in res.results] == [r.metrics["value"] for r in ref.results]
    # without retries the same death is the item's error row, and the batch still completes
    marker2 = tmp_path / "killed2"
    res = run_batch("test-echo", [data], tmp_path / "out2", cfg=BatchConfig(max_retries=0), set_=[f"marker={marker2}"])
    assert marker2.is_file() and len(res.failed) == 1 and res.summary["ok"] == 2
    assert res.failed[0].error.startswith("Ray: ") and "\n" not in res.failed[0].error


def test_corrupt_item_is_an_error_row_and_resume_skips_cached(local_ray, tmp_path):
    data = _scenes(tmp_path / "data", [0, 1], corrupt="broken")
    out = tmp_path / "out"
    res = run_batch("test-echo", [data], out)
    status = {r.name: r.error for r in res.results}
    assert status["sc0"] is None and status["sc1"] is None
    err = status["broken"]
    assert err and "\n" not in err and str(data / "broken" / "scene.json") in err and "invalid JSON" in err
    rows = json.loads((out / "batch.json").read_text())["items"]
    assert [r["status"] for r in rows] == ["error", "ok", "ok"] and rows[0]["input"] == str(data / "broken")
    assert len(list((out / "items").glob("*.json"))) == 2  # the error row is not cached
    # re-run: the two finished items come from the cache, the broken one runs again; a changed input re-runs
    (data / "sc1" / "scene.json").write_text(json.dumps({"seed": 7}))
    again = run_batch("test-echo", [data], out)
    assert [r.cached for r in again.results] == [False, True, False]
    assert again.results[1].metrics == res.results[1].metrics
    assert again.results[2].metrics["seed"] == 7 and again.summary["cached"] == 1
    # other options are another key: nothing cached
    other = run_batch("test-echo", [data], out, set_=["scale=2"])
    assert other.summary["cached"] == 0
    assert other.results[1].metrics["value"] == pytest.approx(2 * res.results[1].metrics["value"], rel=1e-12)


def test_finding_items_and_bad_options(tmp_path):
    data = _scenes(tmp_path / "d", [0, 1])
    (data / "index.csv").write_text("name,seed,split,preset\nsc0,0,test,x\nsc1,1,train,x\n")
    assert [i.name for i in find_items("scene", [data])] == ["sc0"]
    assert [i.name for i in find_items("scene", [data], split="all")] == ["sc0", "sc1"]
    assert [i.name for i in find_items("scene", [data / "sc1", data / "sc1"])] == ["sc1", "sc1~2"]
    assert [i.input for i in find_items("seed", ["0-2,5"])] == ["0", "1", "2", "5"]
    with pytest.raises(ConfigError, match="no scene folders found"):
        find_items("scene", [tmp_path / "d" / "sc0" / ".."], split="val")
    with pytest.raises(ConfigError, match="unknown option"):
        run_batch("synth", ["0"], tmp_path / "o", set_=["no_such=1"])
    with pytest.raises(ConfigError, match="unknown batch job"):
        run_batch("nope", ["0"], tmp_path / "o")


def test_lift_on_ray_equals_serial(synth_scenes, tmp_path):
    """Reconstruct + lift (few steps) of two generated scenes and a corrupt one: Ray rows == serial rows, and the
    summary (EchoSegnet mean over scenes, pooled J/F) is the same."""
    scenes = synth_scenes[0] / "scenes"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scene.json").write_text("{")
    opts = ["iterations=30", "use_gt_2d=true"]
    par = run_batch("lift", [scenes, broken], tmp_path / "ray", set_=[*opts, "save=true"], cfg=BatchConfig(split="all"))
    assert all((tmp_path / "ray" / "lift" / r.name / "sound_scene.pt").is_file() for r in par.results if r.ok)
    ser = run_batch("lift", [scenes, broken], tmp_path / "ser", set_=opts, cfg=BatchConfig(split="all", serial=True))
    assert _rows(par) == _rows(ser)
    assert [r.ok for r in par.results] == [True, True, False] and "scene.json" in (par.results[2].error or "")
    keep = ("miou", "fscore", "pooled_j", "pooled_f", "centroid_error_m", "scenes", "test_views", "psnr_test_mean")
    assert {k: par.summary[k] for k in keep} == {k: ser.summary[k] for k in keep}
    assert par.summary["scenes"] == 2 and par.summary["test_views"] == 4 and 0 <= par.summary["miou"] <= 1
    # the summary is Scene3DMetric's mean over scenes of the per-item scores
    assert par.summary["miou"] == pytest.approx(sum(r.metrics["miou"] for r in par.results[:2]) / 2, abs=1e-12)


def test_cli_on_a_two_node_cluster(synth_scenes, tmp_path):
    """`soundmask batch synth --address` on a local 2-node cluster (1 CPU each) gives the rows of the local run."""
    from ray.cluster_utils import Cluster

    ray.shutdown()  # the module's local Ray: a process talks to one cluster at a time
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "out"
        r = subprocess.run(
            [*SOUNDMASK, "batch", "synth", "0-1", "-o", str(out), "--address", cluster.address,
             *[a for s in SYNTH for a in ("--set", s)]],
            capture_output=True, text=True, timeout=240, env=_env(),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        rows = json.loads((out / "batch.json").read_text())["items"]
        want = [{k: v for k, v in row.items() if k not in TIMING} for row in (x.row() for x in synth_scenes[1].results)]
        assert [{k: v for k, v in row.items() if k not in TIMING} for row in rows] == want
        assert (out / "scenes" / "index.csv").read_text() == (synth_scenes[0] / "scenes" / "index.csv").read_text()
    finally:
        cluster.shutdown()


@pytest.mark.parametrize("case", ["no-scenes", "missing", "bad-seed"])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, case):
    (tmp_path / "empty").mkdir()
    args = {
        "no-scenes": ["lift", str(tmp_path / "empty")],
        "missing": ["lift", str(tmp_path / "nope")],
        "bad-seed": ["synth", "x-y"],
    }[case]
    r = subprocess.run([*SOUNDMASK, "batch", *args, "-o", str(tmp_path / "o"), "--serial"], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o" / "batch.csv").exists()


def test_pooled_state_round_trip_merges_exactly():
    """The evaluate job's summary merges per-item PooledJF statistics sent as JSON: equal to one accumulator."""
    import numpy as np

    from soundmask.metrics.pooled import PooledJF

    rng = np.random.default_rng(0)
    parts = [(rng.random((3, 16, 16)), rng.random((3, 16, 16)) > 0.6) for _ in range(3)]
    whole, merged = PooledJF(from_logits=False), PooledJF(from_logits=False)
    for p, g in parts:
        whole.update(p, g)
        one = PooledJF(from_logits=False)
        one.update(p, g)
        merged.merge(PooledJF.from_state_dict(json.loads(json.dumps(one.state_dict()))))
    assert merged.compute() == whole.compute()
    with pytest.raises(DataError, match="not a PooledJF state"):
        PooledJF.from_state_dict({"from_logits": False, "threshold": 0.5, "tp": [1]})
