"""Evaluation: metrics (accuracy, Many/Medium/Few, calibration)."""

from lcreg.eval.metrics import (
    calibration_bins,
    calibration_errors,
    classification_metrics,
    per_class_accuracy,
    split_accuracy,
)

__all__ = ["calibration_bins", "calibration_errors", "classification_metrics", "per_class_accuracy", "split_accuracy"]
