"""Release, after export: the bundle of the sample run and the shipping artifacts into ``edge/assets``.

(The rate calibration that once corrected a summed density's bias went with the density: the event
counter needs none.)"""
