"""The ``soundmask`` command. Each command is a thin shell over library functions.

User-fixable problems raise :class:`soundmask.errors.SoundmaskError`; :func:`main` prints its one-line
message and exits with code 2.
"""

from __future__ import annotations

import sys

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


def main() -> None:
    """Console entry point: run the app, turning SoundmaskError into one line on stderr and exit code 2."""
    try:
        app(standalone_mode=False)
    except SoundmaskError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:  # --version, --help
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as e:  # click usage errors (bad option, missing argument)
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
