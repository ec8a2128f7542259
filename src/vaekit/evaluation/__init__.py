"""Metrics of a trained model on a dataset."""

from vaekit.evaluation.elbo import evaluate_elbo

__all__ = ["evaluate_elbo"]
