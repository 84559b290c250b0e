"""The ``soundmask`` command. Each command is a thin shell over library functions.

User-fixable problems raise :class:`soundmask.errors.SoundmaskError`; :func:`main` prints its one-line
message and exits with code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from soundmask import __version__
from soundmask.avs2d import DEFAULT_METHOD
from soundmask.config import cli_options
from soundmask.constants import MIC_SPACING
from soundmask.errors import ConfigError, SoundmaskError
from soundmask.pipeline.batch import BatchConfig
from soundmask.pipeline.demo import DemoConfig
from soundmask.pipeline.lift3d import LiftConfig
from soundmask.pipeline.video import RunConfig
from soundmask.splat.train import ReconstructConfig
from soundmask.synth.config import SynthConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from soundmask.avs2d import Segmenter

app = typer.Typer(
    name="soundmask",
    help="Find what is making the sound in a video: 2D sound masks per frame and sound-tagged 3D/4D scenes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"soundmask {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """soundmask: audio-visual segmentation in 2D and 3D/4D, on a CPU."""


def _command_rows() -> list[tuple[str, str]]:
    rows = []
    for c in app.registered_commands:
        name = c.name or (c.callback.__name__.replace("_", "-") if c.callback else "?")
        doc = (c.help or (c.callback.__doc__ if c.callback else "") or "").strip().splitlines()
        rows.append((name, doc[0] if doc else ""))
    return rows


@app.command()
def info() -> None:
    """Print the version, the environment soundmask sees, and the list of commands."""
    import platform

    import torch
    from rich.table import Table

    console.print(f"[bold]soundmask {__version__}[/]  python {platform.python_version()}  torch {torch.__version__}")
    cuda = torch.cuda.is_available()
    console.print(
        f"threads: {torch.get_num_threads()}  CUDA: "
        + (f"yes ({torch.cuda.get_device_name(0)})" if cuda else "no (CPU backends)")
    )
    table = Table(title="commands", show_header=True, header_style="bold")
    table.add_column("command")
    table.add_column("what it does")
    for name, doc in _command_rows():
        table.add_row(f"soundmask {name}", doc)
    console.print(table)


@app.command()
def inspect(
    path: Path = typer.Argument(
        ..., help="Dataset folder: AVSBench S4/MS3, AVSS, 3DAVS-S34-O7 scene or soundmask scene."
    ),
    split: str = typer.Option("test", help="Split to read for the 2D layouts (train, val, test)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the summary as JSON to this file."),
) -> None:
    """Detect a dataset's layout, read every sample (a full validation) and print a summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from soundmask.data.inspect import inspect_dataset
    from soundmask.data.io import write_json

    with Progress(
        TextColumn("reading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("read", total=None)
        summary = inspect_dataset(
            path, split, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    table = Table(title=f"{summary.layout}: {summary.path}", show_header=False)
    for key, value in summary.to_dict().items():
        if key in ("path", "layout") or value in (None, {}, ""):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)
    if json_out is not None:
        write_json(json_out, summary.to_dict())
        console.print(f"summary written to {json_out}")


@app.command()
@cli_options(SynthConfig)
def synth(
    config: SynthConfig,
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; scenes/clips in it are replaced)."),
    count: int = typer.Option(1, "--count", "-n", help="Number of scenes (seeds SEED .. SEED+COUNT-1)."),
    seed: int = typer.Option(0, "--seed", "-s", help="First seed; a scene is a pure function of preset + seed."),
) -> None:
    """Generate synthetic sounding scenes (RGB, masks, depth, poses, stereo audio) in AVSBench/AVSS/3DAVS layouts."""
    import time

    from soundmask.synth.generator import generate_dataset

    cfg = config.resolved()
    t0 = time.perf_counter()
    with _progress_bar(f"synth {cfg.preset}") as bar:
        task = bar.add_task(f"synth {cfg.preset}", total=count, stage="")
        splits: dict[str, int] = {}

        def done(sc) -> None:
            splits[sc.split] = splits.get(sc.split, 0) + 1
            bar.update(task, advance=1, stage=f"{sc.name} ({sc.split})")

        root = generate_dataset(
            cfg, out, count, seed, on_scene=done, progress=lambda stage: bar.update(task, stage=stage)
        )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
    console.print(f"{count} {cfg.preset} scene(s) ({counts}) written to {root} in {time.perf_counter() - t0:.1f} s")


@app.command()
def audio(
    path: Path = typer.Argument(..., help="A recording (WAV/FLAC/OGG/MP3) or a video (MP4/MKV/MOV) with sound."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON to this file."),
    embedder: str = typer.Option("yamnet", help="Audio tagger (yamnet works offline; 'none' skips tagging)."),
    top_k: int = typer.Option(3, "--top-k", help="Tags shown per segment."),
    spacing: float = typer.Option(MIC_SPACING, help="Microphone spacing in metres (stereo recordings)."),
    speech: bool = typer.Option(True, help="Also find speech with silero-vad (when installed)."),
    min_segment: float = typer.Option(0.25, help="Shortest segment kept, seconds."),
    min_gap: float = typer.Option(0.2, help="Shorter silences inside a sound are closed, seconds."),
) -> None:
    """Find when something sounds, what it is (audio tags) and where (stereo time difference / direction)."""
    from rich.table import Table

    from soundmask.audio.analyze import analyze_file
    from soundmask.data.io import write_json

    with err_console.status(f"analysing {path.name}"):
        rep = analyze_file(
            path,
            embedder=None if embedder.lower() == "none" else embedder,
            spacing=spacing,
            speech="auto" if speech else False,
            min_segment=min_segment,
            min_gap=min_gap,
        )
    d = rep.to_dict(top_k)
    table = Table(title=f"{path.name}: {rep.duration:.2f} s, {rep.channels} ch, {rep.sample_rate} Hz")
    for col in ("start", "end", "kind", "tags"):
        table.add_column(col)
    if rep.tdoa is not None:
        table.add_column("TDoA (µs)")
        table.add_column("direction (°)")
    for row in d["segments"]:
        tags = ", ".join(f"{t['label']} {t['score']:.2f}" for t in row.get("tags", []))
        cells = [f"{row['start']:.2f}", f"{row['end']:.2f}", row["kind"], tags]
        if rep.tdoa is not None:
            cells += [
                "–" if row["tdoa_us"] is None else f"{row['tdoa_us']:+.1f}",
                "–" if row["direction_deg"] is None else f"{row['direction_deg']:+.1f}",
            ]
        table.add_row(*cells)
    console.print(table)
    if rep.tdoa is None:
        console.print("mono recording: no time difference or direction (those need 2 channels)")
    else:
        console.print(
            "TDoA > 0: the left microphone (channel 0) hears the sound first; direction > 0: towards the left"
        )
    console.print(f"{len(rep.segments)} segment(s) in " + ", ".join(f"{k} {v:.2f} s" for k, v in rep.timings.items()))
    if json_out is not None:
        write_json(json_out, d)
        console.print(f"report written to {json_out}")


# ----------------------------------------------------------------------------------------- 2D AVS methods
_SET_HELP = (
    "Method option KEY=VALUE (repeatable), e.g. --set top_n=12 --set mode=training-free; "
    "`soundmask methods` lists them."
)


class _LineProgress:
    """rich.Progress's interface for a log file or pipe (no terminal): one line per update, at most every
    ``every`` seconds (and always the last one)."""

    def __init__(self, every: float = 10.0) -> None:
        import time

        self.every, self._clock, self._last = every, time.monotonic, -1e9
        self._tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> _LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def add_task(self, description: str, total: float | None = None, **fields: object) -> int:
        self._tasks[len(self._tasks)] = {"description": description, "total": total, "completed": 0, **fields}
        return len(self._tasks) - 1

    def update(self, task: int, **kw: object) -> None:
        t = self._tasks[task]
        if "advance" in kw:
            t["completed"] += kw.pop("advance")  # type: ignore[operator]
        t.update(kw)
        now = self._clock()
        last = t["total"] is not None and t["completed"] == t["total"]
        if now - self._last >= self.every or last:
            self._last = now
            total = f"/{t['total']}" if t["total"] is not None else ""
            err_console.print(
                f"{t['description']}: {t['completed']}{total} {t.get('stage', '')}", markup=False, highlight=False
            )


def _progress_bar(description: str):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not err_console.is_terminal:
        return _LineProgress()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def _method_options(method: str, pairs: list[str]) -> tuple[type[Segmenter], dict, dict]:
    """The method's class, its ``--set`` options (typed) and those of them that configure prediction."""
    from soundmask.avs2d import MethodConfig, get_method

    mc = MethodConfig(method=method, method_options=tuple(pairs))
    return get_method(method), mc.options(), mc.inference_options()


@app.command()
def methods() -> None:
    """List the 2D audio-visual segmentation methods and their options (for --set KEY=VALUE)."""
    from rich.table import Table

    from soundmask.avs2d import METHODS, get_method

    for name in METHODS:
        cls = get_method(name)
        table = Table(title=f"{name}: {(cls.__doc__ or '').strip().splitlines()[0]}", show_header=True)
        for col in ("option", "default", "what it does"):
            table.add_column(col)
        import dataclasses

        for oc in cls.option_classes():
            for f in dataclasses.fields(oc):
                table.add_row(f.name, repr(f.default), f.metadata.get("help", ""))
        console.print(table)


@app.command()
def train(
    method: str = typer.Option(DEFAULT_METHOD, "--method", "-m", help="Method to train (see `soundmask methods`)."),
    data: list[Path] = typer.Option(
        [],
        "--data",
        "-d",
        help="Training data: AVSBench-layout folder(s), repeatable (frames + audio; SeAC reads no mask).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (rewritten after every epoch)."),
    stage: str | None = typer.Option(None, help="SeAC only: association (default) or proposer."),
    resume: bool = typer.Option(True, help="Continue from --out when it holds an unfinished run."),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
) -> None:
    """Train a method (resumable; progress bar). SeAC trains its association without any mask; AVSC and SDAVS
    are supervised by the ground-truth masks."""
    import time

    cls, opts, _ = _method_options(method, set_)
    t0 = time.perf_counter()
    with _progress_bar(f"train {method}") as bar:
        task = bar.add_task(f"train {method}" + (f" ({stage})" if stage else ""), total=None, stage="")

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, stage=what)

        log = cls.train(
            (data[0] if len(data) == 1 else data) if data else None,
            out,
            stage=stage,
            resume=resume,
            progress=progress,
            **opts,
        )
    loss = log.get("loss") or []
    tail = f", loss {loss[0]:.3f} → {loss[-1]:.3f}" if loss else ""
    console.print(f"checkpoint written to {out} in {time.perf_counter() - t0:.0f} s{tail}")


@app.command()
def evaluate(
    method: str = typer.Option(DEFAULT_METHOD, "--method", "-m", help="Method to evaluate (see `soundmask methods`)."),
    data: Path = typer.Option(
        ..., "--data", "-d", help="AVSBench S4/MS3 folder (the one holding the csv), or a folder of generated scenes."
    ),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", "-c", help="Checkpoint (default: shipped one)."),
    split: str = typer.Option("test", help="Split to evaluate."),
    batch_size: int = typer.Option(
        1, help="Clips per AVSBench batch (AVSBench's test loop: 1); pooled J/F do not depend on it."
    ),
    max_clips: int = typer.Option(0, help="Evaluate only the first N clips (0: all)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON here."),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
    robust: bool = typer.Option(
        False,
        "--robust",
        help="Listening test: score the clips again with silence, noise, off-screen and swapped audio "
        "(docs/avs2d.md, 'Listening').",
    ),
    conditions: str | None = typer.Option(
        None, "--conditions", help="With --robust: comma-separated subset of original,silence,noise,offscreen,swap."
    ),
    noise_dir: Path | None = typer.Option(
        None,
        "--noise-dir",
        help="With --robust: a folder of .wav/.flac/.ogg noise recordings to add to the built-in ones.",
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="With --robust: seed of the noise and donor choices (default 0)."
    ),
) -> None:
    """Score a method on an AVSBench-layout split (or on generated scenes, as 5-frame clips): AVSBench mIoU/F,
    pooled J/F, per category, frames/s; with --robust, whether it listens (silence, noise, off-screen, swap)."""
    from rich.table import Table

    from soundmask.avs2d.evaluate import evaluate as run_eval
    from soundmask.avs2d.features import open_training_dataset
    from soundmask.data.io import write_json

    if not robust and (conditions is not None or noise_dir is not None or seed is not None):
        raise ConfigError("--conditions, --noise-dir and --seed need --robust", fix="add --robust or drop them")
    cls, opts, infer = _method_options(method, set_)
    dataset = open_training_dataset(data, split)
    if max_clips:
        dataset = dataset[:max_clips]
    if robust:
        _evaluate_robust(cls, checkpoint, infer, opts, dataset, data, split, conditions, noise_dir, seed or 0, json_out)
        return
    rep = _run_loaded(
        cls,
        checkpoint,
        infer,
        opts,
        "evaluate",
        dataset,
        split,
        lambda seg, **kw: run_eval(seg, dataset, batch_size, data=str(data), split=split, **kw),
    )
    d = rep.to_dict()
    table = Table(title=f"{method} on {data} ({split}, {rep.clips} clips, {rep.frames} frames)", show_header=False)
    for k in ("miou", "fscore", "batch_size", "pooled_j", "pooled_f", "empty_predicted_on_empty", "frames_per_second"):
        v = d[k]
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)
    if json_out is not None:
        write_json(json_out, d)
        console.print(f"report written to {json_out}")


