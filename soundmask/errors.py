"""Errors a user can cause and fix.

Every such error is a :class:`SoundmaskError`. Its message is one line that names the file (when there is
one), what is wrong with it and how to fix it; the CLI prints that line and exits with code 2. Anything
else that escapes is a bug in soundmask and keeps its traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SoundmaskError", "DataError", "ConfigError"]


class SoundmaskError(Exception):
    """Base class of user-fixable errors; ``str(err)`` is one line: ``<path>: <problem> (fix: <fix>)``."""

    exit_code = 2

    def __init__(self, problem: str, path: str | os.PathLike[str] | None = None, fix: str | None = None):
        self.problem = " ".join(str(problem).split())  # one line, whatever the caller passed
        self.path = Path(path) if path is not None else None
        self.fix = " ".join(fix.split()) if fix else None
        super().__init__(self._format())

    def _format(self) -> str:
        msg = f"{self.path}: {self.problem}" if self.path is not None else self.problem
        if self.fix:
            msg += f" (fix: {self.fix})"
        return msg


class DataError(SoundmaskError, ValueError):
    """Input data is missing, truncated, malformed, or inconsistent (wrong size, missing column, NaNs...)."""


class ConfigError(SoundmaskError, ValueError):
    """An option or argument has an invalid value (unknown method name, negative size...)."""
