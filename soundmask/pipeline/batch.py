"""``soundmask batch``: one per-item job mapped over many inputs, on Ray (docs/batch.md).

A *job* is one function ``job(item, options, out) -> ItemOutput`` registered in :data:`JOBS` (a ``"module:attr"``
string, imported on first use) and marked with :func:`batch_job`, which says what its inputs are (scene folders,
video files, clip sets or seeds), the typed dataclass of its options (``--set KEY=VALUE``, nested configs by their
own field names) and how its items' results are summarised. The built-in jobs live in
:mod:`soundmask.pipeline.batch_jobs`.

:func:`run_batch` finds the items, skips those whose result is cached, runs the others as Ray tasks
(``num_cpus=cpus_per_item`` each, ``max_retries``: a worker that dies has its item run again by Ray) on a local Ray
(all cores, started and stopped here) or on a cluster (``address``), and writes, as results arrive:

* ``OUT/items/<key>.json`` per finished item; ``key`` hashes the job's name, the item's input identity (a file's
  resolved path, size and modification time; a folder's path and every file's relative path, size and mtime in
  nanoseconds, hidden files left out; a seed's number), the job's options and the soundmask version, so that a
  re-run skips finished items and recomputes an item whose input or options changed. An item that failed is not
  cached: a re-run tries it again.
* at the end, ``OUT/batch.csv`` and ``OUT/batch.json``: one row per item (``status`` ok or error, ``error`` a
  one-line reason, the item's metrics), and in ``batch.json`` the job's summary (for ``lift``, the EchoSegnet
  protocol's mean over scenes and the pooled J/F, by :class:`~soundmask.metrics.scene3d.Scene3DMetric`).

An item that raises gives an error row (its input and the one-line reason), never a failed batch. Each item sets
torch's thread count to its CPUs, so an item's result equals a serial run (``serial=True``, no Ray) with the same
``cpus_per_item``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from soundmask.config import option, parse_overrides
from soundmask.data.io import atomic_path, to_jsonable, write_json
from soundmask.errors import ConfigError, SoundmaskError
from soundmask.pipeline.cache import file_id, stage_key
from soundmask.registry import resolve

__all__ = [
    "JOBS",
    "BatchConfig",
    "BatchItem",
    "BatchResult",
    "ItemOutput",
    "ItemResult",
    "JobSpec",
    "batch_job",
    "build_options",
    "find_items",
    "get_job",
    "run_batch",
    "run_item",
    "run_items",
]

JOBS: dict[str, Any] = {
    "synth": "soundmask.pipeline.batch_jobs:synth_job",
    "lift": "soundmask.pipeline.batch_jobs:lift_job",
    "run": "soundmask.pipeline.batch_jobs:run_job",
    "evaluate": "soundmask.pipeline.batch_jobs:evaluate_job",
}
"""Job name → the job function (``"module:attr"``, resolved on first use); a new job is one function + one line."""

InputKind = Literal["scene", "video", "clipset", "seed"]
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")


# ------------------------------------------------------------------------------------------------ types
@dataclass(frozen=True)
class BatchItem:
    """One input of a batch: ``name`` (unique in the batch: the row's name), ``input`` (a path, or a seed)."""

    name: str
    input: str
    kind: InputKind

    def identity(self) -> Any:
        """What the cache key knows of the input (see the module docstring)."""
        if self.kind == "seed":
            return int(self.input)
        p = Path(self.input)
        if p.is_file():
            return file_id(p)
        if not p.is_dir():
            return [str(p), None]
        files = []
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p)
            if any(part.startswith(".") for part in rel.parts) or not f.is_file():
                continue
            st = f.stat()
            files.append([str(rel), st.st_size, st.st_mtime_ns])
        return [str(p.resolve()), files]


