"""Discovering categories: novel classes in tables, generalized category discovery, few-shot episodes.

Estimators with ``fit``/``predict`` that turn "labels cover only some classes" into clustering with side
information: :class:`TabularNCD` (novel class discovery in tables), :class:`GMMDiscovery` (generalized
category discovery with a semi-supervised Gaussian mixture), :func:`fewshot_predict` (inductive and
transductive few-shot classification on fixed features), :func:`label_efficiency` (a linear head's accuracy
vs the number of labels on fixed representations, e.g. a :class:`ContrastiveEncoder` trained without labels),
:class:`WebNoiseClassifier` (training on web-noisy labels: detected noisy rows dropped or used as unlabelled).
"""

from .estimate_k import estimate_n_clusters
from .fewshot import FEWSHOT_METHODS, fewshot_predict, opta_plan, sample_episode
from .gmm import GMMDiscovery
from .labels import ContrastiveEncoder, balanced_label_indices, fit_label_curve, label_efficiency
from .lls import LatentLabelShift
from .noise import NOISE_STRATEGIES, WebNoise, WebNoiseClassifier, detection_auc, inject_web_noise, web_noise_scores
from .tabular_ncd import TabularNCD

__all__ = ["TabularNCD", "GMMDiscovery", "LatentLabelShift", "estimate_n_clusters", "fewshot_predict",
           "FEWSHOT_METHODS", "opta_plan",
           "sample_episode", "ContrastiveEncoder", "balanced_label_indices", "fit_label_curve", "label_efficiency",
           "WebNoise", "WebNoiseClassifier", "NOISE_STRATEGIES", "detection_auc", "inject_web_noise",
           "web_noise_scores"]
