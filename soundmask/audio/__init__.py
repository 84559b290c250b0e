"""Audio front-end: IO, activity chunking, embedders (registry), stereo time delay (TDoA)."""
