"""AVSC (paper ``003_*``): potential sounding-object segmentation + audio-visual semantic correlation."""
