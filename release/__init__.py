"""Release, after export: the counter's rate calibration of an artifact (``footfall calibrate``) and
the bundle of the sample run and the shipping artifacts into ``edge/assets``."""
