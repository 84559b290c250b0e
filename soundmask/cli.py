"""The ``soundmask`` command. Each command is a thin shell over library functions.

User-fixable problems raise :class:`soundmask.errors.SoundmaskError`; :func:`main` prints its one-line
message and exits with code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from soundmask import __version__
from soundmask.errors import SoundmaskError

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
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Print the version."),
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
    path: Path = typer.Argument(..., help="Dataset folder: AVSBench S4/MS3, AVSS, 3DAVS-S34-O7 scene or soundmask scene."),
    split: str = typer.Option("test", help="Split to read for the 2D layouts (train, val, test)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the summary as JSON to this file."),
) -> None:
    """Detect a dataset's layout, read every sample (a full validation) and print a summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from soundmask.data.inspect import inspect_dataset
    from soundmask.data.io import write_json

    with Progress(
        TextColumn("reading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True,
    ) as bar:
        task = bar.add_task("read", total=None)
        summary = inspect_dataset(path, split, progress=lambda done, total: bar.update(task, completed=done, total=total))
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


from soundmask.config import cli_options  # noqa: E402
from soundmask.synth.config import SynthConfig  # noqa: E402  (light: no GL or audio imports)


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

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from soundmask.synth.generator import generate_dataset

    cfg = config.resolved()
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False,
    ) as bar:
        task = bar.add_task(f"synth {cfg.preset}", total=count, stage="")
        splits: dict[str, int] = {}

        def done(sc) -> None:  # noqa: ANN001 - SynthScene
            splits[sc.split] = splits.get(sc.split, 0) + 1
            bar.update(task, advance=1, stage=f"{sc.name} ({sc.split})")

        root = generate_dataset(cfg, out, count, seed, on_scene=done,
                                progress=lambda stage: bar.update(task, stage=stage))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
    console.print(f"{count} {cfg.preset} scene(s) ({counts}) written to {root} in {time.perf_counter() - t0:.1f} s")


@app.command()
def audio(
    path: Path = typer.Argument(..., help="A recording (WAV/FLAC/OGG/MP3) or a video (MP4/MKV/MOV) with sound."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON to this file."),
    embedder: str = typer.Option("yamnet", help="Audio tagger (yamnet works offline; 'none' skips tagging)."),
    top_k: int = typer.Option(3, "--top-k", help="Tags shown per segment."),
    spacing: float = typer.Option(0.2, help="Microphone spacing in metres (stereo recordings)."),
    speech: bool = typer.Option(True, help="Also find speech with silero-vad (when installed)."),
    min_segment: float = typer.Option(0.25, help="Shortest segment kept, seconds."),
    min_gap: float = typer.Option(0.2, help="Shorter silences inside a sound are closed, seconds."),
) -> None:
    """Find when something sounds, what it is (audio tags) and where (stereo time difference / direction)."""
    from rich.table import Table

    from soundmask.audio.analyze import analyze_file
    from soundmask.data.io import write_json

    with err_console.status(f"analysing {path.name}"):
        rep = analyze_file(path, embedder=None if embedder.lower() == "none" else embedder, spacing=spacing,
                           speech="auto" if speech else False, min_segment=min_segment, min_gap=min_gap)
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
            cells += ["–" if row["tdoa_us"] is None else f"{row['tdoa_us']:+.1f}",
                      "–" if row["direction_deg"] is None else f"{row['direction_deg']:+.1f}"]
        table.add_row(*cells)
    console.print(table)
    if rep.tdoa is None:
        console.print("mono recording: no time difference or direction (those need 2 channels)")
    else:
        console.print("TDoA > 0: the left microphone (channel 0) hears the sound first; direction > 0: towards the left")
    console.print(f"{len(rep.segments)} segment(s) in " + ", ".join(f"{k} {v:.2f} s" for k, v in rep.timings.items()))
    if json_out is not None:
        write_json(json_out, d)
        console.print(f"report written to {json_out}")


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
