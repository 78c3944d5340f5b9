"""The scene detector around its net (``artdirector.models.nets.detector.CenterNet``): training targets and
loss (:mod:`~artdirector.models.detection.targets`), decoding the output into boxes
(:mod:`~artdirector.models.detection.decode`), the trained detector and its weights file
(:mod:`~artdirector.models.detection.inference`), and the metrics (:mod:`~artdirector.models.detection.metrics`).
Training is ``artdirector.models.detector.DetectorModule``."""