@dataclass
class ItemOutput:
    """What a job returns: ``metrics``, its row in ``batch.csv`` (JSON scalars, short lists), and ``stats``, what
    the job's summary aggregates (JSON-ready; kept in the item's cache file and ``batch.json``, not in the table)."""

    metrics: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemResult:
    """One item's outcome: its metrics and stats, or ``error`` (one line); ``cached``: read from ``OUT/items``."""

    name: str
    input: str
    key: str
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict[str, Any]:
        """The item's row of ``batch.csv`` / ``batch.json``."""
        return {
            "item": self.name,
            "input": self.input,
            "status": "ok" if self.ok else "error",
            "error": self.error or "",
            "seconds": round(self.seconds, 3),
            "cached": self.cached,
            **self.metrics,
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ItemResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


Summary = Callable[[list[ItemResult], Any, Path], dict[str, Any]]


@dataclass(frozen=True)
class JobSpec:
    """A job function's batch facts (set by :func:`batch_job`)."""

    fn: Callable[[BatchItem, Any, Path], ItemOutput]
    inputs: InputKind
    options: type
    summary: Summary | None = None


def batch_job(inputs: InputKind, options: type, summary: Summary | None = None) -> Callable[[Callable], Callable]:
    """Decorator marking ``fn(item, options, out) -> ItemOutput`` as a batch job: its input kind, its options'
    dataclass and its summary ``summary(ok_results, options, out) -> dict`` (None: counts only)."""

    def mark(fn: Callable) -> Callable:
        fn.batch_spec = JobSpec(fn, inputs, options, summary)  # type: ignore[attr-defined]
        return fn

    return mark


def get_job(name: str) -> JobSpec:
    """The :class:`JobSpec` of job ``name`` (a one-line ConfigError listing the jobs when unknown)."""
    fn = resolve(JOBS, name, "batch job")
    spec = getattr(fn, "batch_spec", None)
    if not isinstance(spec, JobSpec):
        raise ConfigError(f"batch job {name!r} is not marked with @batch_job", fix="decorate it with batch_job(...)")
    return spec


# ---------------------------------------------------------------------------------------------- options
def _option_classes(cls: type) -> list[type]:
    out = [cls]
    for f in dataclasses.fields(cls):
        if f.metadata.get("nested"):
            out += _option_classes(type(f.default_factory()))  # type: ignore[misc,operator]
    return out


def _fill(cls: type, values: dict[str, Any], base: Any = None) -> Any:
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.metadata.get("nested"):
            sub = getattr(base, f.name) if base is not None else f.default_factory()  # type: ignore[misc,operator]
            kw[f.name] = _fill(type(sub), values, sub)
        elif f.name in values:
            kw[f.name] = values[f.name]
        elif base is not None:
            kw[f.name] = getattr(base, f.name)
    return cls(**kw)


def build_options(cls: type, pairs: Sequence[str] = (), base: Any = None) -> Any:
    """``cls`` (a job's options dataclass) with ``KEY=VALUE`` pairs applied: a key sets the field of that name in
    ``cls`` and in every nested config that has one (``seed`` sets the lifting's and the reconstruction's), as
    ``soundmask lift`` does; ``base``: start from this instance instead of the defaults."""
    values = parse_overrides(list(pairs), *_option_classes(cls))
    return _fill(cls, values, base)


# ------------------------------------------------------------------------------------------------ items
def _is_scene(p: Path) -> bool:
    return (p / "scene.json").is_file() or ((p / "input").is_dir() and (p / "sparse" / "0").is_dir())


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, sep, b = part.strip().partition("-")
        try:
            out += list(range(int(a), int(b) + 1)) if sep else [int(a)]
        except ValueError:
            raise ConfigError(f"{text!r} is not a seed or a seed range", fix="give seeds like 0-7 or 3,5,9") from None
    return out


def _scene_dirs(p: Path, split: str) -> list[Path]:
    if _is_scene(p):
        return [p]
    index = p / "index.csv"
    if index.is_file():
        with index.open(newline="") as f:
            rows = list(csv.DictReader(f))
        return [p / r["name"] for r in rows if split == "all" or r.get("split") == split]
    return sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".") and _is_scene(d))


def find_items(kind: InputKind, inputs: Iterable[str | Path], split: str = "test", limit: int = 0) -> list[BatchItem]:
    """The items of ``inputs``: ``scene``: scene folders, or folders of scenes (``index.csv`` rows of ``split``,
    ``all`` for every row, else every sub-folder with a scene); ``video``: video files, or folders of them;
    ``clipset``: each input folder is one item; ``seed``: seeds and ranges (``0-7``, ``3,5``). Raises a one-line
    ConfigError when nothing is found."""
    items: list[BatchItem] = []
    texts = [str(i) for i in inputs]
    if not texts:
        raise ConfigError("no inputs given", fix="pass input paths (or seeds for synth) after the job name")
    for text in texts:
        if kind == "seed":
            items += [BatchItem(f"seed_{s}", str(s), kind) for s in _seeds(text)]
            continue
        p = Path(text)
        if not p.exists():
            raise ConfigError("input not found", p, "check the path")
        if kind == "scene":
            found = [BatchItem(d.name, str(d), kind) for d in _scene_dirs(p, split)] if p.is_dir() else []
        elif kind == "video":
            vids = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_SUFFIXES)
            found = [BatchItem(v.stem, str(v), kind) for v in vids]
        else:
            found = [BatchItem(p.name, str(p), kind)] if p.is_dir() else []
        if not found:
            what = {"scene": "scene folders", "video": "videos", "clipset": "a clip-set folder"}[kind]
            raise ConfigError(
                f"no {what} found" + (f" (split {split})" if kind == "scene" else ""),
                p,
                "pass " + what + (" or a folder of them, or another --split" if kind != "clipset" else ""),
            )
        items += found
    seen: dict[str, int] = {}
    unique = []
    for it in items:  # row names must be unique: a second 'scene' becomes 'scene~2'
        n = seen[it.name] = seen.get(it.name, 0) + 1
        unique.append(it if n == 1 else dataclasses.replace(it, name=f"{it.name}~{n}"))
    return unique[:limit] if limit else unique


