"""hashlearn.represent.climb and data: hand-computed n-gram perplexity, budgeted draws, the predictor-guided
search on a synthetic objective, bad corpora."""

import numpy as np
import pytest

from hashlearn.errors import ValidationError
from hashlearn.represent.climb import ClimbMixture, NGramLM, WordVocab, mixture_search, sample_mixture
from hashlearn.represent.data import decode_documents, strip_header


def test_bigram_perplexity_by_hand():
    lm = NGramLM(order=2, discount=0.5, n_symbols=3, pad=2).fit([0, 1, 0, 1])
    # unigram: C(0)=C(1)=2 of 4, 2 types: P1(0) = P1(1) = 1.5/4 + 0.5·2/4·1/3 = 11/24
    # P(0|pad) = 0.5 + 0.5·11/24 = 35/48 ; P(1|0) = 1.5/2 + 0.5·1/2·11/24 = 83/96 ; P(1|1) = 0 + 0.5·11/24
    probs = np.array([35 / 48, 83 / 96, 11 / 48])
    assert np.allclose(np.exp(lm.log_prob([0, 1, 1])), probs)
    assert lm.perplexity([0, 1, 1]) == pytest.approx(np.prod(probs) ** (-1 / 3))


def test_ngram_probabilities_sum_to_one():
    lm = NGramLM(order=3).fit("the cat sat on the mat")
    for ctx in ("th", "zq", "e "):
        total = sum(np.exp(lm.log_prob(ctx + chr(c))[-1]) for c in range(129))
        assert total == pytest.approx(1.0, abs=1e-9)


def test_sample_mixture_budget_and_errors():
    texts = ["a" * 50] * 4 + ["b" * 50] * 4
    labels = np.array([0] * 4 + [1] * 4)
    seq, docs = sample_mixture(texts, labels, [0.75, 0.25], 400, 0, batch_tokens=100)
    assert seq.count("a") == 300 and seq.count("b") == 100
    seq, _ = sample_mixture(texts, labels, [1.0, 0.0], 400, 0, batch_tokens=100)  # cycles through cluster 0
    assert seq.count("a") == 400
    with pytest.raises(ValidationError, match="smaller than one batch"):
        sample_mixture(texts, labels, [0.5, 0.5], 50, 0, batch_tokens=100)
    with pytest.raises(ValidationError, match="summing to 1"):
        sample_mixture(texts, labels, [0.5, 0.6], 400, 0, batch_tokens=100)
    with pytest.raises(ValidationError, match="cluster 2 has weight"):
        sample_mixture(texts, labels, [0.5, 0.0, 0.5], 400, 0, batch_tokens=100)


def test_search_finds_the_best_mixture_of_a_synthetic_objective():
    v = np.array([0.1, 0.9, 0.3, 0.2, 0.5])

    def objective(w):
        return float(-w @ v)

    out = mixture_search(objective, 5, rounds=(12, 12, 12), predictor="ridge", random_state=0)
    first = min(s for r, _, s in out["history"] if r == 0)
    assert objective(out["weights"]) < first  # better than every mixture of the random first round
    assert np.argmax(out["weights"]) == 1 and out["weights"][1] > 0.8
    assert out["weights"].sum() == pytest.approx(1.0)


def test_climb_mixture_tiny_and_bad_input():
    rng = np.random.default_rng(0)
    texts = ["apples and pears " * 5] * 10 + ["rockets to the moon " * 5] * 10
    E = np.vstack([rng.normal(0, 0.1, (10, 4)) + 1, rng.normal(0, 0.1, (10, 4)) - 1])
    target = ["rockets to the moon and back"]
    m = ClimbMixture(2, budget_tokens=60, batch_tokens=10, order=2, rounds=(4, 3), n_candidates=50,
                     random_state=0).fit(E, texts, target)
    moon = int(np.bincount(m.labels_[10:], minlength=2).argmax())
    assert m.weights_[moon] > 0.6 and m.natural_.sum() == pytest.approx(1.0)
    with pytest.raises(ValidationError, match="n_clusters=30 is more than the 20 documents"):
        ClimbMixture(30).fit(E, texts, target)
    with pytest.raises(ValidationError, match="smaller than one batch"):
        ClimbMixture(2, budget_tokens=5, batch_tokens=10).fit(E, texts, target)
    with pytest.raises(ValidationError, match="no non-empty"):
        ClimbMixture(2).fit(E, texts, ["", ""])


def test_word_vocab_unknown_and_boundary_ids():
    v = WordVocab(2).fit(["a a a b b c"])
    assert v.encode("a b c zz").tolist() == [0, 1, 2, 2] and v.n_symbols == 4


def test_decode_documents_counts_bad_bytes_and_empty_posts():
    raw = [b"Subject: hi\n\nbody text", b"From: x\n\n   ", b"Subject: caf\xe9\n\ncaf\xe9 au lait", b""]
    subjects, bodies, kept, stats = decode_documents(raw)
    assert kept.tolist() == [0, 2] and stats == {"read": 4, "decoded_with_replacement": 1, "empty_skipped": 2}
    assert bodies[1] == "caf\ufffd au lait" and subjects[1] == "caf\ufffd"
    assert strip_header("no header here") == ("", "no header here")
