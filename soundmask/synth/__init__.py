"""Procedural sounding-scene generator (the benchmark): layout, meshes, renderer, sounds, acoustics."""
