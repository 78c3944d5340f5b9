"""The Evaluation Agent's measuring instruments: feature networks, the evaluator, the reference cache."""

from artdirector.evaluation.evaluator import Evaluator, Report, knn_radii
from artdirector.evaluation.features import InceptionFeatures, LeNetFeatures, check_images
from artdirector.evaluation.reference import ReferenceCache

__all__ = [
    "Evaluator",
    "InceptionFeatures",
    "LeNetFeatures",
    "ReferenceCache",
    "Report",
    "check_images",
    "knn_radii",
]
