"""Visual backbones and class-agnostic mask proposals (registry)."""
