"""2D audio-visual segmentation methods (SeAC, AVSC, SDAVS) behind one Segmenter interface."""
