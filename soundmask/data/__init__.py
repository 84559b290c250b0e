"""Typed records (``Clip``, ``Camera``, ``Scene`` ...) and dataset readers/writers."""

from soundmask.data.types import Camera, Clip, Intrinsics, Scene, SceneFrame, SoundEvent, SoundObject

__all__ = ["Camera", "Clip", "Intrinsics", "Scene", "SceneFrame", "SoundEvent", "SoundObject"]
