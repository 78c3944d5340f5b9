"""The Evaluation Agent's measuring instruments: feature networks, the evaluator, the reference cache."""

from artdirector.evaluation.evaluator import Evaluator, Report, floor_pair, knn_radii
from artdirector.evaluation.features import InceptionFeatures, LeNetFeatures, check_images
from artdirector.evaluation.reference import ReferenceCache

__all__ = [
    "Evaluator",
    "InceptionFeatures",
    "LeNetFeatures",
    "ReferenceCache",
    "Report",
    "check_images",
    "floor_pair",
    "knn_radii",
]
