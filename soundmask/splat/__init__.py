"""Gaussian splatting: model, rasterizer backends, trainer, 4D motion."""
