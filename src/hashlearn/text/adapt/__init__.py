"""Retrieval without labels: adapt the encoder to a corpus, then learn codes on it.

* :mod:`~hashlearn.text.adapt.contrastive` — :class:`ContrastiveAdapter` (Contriever-style crops, in-batch +
  MoCo-queue negatives, label-free held-out check with a zero-shot guard) and :func:`adapt_corpus`
  (``hashlearn text adapt``);
* :mod:`~hashlearn.text.adapt.bench` — zero-shot vs adapted encoder × codes on a BEIR folder
  (``hashlearn bench adapt``).
"""

from .contrastive import (REPORT_NAME, ContrastiveAdapter, adapt_corpus, check_model_folder, load_encoder,
                          random_crop)

__all__ = ["ContrastiveAdapter", "adapt_corpus", "check_model_folder", "load_encoder", "random_crop", "REPORT_NAME"]
