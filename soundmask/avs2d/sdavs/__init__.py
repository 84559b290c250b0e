"""SDAVS (paper ``004_*``): selective noise suppression (SNRP) and discriminative mutual fusion (DAMF)."""
