"""The Evaluation Agent's measuring instruments: feature networks, the evaluator, the reference cache."""

from artdirector.evaluation.evaluator import Evaluator
from artdirector.evaluation.features import InceptionFeatures, LeNetFeatures, check_images
from artdirector.evaluation.floor import floor_pair
from artdirector.evaluation.metrics import knn_radii
from artdirector.evaluation.reference import ReferenceCache
from artdirector.evaluation.report import Report

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