def item_key(job: str, item: BatchItem, options: Any) -> str:
    """The item's cache key (see the module docstring)."""
    return stage_key("batch", job, item.identity(), _as_dict(options))


def _as_dict(options: Any) -> Any:
    return (
        dataclasses.asdict(options) if dataclasses.is_dataclass(options) and not isinstance(options, type) else options
    )


# -------------------------------------------------------------------------------------------- execution
def _one_line(e: BaseException) -> str:
    if isinstance(e, SoundmaskError):
        return str(e)
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:400]


def run_item(
    fn: Callable[[BatchItem, Any, Path], ItemOutput],
    item: BatchItem,
    options: Any,
    out: str,
    key: str,
    cpus: int = 1,
) -> ItemResult:
    """Run one item with torch on ``cpus`` threads; an exception becomes the result's one-line ``error``."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(max(1, int(cpus)))
    t0 = time.perf_counter()
    try:
        res = fn(item, options, Path(out))
        return ItemResult(
            item.name,
            item.input,
            key,
            metrics=to_jsonable(res.metrics),
            stats=to_jsonable(res.stats),
            seconds=time.perf_counter() - t0,
        )
    except Exception as e:  # an item's failure is its row, never the batch's
        return ItemResult(item.name, item.input, key, error=_one_line(e), seconds=time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev)


@dataclass
class BatchConfig:
    """Options of ``soundmask batch`` (every field is a command-line option)."""

    address: str = option(
        "",
        "Ray cluster to run on: HEAD:6379 (a `ray start --head` node), ray://HEAD:10001 (Ray client) or auto; "
        "empty: a local Ray on this machine's cores, started and stopped by the batch",
    )
    num_cpus: int = option(0, "local Ray only: CPUs it may use (0: all cores)")
    cpus_per_item: int = option(1, "CPUs Ray reserves for each item, and torch's thread count in it")
    max_retries: int = option(3, "times Ray runs an item again when its worker process dies")
    serial: bool = option(False, "run the items one after another in this process, without Ray (the reference)")
    resume: bool = option(True, "skip items whose result is cached in OUT/items/ (--no-resume: run them all again)")
    split: str = option("test", "folders of scenes with an index.csv: the split to take (all: every scene)")
    limit: int = option(0, "run only the first N items (0: all)")

    def __post_init__(self) -> None:
        if self.cpus_per_item < 1 or self.num_cpus < 0 or self.max_retries < 0 or self.limit < 0:
            raise ConfigError("cpus-per-item must be >= 1; num-cpus, max-retries and limit >= 0")


Progress = Callable[[int, int, ItemResult], None]


def _cache_path(out: Path, key: str) -> Path:
    return out / "items" / f"{key}.json"


def _read_cached(out: Path, key: str) -> ItemResult | None:
    try:
        r = ItemResult.from_dict(json.loads(_cache_path(out, key).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return dataclasses.replace(r, cached=True) if r.ok and r.key == key else None


def _start_ray(cfg: BatchConfig) -> bool:
    """Connect to ``cfg.address`` or start a local Ray; True when this call started it (and must stop it)."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False, "include_dashboard": False}
    if cfg.address:
        try:
            ray.init(address=cfg.address, **quiet)  # type: ignore[arg-type]
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(
                f"cannot connect to the Ray cluster at {cfg.address} ({_one_line(e)})",
                fix="start it with `ray start --head --port=6379` and pass --address HEAD:6379 (docs/batch.md)",
            ) from e
    else:
        # Ray's default token authentication stays on; its notice that it is on is not news to a batch user
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        ray.init(
            num_cpus=cfg.num_cpus or os.cpu_count() or 1,
            object_store_memory=256 * 2**20,  # results are small JSON-ready dicts
            **quiet,  # type: ignore[arg-type]
        )
    return True


