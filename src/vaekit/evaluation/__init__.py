"""Metrics of a trained model on a dataset, and the report that records how they were computed."""

from vaekit.evaluation.elbo import evaluate_elbo
from vaekit.evaluation.reconstruction import reconstruction_metrics
from vaekit.evaluation.report import METRICS, EvaluationSettings, evaluate, write_report

__all__ = ["METRICS", "EvaluationSettings", "evaluate", "evaluate_elbo", "reconstruction_metrics", "write_report"]
