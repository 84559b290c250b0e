"""Overlays, plots, HTML report and viewer."""