def _run_loaded(
    cls: type[Segmenter],
    checkpoint: Path | None,
    infer: dict,
    opts: dict,
    label: str,
    dataset: Any,
    split: str,
    run: Callable[..., Any],
) -> Any:
    """Load ``cls`` (a status line while it loads), then ``run(segmenter, progress=..., options=...)`` over
    ``dataset`` under a progress bar; ``options`` record the checkpoint and the method options."""
    with err_console.status(f"loading {cls.name}"):
        seg = cls.load(checkpoint, **infer)
    with _progress_bar(f"{label} {cls.name}") as bar:
        task = bar.add_task(f"{label} {cls.name}", total=len(dataset), stage=split)
        return run(
            seg,
            progress=lambda d, n: bar.update(task, completed=d, total=n),
            options={"checkpoint": str(checkpoint) if checkpoint else "default", **opts},
        )


def _evaluate_robust(
    cls: type[Segmenter],
    checkpoint: Path | None,
    infer: dict,
    opts: dict,
    dataset: Any,
    data: Path,
    split: str,
    conditions: str | None,
    noise_dir: Path | None,
    seed: int,
    json_out: Path | None,
) -> None:
    """`evaluate --robust`: the listening test of :mod:`soundmask.avs2d.robust`, as a table and JSON."""
    from rich.table import Table

    from soundmask.audio.noise import noise_sources
    from soundmask.avs2d.robust import (
        NegativeResult,
        OriginalResult,
        RobustConditions,
        SwapResult,
        evaluate_robust,
        parse_conditions,
    )
    from soundmask.data.io import write_json

    names = parse_conditions(conditions)
    noise = noise_sources(noise_dir) if "noise" in names else []
    conds = RobustConditions(dataset, names, seed, noise, str(data))  # data that cannot support a condition fails here
    rep = _run_loaded(
        cls,
        checkpoint,
        infer,
        opts,
        "robust",
        dataset,
        split,
        lambda seg, **kw: evaluate_robust(seg, dataset, conds, data=str(data), split=split, **kw),
    )
    table = Table(
        title=f"{cls.name} listening on {data} ({split}, {rep.clips} clips, seed {rep.seed})",
        box=None,  # fits 80 columns
        pad_edge=False,
    )
    for col in ("condition", "clips", "skip", "frames", "J", "F", "empty", "moved", "stayed", "fps"):
        table.add_column(col, justify="left" if col == "condition" else "right", no_wrap=True)

    def f(v: float) -> str:
        return "-" if v != v else f"{v:.3f}"

    for c, r in rep.results.items():
        j = fs = empty = moved = stayed = float("nan")
        if isinstance(r, OriginalResult):
            j, fs, empty = r.pooled_j, r.pooled_f, r.empty_predicted_on_empty
        elif isinstance(r, NegativeResult):
            empty = r.negative_empty
        elif isinstance(r, SwapResult):
            j, fs, moved, stayed = r.pooled_j, r.pooled_f, r.swap_moved, r.swap_stayed
        table.add_row(
            c, str(r.clips), str(r.skipped_clips), str(r.frames), f(j), f(fs), f(empty), f(moved), f(stayed),
            f"{r.frames_per_second:.1f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"listening score {f(rep.score)} (harmonic mean of the original J and the negatives' empty fraction); "
        f"{rep.frames_per_second:.1f} frames/s"
    )
    if json_out is not None:
        write_json(json_out, rep.to_dict())
        console.print(f"report written to {json_out}")


@app.command()
def segment(
    frames: Path = typer.Option(..., "--frames", "-f", help="A video file or a folder of frames (natural order)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: masks/<frame>.png and overlay.mp4."),
    audio_path: Path | None = typer.Option(None, "--audio", "-a", help="Audio file (default: the video's sound)."),
    method: str = typer.Option(DEFAULT_METHOD, "--method", "-m", help="Method (see `soundmask methods`)."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", "-c", help="Checkpoint (default: shipped one)."),
    fps: float | None = typer.Option(
        None,
        help="Frames per second to sample from a video (default: all); "
        "a folder's frames are 1/fps s apart (default 1).",
    ),
    max_frames: int | None = typer.Option(None, help="Process at most this many frames."),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
) -> None:
    """Segment the sounding objects of a video or frame folder: one 0/255 mask per frame and an overlay video."""
    import time

    from soundmask.avs2d.frames import read_frame_source
    from soundmask.data.io import atomic_dir
    from soundmask.report.overlay import write_mask_pngs, write_overlay_video

    cls, opts, infer = _method_options(method, set_)
    with err_console.status(f"reading {frames}"):
        src = read_frame_source(frames, audio=audio_path, fps=fps, max_frames=max_frames)
    from soundmask.pipeline.video import check_source

    check_source(src, frames, audio_path, min_frames=1 if frames.is_dir() else 2)
    with err_console.status(f"loading {method}"):
        seg = cls.load(checkpoint, **infer)
    from soundmask.pipeline.video import predict_source

    t0 = time.perf_counter()
    with _progress_bar(f"segment {method}") as bar:
        task = bar.add_task(f"segment {len(src)} frames", total=len(src), stage="")
        masks = predict_source(seg, src, progress=lambda b: bar.update(task, completed=b))
    dt = time.perf_counter() - t0
    with atomic_dir(out, overwrite=True) as tmp:
        write_mask_pngs(tmp / "masks", src.names, masks > 0.5)
        write_overlay_video(tmp / "overlay.mp4", src.frames, masks, fps=src.fps)
    sounding = int((masks > 0.5).reshape(len(masks), -1).any(1).sum())
    console.print(
        f"{len(src)} frames in {dt:.1f} s ({len(src) / dt:.1f} frames/s); {sounding} with a sounding "
        f"object; masks in {out / 'masks'}, overlay {out / 'overlay.mp4'}"
    )


_RECON_HELP = "Reconstruction option KEY=VALUE (see `soundmask reconstruct --help`), repeatable."


@app.command()
@cli_options(ReconstructConfig)
def reconstruct(
    config: ReconstructConfig,
    scene: Path = typer.Option(
        ..., "--scene", help="Scene folder: ours (scene.json) or 3DAVS-S34-O7 (input/ + sparse/0/)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Model file to write: .ply (3DGS layout, opens in splat viewers) or .pt."
    ),
) -> None:
    """Fit a 3D (or, when objects move, 4D) Gaussian-splatting model to a scene's posed frames."""
    from soundmask.splat.io import save_model
    from soundmask.splat.train import fit, load_views

    if out.suffix.lower() not in (".ply", ".pt"):
        raise ConfigError(f"unknown model format {out.suffix or '(none)'}", out, "name the output .ply or .pt")
    views = load_views(scene, scale=config.scale, test_every=config.test_every)
    with _progress_bar("reconstruct") as bar:
        task = bar.add_task(
            f"reconstruct {views.scene.name if views.scene else scene}", total=config.iterations, stage=""
        )

        def progress(step: int, total: int, info: dict) -> None:
            bar.update(task, completed=step, stage=f"loss {info['loss']:.4f}, {info['gaussians']} Gaussians")

        res = fit(views, config, progress=progress)
    save_model(res.gaussians, out)
    g = res.gaussians
    kind = "4D" if g.dynamic else "3D"
    if g.rigid is not None:
        kind += f" ({g.rigid.num_groups} moving bod{'y' if g.rigid.num_groups == 1 else 'ies'})"
    console.print(
        f"{kind} model of {len(res.gaussians)} Gaussians written to {out}: test-view PSNR "
        f"{res.psnr_test:.2f} dB ({len(views.test)} views never fitted), train {res.psnr_train:.2f} dB, "
        f"{res.iterations} steps in {res.seconds:.0f} s"
    )


@app.command()
@cli_options(LiftConfig)
def lift(
    config: LiftConfig,
    scene: Path = typer.Option(..., "--scene", help="Scene folder (ours or 3DAVS-S34-O7)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics as JSON here."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Folder for the sound-mask renders, sound_scene.pt and lift.json (default: beside --json, else none).",
    ),
    model: Path | None = typer.Option(
        None, "--model", help="Reuse a model from `soundmask reconstruct` (default: fit one now)."
    ),
    iterations: int | None = typer.Option(None, "--iterations", help="Reconstruction steps when fitting here."),
    recon: list[str] = typer.Option([], "--recon-set", help=_RECON_HELP),
) -> None:
    """Lift 2D sound masks onto a Gaussian model: chunking, 2D AVS, TDoA, reconstruction, grouping, association,
    tagging; novel-view sound-mask renders and metrics (EchoSegnet protocol) when the scene has ground truth."""

    from soundmask.config import parse_overrides
    from soundmask.data.io import write_json
    from soundmask.pipeline.lift3d import run_lift

    ropts = parse_overrides(recon, ReconstructConfig)
    if iterations is not None:
        ropts["iterations"] = iterations
    rcfg = ReconstructConfig(**{"backend": config.backend, "seed": config.seed, **ropts})
    if out is None and json_out is not None:
        out = json_out.with_suffix("")
    with _progress_bar("lift") as bar:
        task = bar.add_task(f"lift {scene.name}", total=100, stage="")

        def progress(stage: str, frac: float, note: str) -> None:
            bar.update(task, completed=int(100 * frac), stage=stage)

        res = run_lift(scene, config, model=model, reconstruct=rcfg, out_dir=out, progress=progress)
    m = res.metrics
    if json_out is not None:
        write_json(json_out, m, indent=2)

    def f(x: object) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    console.print(
        f"{scene.name}: mIoU {f(m.get('miou'))}, F {f(m.get('fscore'))}, pooled J {f(m.get('pooled_j'))}, "
        f"centroid error {f(m.get('centroid_error_m'))} m, {m['num_tags']} tag(s), "
        f"{m['seconds']:.0f} s" + (f"; outputs in {out}" if out else "")
    )
    if m.get("objects_found") is not None:
        console.print(
            f"sounding objects: {m['objects_found']} found, {m['objects_missed']} missed, {m['false_sources']} false "
            f"source(s), label accuracy {f(m.get('label_accuracy'))}"
            + (f", track error {f(m['track_error_m'])} m" if m.get("track_error_m") is not None else "")
        )


@app.command()
def render(
    model: Path = typer.Option(..., "--model", help="A .ply/.pt model, or a sound_scene.pt from `soundmask lift`."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file (one view) or folder (several views)."),
    scene: Path | None = typer.Option(None, "--scene", help="Take cameras from this scene (with --view)."),
    view: list[int] = typer.Option(
        [],
        "--view",
        help="Frame index (list position) of --scene to render; repeatable; "
        "default: all test views (every 8th) unless --orbit is given.",
    ),
    camera: Path | None = typer.Option(
        None,
        "--camera",
        help='A camera JSON: {"intrinsics": {fx, fy, cx, cy}, "width", "height", "camera_to_world": 4x4} (OpenCV).',
    ),
    orbit: int = typer.Option(0, "--orbit", help="Render this many novel views on a circle around --scene's cameras."),
    time: float | None = typer.Option(None, "--time", help="Time (s) for 4D models and for the sound mask."),
    label: str = typer.Option("", "--label", help="Only highlight sounding objects whose label matches."),
    backend: str = typer.Option("auto", "--backend", help="Rasterizer: auto | compiled | tile | dense | gsplat."),
) -> None:
    """Render a model (and, for a sound scene, its sound masks) from scene cameras, a camera file or novel views."""
    from soundmask.report.outputs import render_views

    paths = render_views(
        model, out, scene=scene, views=view, camera=camera, orbit=orbit, time=time, label=label, backend=backend
    )
    console.print(f"{len(paths)} view(s) written to {out}")


@app.command()
@cli_options(RunConfig, exclude=("scale", "init", "render_views"))
def run(
    config: RunConfig,
    video: Path = typer.Argument(..., help="Your video (MP4/MKV/MOV/...) with its sound; stereo for directions."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: VIDEO's name + '_soundmask')."),
    audio_path: Path | None = typer.Option(None, "--audio", "-a", help="The recording, when it is not in the video."),
) -> None:
    """Your own video: 2D sound masks per frame, the audio analysis (segments, tags, stereo direction), camera
    motion and, when the camera moves and the audio is stereo, the 3D result: COLMAP camera poses, a Gaussian
    reconstruction and its sound-tagged objects (OUT/lift/sound_scene.pt, for `soundmask view`)."""
    from soundmask.pipeline.video import open_video, run_video

    out = out or video.with_name(video.stem + "_soundmask")
    with err_console.status(f"reading {video.name}"):
        src = open_video(video, config, audio_path)
    with _progress_bar("run") as bar:
        task = bar.add_task(f"run {video.name}", total=100, stage="")

        def progress(stage: str, frac: float, note: str) -> None:
            bar.update(task, completed=int(100 * frac), stage=f"{stage} {note}".strip())

        res = run_video(video, config, out, audio=audio_path, source=src, progress=progress)
    console.print(
        f"{res.frames} frames, {res.sounding_frames} with a sounding object ({res.method}); "
        f"{res.segments} sound segment(s); camera motion {res.camera_motion:.4f}"
    )
    console.print(f"{res.mode.upper()}: {res.reason}")
    if res.lift is not None:
        lift = res.lift
        objs = ", ".join(o["label"] for o in lift["sounding_objects"]) or "none"
        psnr = lift["psnr_test"]
        console.print(
            f"3D: {lift['gaussians']} Gaussians (held-out-view PSNR "
            f"{'n/a' if psnr is None else f'{psnr:.1f}'} dB), sounding objects: {objs}; "
            f"view it with `soundmask view {res.out / 'lift' / 'sound_scene.pt'}`"
        )
    console.print(
        f"outputs in {res.out}: masks/, input/ (frames), audio/, overlay.mp4, run.json"
        + (", scene/ (3DAVS layout), lift/" if res.lift is not None else "")
    )


@app.command()
def view(
    model: Path = typer.Argument(
        ..., help="A sound_scene.pt from `soundmask lift` / `soundmask demo` (OUT/lift/), or a .ply/.pt model."
    ),
    port: int = typer.Option(8080, help="Port of the viewer (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: reachable from other machines)."),
    scene: Path | None = typer.Option(
        None,
        "--scene",
        help="Scene folder whose training cameras give the starting view (default: the cameras stored by "
        "`soundmask lift`, or the scene beside a demo/run output).",
    ),
) -> None:
    """Interactive browser viewer (viser): the Gaussian scene with its sounding objects highlighted, a time slider
    and a query box (label, time or both). It opens at a training camera, inside the room."""
    from soundmask.report.viewer import SoundViewer

    if not model.is_file():
        raise ConfigError(
            "model file not found", model, "pass OUT/lift/sound_scene.pt or a model from `soundmask reconstruct`"
        )
    v = SoundViewer(model, host=host, port=port, scene=scene)
    start = f"training camera {v.view.name}".strip() if v.view is not None else "outside (no training camera known)"
    console.print(
        f"viewer of {model} ({len(v.g)} Gaussians, {len(v.sound.tags)} sounding object(s)), starting at {start}, at "
        f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{v.port}  (Ctrl-C to stop)"
    )
    try:
        v.serve_forever()
    except KeyboardInterrupt:
        v.stop()


@app.command()
@cli_options(DemoConfig)
def demo(
    config: DemoConfig,
    out: Path = typer.Option(
        Path("soundmask-demo"),
        "--out",
        "-o",
        help="Output folder: report.html, metrics.json, the scene, the model and the stage cache.",
    ),
) -> None:
    """The main job, offline: generate a sounding scene, run the whole pipeline (audio, 2D AVS, reconstruction,
    lifting, tagging, novel views) and write OUT/report.html and OUT/metrics.json. Re-running resumes."""
    from rich.table import Table

    from soundmask.pipeline.demo import STAGES, run_demo

    with _progress_bar("demo") as bar:
        tasks = {s: bar.add_task(f"{s:<11}", total=100, stage="waiting") for s in STAGES}

        def progress(stage: str, frac: float, note: str) -> None:
            bar.update(tasks[stage], completed=int(round(100 * frac)), stage=note or "running")

        res = run_demo(config, out, progress=progress)
    m = res.metrics
    table = Table(title=f"soundmask demo: {m['scene']}", show_header=True, header_style="bold")
    for c in ("stage", "seconds", ""):
        table.add_column(c)
    for r in res.stages:
        table.add_row(r.name, f"{r.seconds:.1f}", "cached" if r.cached else "")
    console.print(table)

    def f(x: object) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    s3, m2 = m["scene3d"], m["masks_2d"]
    console.print(
        f"2D ({m['method']}): pooled J {f(m2['pooled_j'])}, F {f(m2['pooled_f'])}; reconstruction "
        f"{m['reconstruction']['psnr_test']:.1f} dB on held-out views; 3D sound masks: mIoU "
        f"{f(s3.get('miou'))}, F {f(s3.get('fscore'))}, {s3.get('num_tags')} tag(s): "
        + (", ".join(t["label"] for t in m["tags"]) or "none")
    )
    if s3.get("objects_found") is not None:
        n = sum(o["sounding"] for o in m["objects"])
        console.print(
            f"sounding objects: {s3['objects_found']} of {n} found, {s3['false_sources']} false source(s), label "
            f"accuracy {f(s3.get('label_accuracy'))}"
            + (f", track error {f(s3['track_error_m'])} m" if s3.get("track_error_m") is not None else "")
        )
    console.print(f"report: {res.report}  (metrics: {out / 'metrics.json'}; {m['seconds']:.0f} s)")


@app.command()
@cli_options(BatchConfig)
def batch(
    config: BatchConfig,
    job: str = typer.Argument(
        ...,
        help="Job per item: synth (seeds) | lift (scenes: reconstruct + lift) | run (videos) | evaluate (clip sets).",
    ),
    inputs: list[str] = typer.Argument(
        None,
        help="Items: scene folders or folders of scenes (lift), videos or folders of them (run), clip-set folders "
        "(evaluate), seeds and ranges like 0-7 (synth).",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: batch.csv, batch.json, items/ (the per-item cache) and job outputs."
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="Job option KEY=VALUE, repeatable; nested configs by their own names (lift: --set iterations=200 "
        "--set use_gt_2d=true); docs/batch.md lists them.",
    ),
) -> None:
    """Run one job over many inputs on Ray (local cores, or a cluster with --address): resumable (finished items
    are cached in OUT/items/), a failed item is an error row, a dead worker's item is retried; writes
    OUT/batch.csv and OUT/batch.json with the job's summary."""
    from rich.table import Table

    from soundmask.pipeline.batch import run_batch

    where = (
        "serial, in this process" if config.serial else f"Ray at {config.address}" if config.address else "local Ray"
    )
    with _progress_bar(f"batch {job}") as bar:
        task: list[int] = []

        def on_items(items: list, cached: int) -> None:
            task.append(bar.add_task(f"batch {job}", total=len(items), stage=where))
            if cached:
                err_console.print(f"{cached} of {len(items)} item(s) cached in {out / 'items'}: skipped")

        def progress(done: int, total: int, r: Any) -> None:
            bar.update(task[0], completed=done, stage=f"{r.name} {'ok' if r.ok else 'error'}")

        res = run_batch(job, inputs or [], out, cfg=config, set_=set_, progress=progress, on_items=on_items)
    s = res.summary
    table = Table(title=f"soundmask batch {job}: {s['items']} item(s)", show_header=False)
    for k, v in s.items():
        if k in ("job", "items") or isinstance(v, (dict, list)):
            continue
        table.add_row(k, "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)
    for r in res.failed:
        console.print(f"[red]error[/] {r.name}: {r.error}", highlight=False)
    console.print(f"{len(res.results)} item(s) in {res.seconds:.1f} s; table {out / 'batch.csv'}, {out / 'batch.json'}")


def main() -> None:
    """Console entry point: run the app; a SoundmaskError becomes one line on stderr and exit code 2."""
    try:
        app()  # standalone: usage errors already exit with code 2 and a short message
    except SoundmaskError as e:
        report_error(e)
        sys.exit(e.exit_code)


def report_error(e: SoundmaskError) -> None:
    """Print a user error as exactly one line on stderr."""
    err_console.print("[bold red]error:[/] ", end="")
    err_console.print(str(e), markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
