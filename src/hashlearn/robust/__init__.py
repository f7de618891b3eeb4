"""Robustness and privacy of learned hashing: targeted attacks and adversarial training, hashing in
vertical federated learning against data reconstruction, unlearnable clusters.

* :class:`ProSGAN`, :func:`pgd_code_attack` with :func:`p2p_codes` / :func:`dhta_codes`,
  :func:`noise_attack`, :func:`targeted_map`, :func:`adversarial_finetune` — attacks on a fitted deep
  hasher of :mod:`hashlearn.hashing.deep` ("Prototype-supervised Adversarial Network for Targeted Attack
  of Deep Hashing", CVPR 2021);
* :func:`train_vfl`, :func:`reconstruction_attack`, :func:`label_inference_attack` — parties and top as
  real processes (gloo), float embeddings vs sign codes ("All You Need Is Hashing: Defending Against
  Data Reconstruction Attack in Vertical Federated Learning", 2022);
* :class:`UnlearnableClusters` — "Unlearnable Clusters: Towards Label-agnostic Unlearnable Examples"
  (CVPR 2023).

torch is imported when a model is trained (``pip install 'hashlearn[robust]'``).
"""

from ._common import check_eps, random_targets, sign_ste
from .attack import (HasherFunction, ProSGAN, adversarial_finetune, dhta_codes, noise_attack, p2p_codes,
                     pgd_code_attack, retrieval_map, targeted_map)
from .unlearnable import UnlearnableClusters, classifier_accuracy, train_classifier
from .vfl import check_parties, label_inference_attack, reconstruction_attack, train_vfl

__all__ = ["check_eps", "random_targets", "sign_ste", "HasherFunction", "ProSGAN", "adversarial_finetune",
           "dhta_codes", "noise_attack", "p2p_codes", "pgd_code_attack", "retrieval_map", "targeted_map",
           "UnlearnableClusters", "classifier_accuracy", "train_classifier", "check_parties",
           "label_inference_attack", "reconstruction_attack", "train_vfl"]