def run_items(
    spec: JobSpec,
    job: str,
    items: Sequence[BatchItem],
    options: Any,
    out: str | Path,
    cfg: BatchConfig | None = None,
    progress: Progress | None = None,
) -> list[ItemResult]:
    """Run ``items`` (cached ones are read back when ``cfg.resume``), in the order given; each finished item's
    result is cached as soon as it arrives. See the module docstring."""
    cfg = cfg or BatchConfig()
    out = Path(out)
    keys = [item_key(job, it, options) for it in items]
    results: dict[int, ItemResult] = {}
    done = 0

    def finish(i: int, r: ItemResult) -> None:
        nonlocal done
        results[i] = r
        if r.ok and not r.cached:
            write_json(_cache_path(out, r.key), r.to_dict(), indent=None)
        done += 1
        if progress is not None:
            progress(done, len(items), r)

    todo = []
    for i, (it, k) in enumerate(zip(items, keys, strict=True)):
        cached = _read_cached(out, k) if cfg.resume else None
        if cached is not None:
            finish(i, dataclasses.replace(cached, name=it.name, input=it.input))
        else:
            todo.append(i)
    if not todo:
        return [results[i] for i in range(len(items))]
    if cfg.serial:
        for i in todo:
            finish(i, run_item(spec.fn, items[i], options, str(out), keys[i], cfg.cpus_per_item))
        return [results[i] for i in range(len(items))]

    import ray

    started = _start_ray(cfg)
    try:
        task = ray.remote(run_item).options(
            num_cpus=cfg.cpus_per_item, max_retries=cfg.max_retries, retry_exceptions=False
        )
        pending = {task.remote(spec.fn, items[i], options, str(out), keys[i], cfg.cpus_per_item): i for i in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                try:
                    r = ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died more than max_retries times, or Ray failed
                    r = ItemResult(items[i].name, items[i].input, keys[i], error=f"Ray: {_one_line(e)}"[:400])
                finish(i, r)
    finally:
        if started:
            ray.shutdown()
    return [results[i] for i in range(len(items))]


# ------------------------------------------------------------------------------------------------ batch
@dataclass
class BatchResult:
    """A finished batch: every item's result (in input order), the summary, and where the tables are."""

    job: str
    out: Path
    results: list[ItemResult]
    summary: dict[str, Any]
    seconds: float

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.results if not r.ok]

    @property
    def cached(self) -> int:
        return sum(r.cached for r in self.results)

    def rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.results]


def _csv_cell(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    return "" if v is None else v


def write_tables(out: Path, job: str, options: Any, results: list[ItemResult], summary: dict[str, Any]) -> None:
    """``OUT/batch.csv`` (one row per item) and ``OUT/batch.json`` (the job, its options, the summary, the rows
    and each item's stats), each written atomically."""
    rows = [r.row() for r in results]
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    with atomic_path(out / "batch.csv") as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows({c: _csv_cell(row.get(c)) for c in cols} for row in rows)
    opts = _as_dict(options)
    write_json(
        out / "batch.json",
        {"job": job, "options": opts, "summary": summary, "items": rows, "stats": {r.name: r.stats for r in results}},
    )


def run_batch(
    job: str,
    inputs: Iterable[str | Path],
    out: str | Path,
    options: Any = None,
    cfg: BatchConfig | None = None,
    *,
    set_: Sequence[str] = (),
    progress: Progress | None = None,
    on_items: Callable[[list[BatchItem], int], None] | None = None,
) -> BatchResult:
    """Run job ``job`` over ``inputs`` into ``out`` (see the module docstring). ``options``: the job's options
    dataclass (default: its defaults), with ``set_`` pairs (``KEY=VALUE``) applied. ``on_items(items, cached)`` is
    called once the items are known (e.g. to size a progress bar)."""
    cfg = cfg or BatchConfig()
    spec = get_job(job)
    opts = build_options(spec.options, set_, options)
    items = find_items(spec.inputs, inputs, cfg.split, cfg.limit)
    out = Path(out)
    t0 = time.perf_counter()
    if on_items is not None:
        keys = [item_key(job, it, opts) for it in items]
        on_items(items, sum(cfg.resume and _read_cached(out, k) is not None for k in keys))
    results = run_items(spec, job, items, opts, out, cfg, progress)
    ok = [r for r in results if r.ok]
    summary: dict[str, Any] = {
        "job": job,
        "items": len(results),
        "ok": len(ok),
        "failed": len(results) - len(ok),
        "cached": sum(r.cached for r in results),
    }
    if spec.summary is not None and ok:
        summary.update(spec.summary(ok, opts, out))
    summary = to_jsonable(summary)
    write_tables(out, job, opts, results, summary)
    return BatchResult(job, out, results, summary, time.perf_counter() - t0)
