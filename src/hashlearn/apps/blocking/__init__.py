"""Entity blocking: cheap candidate pairs for record linkage (two tables) and deduplication (one table).

A blocker proposes pairs of records that *may* match, so that an expensive matcher only compares those
instead of all ``n_left × n_right`` (or ``n (n - 1) / 2``) pairs. Candidates are produced in chunks
(:meth:`Blocker.iter_candidates`) and never through an ``n × n`` matrix; what a run keeps in memory is
proportional to the number of candidates (plus, for the embedding blockers, ``O(block × n)`` scores).

Methods (the names of :func:`make_blocker` and :func:`list_blockers`, the CLI's ``--method``):

* ``standard`` -- records sharing the exact value of a blocking key (:class:`StandardBlocker`).
* ``sortedneighbourhood`` -- records whose keys are within a window in sorted order
  (:class:`SortedNeighbourhoodBlocker`).
* ``minhash`` -- MinHash LSH over character q-grams or word tokens (:class:`MinHashBlocker`).
* ``simhash`` -- multi-table hyperplane LSH over text embeddings (:class:`SimHashBlocker`).
* ``embedding`` -- ``k`` nearest neighbours over frozen text embeddings (:class:`EmbeddingBlocker`).
* ``neural`` -- NLSHBlock: the language model's top layers (or a projection over frozen embeddings)
  fine-tuned with an LSH-aware triplet loss on pairs mined without labels (mutual nearest neighbours,
  shared rare code tokens) or on labelled pairs, then hashed; a label-free guard keeps the frozen model
  when the trained one ranks held-out mined pairs worse (:class:`NeuralBlocker`, :class:`GuardReport`).
* ``union:a+b`` -- the union of several blockers (:class:`UnionBlocker`).

Records are prepared by :func:`prepare_table`: the chosen fields are read as text, missing cells
(``NaN``, ``None``, empty strings) become ``""`` and are *counted* (:attr:`RecordTable.n_missing`), and a
record whose chosen fields are all empty cannot be blocked by the token/embedding blockers; those are
counted in :attr:`RecordTable.n_empty` and reported, never dropped silently.

Pairs are ``(left position, right position)``; for deduplication both index the single table and
``left < right``. :func:`blocking_metrics` scores them against true links.

Modules: :mod:`.records` (prepared tables), :mod:`.tables` (files in and out), :mod:`.pairs` (pair
arrays), :mod:`.base` (the contract), :mod:`.rules` (standard, sorted neighbourhood), :mod:`.lsh` (MinHash,
SimHash), :mod:`.embedding` (exact kNN), :mod:`.neural` (the neural blocker), :mod:`.fitting` (its fit),
:mod:`.finetune` (trainable top layers of the language model), :mod:`.training` (losses, torch),
:mod:`.mining` (label-free training pairs), :mod:`.perturb` (noisy record copies), :mod:`.guard`
(keep-or-fall-back verdict), :mod:`.union`, :mod:`.registry`, :mod:`.metrics`, :mod:`.run`.

Examples
--------
>>> import pandas as pd
>>> left = pd.DataFrame({"name": ["john smith", "mary jones", "peter pan"]}, index=["a", "b", "c"])
>>> right = pd.DataFrame({"name": ["jon smith", "mary jone", "wendy darling"]}, index=["x", "y", "z"])
>>> L, R = prepare_table(left, fields=["name"]), prepare_table(right, fields=["name"])
>>> blocker = make_blocker("minhash", threshold=0.3, random_state=0)
>>> blocker.candidate_pairs(L, R).tolist()
[[0, 0], [1, 1]]
"""

from __future__ import annotations

from .base import Blocker
from .embedding import EmbeddingBlocker
from .guard import GuardReport
from .lsh import MinHashBlocker, SimHashBlocker
from .metrics import blocking_metrics
from .neural import NeuralBlocker, perturb_record
from .records import RecordTable, prepare_table
from .registry import BLOCKING_METHODS, get_blocker_class, list_blockers, make_blocker
from .rules import SortedNeighbourhoodBlocker, StandardBlocker
from .run import BlockingRun, run_blocking
from .tables import read_table, read_truth, write_pairs
from .union import UnionBlocker

__all__ = [
    "RecordTable",
    "prepare_table",
    "read_table",
    "read_truth",
    "Blocker",
    "StandardBlocker",
    "SortedNeighbourhoodBlocker",
    "MinHashBlocker",
    "SimHashBlocker",
    "EmbeddingBlocker",
    "NeuralBlocker",
    "GuardReport",
    "UnionBlocker",
    "perturb_record",
    "make_blocker",
    "list_blockers",
    "get_blocker_class",
    "BLOCKING_METHODS",
    "blocking_metrics",
    "BlockingRun",
    "run_blocking",
    "write_pairs",
]
