"""Staged pipeline runner with a resumable on-disk cache per stage."""
