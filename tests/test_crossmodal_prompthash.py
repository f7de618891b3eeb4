"""PromptHash: label-consistent retrieval across modalities, prompt affinities, determinism, validation."""

from __future__ import annotations

import numpy as np
import pytest

import hashlearn
from hashlearn.codes import hamming_distances, unpack
from hashlearn.crossmodal import PromptHash
from hashlearn.crossmodal.base import semi_paired_split
from hashlearn.crossmodal.data import make_planted_views
from hashlearn.crossmodal.prompthash import supcon
from hashlearn.errors import ValidationError
from hashlearn.metrics import hamming_ranking, mean_average_precision, relevance_from_labels

torch = pytest.importorskip("torch", reason="prompthash trains with torch")

KW = dict(n_bits=16, hidden=64, embed_dim=32, epochs=25, batch_size=64, n_threads=1)


def xmap(model, q_views, db_views, yq, ydb, q_view, nb=16):
    q = model.transform(q_views[q_view], view=q_view)
    db = model.transform(db_views[1 - q_view], view=1 - q_view)
    rank = hamming_ranking(hamming_distances(q, db, n_bits=nb))
    return mean_average_precision(relevance_from_labels(yq, ydb, rank))


@pytest.fixture(scope="module")
def data():
    views, y = make_planted_views(500, n_clusters=5, latent_dim=6, dims=(24, 16), noise=0.3, random_state=3)
    tr = [v[:400] for v in views]
    te = [v[400:] for v in views]
    return tr, te, y[:400], y[400:]


@pytest.fixture(scope="module")
def fitted(data):
    tr, _, ytr, _ = data
    return PromptHash(random_state=0, **KW).fit(tr, ytr)


def test_held_out_queries_retrieve_their_class_in_the_other_modality(fitted, data):
    tr, te, ytr, yte = data
    for q_view in (0, 1):
        assert xmap(fitted, te, tr, yte, ytr, q_view) > 0.9


def test_prompt_affinity_selects_the_class_prompt(fitted, data):
    tr, te, ytr, yte = data
    for v in (0, 1):
        a = fitted.prompt_affinity(te[v], view=v)
        assert a.shape == (100, 5)
        np.testing.assert_allclose(a.sum(1), 1.0, rtol=1e-5)
        hit = np.mean(fitted.classes_[a.argmax(1)] == yte)
        assert hit > 0.9  # the affinity picks the item's class prompt without its label


def test_transform_fused_is_the_gate_of_the_conditioned_features(fitted, data):
    _, te, _, _ = data
    codes = fitted.transform_fused(te)
    assert codes.dtype == np.uint64 and codes.shape == (100, 1)
    e0, e1 = (fitted._conditioned(te[v], v)[0] for v in (0, 1))
    A, c = fitted.gate_
    g = 1 / (1 + np.exp(-(np.hstack([e0, e1]) @ A + c)))
    W, b = fitted.hash_layer_
    np.testing.assert_array_equal(unpack(codes, 16).astype(bool), (g * e0 + (1 - g) * e1) @ W + b > 0)
    with pytest.raises(ValidationError, match="same number of rows"):
        fitted.transform_fused([te[0], te[1][:5]])


def test_semi_paired_rows_are_used(data):
    tr, te, ytr, yte = data
    r0, r1, pairs = semi_paired_split(400, 0.2, random_state=0)
    m = PromptHash(random_state=0, **KW).fit([tr[0][r0], tr[1][r1]], [ytr[r0], ytr[r1]], pairs=pairs)
    assert min(xmap(m, te, tr, yte, ytr, 0), xmap(m, te, tr, yte, ytr, 1)) > 0.85


def test_multilabel_supervision(data):
    tr, te, ytr, yte = data
    Y = np.eye(5, dtype=np.float32)[ytr]
    Y[:, 4] = np.maximum(Y[:, 4], Y[:, 3])  # class 3 items also carry label 4
    m = PromptHash(random_state=0, **KW).fit(tr, Y)
    assert m.multilabel_ and m.prompts_.shape == (5, 32)
    Yq = np.eye(5)[yte]
    Yq[:, 4] = np.maximum(Yq[:, 4], Yq[:, 3])
    assert xmap(m, te, tr, Yq, Y, 0) > 0.8


def test_deterministic_and_global_torch_state_untouched(data):
    tr, _, ytr, _ = data
    kw = dict(KW, epochs=2)
    torch.manual_seed(11)
    state, threads = torch.random.get_rng_state().clone(), torch.get_num_threads()
    a = PromptHash(random_state=4, **kw).fit(tr, ytr)
    assert torch.equal(torch.random.get_rng_state(), state) and torch.get_num_threads() == threads
    torch.manual_seed(99)
    b = PromptHash(random_state=4, **kw).fit(tr, ytr)
    np.testing.assert_array_equal(a.prompts_, b.prompts_)
    np.testing.assert_array_equal(a.loss_, b.loss_)
    c = PromptHash(random_state=5, **kw).fit(tr, ytr)
    assert not np.array_equal(a.prompts_, c.prompts_)


def test_supcon_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    S = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0]])  # anchor 2 has no positive: skipped
    cos = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T / 0.5
    expect = []
    for i in range(2):
        expect.append(torch.logsumexp(cos[i], 0) - torch.logsumexp(cos[i][S[i] > 0], 0))
    assert float(supcon(torch, a, b, S, 0.5)) == pytest.approx(float(torch.stack(expect).mean()), rel=1e-6)


@pytest.mark.parametrize("param, value, message", [
    ("embed_dim", 0, "embed_dim must be an integer >= 1"),
    ("temperature", 0.0, "temperature must be a finite number > 0"),
    ("affinity_weight", -1.0, "affinity_weight must be a finite number >= 0"),
    ("n_bits", 0, "n_bits must be a positive integer"),
])
def test_parameter_errors(data, param, value, message):
    tr, _, ytr, _ = data
    with pytest.raises(ValidationError, match=message):
        PromptHash(**{**KW, param: value}).fit(tr, ytr)


def test_input_errors(fitted, data):
    tr, _, ytr, _ = data
    with pytest.raises(ValidationError, match="expected 2 views, got 3"):
        PromptHash(**KW).fit([tr[0], tr[1], tr[0]], ytr)
    with pytest.raises(ValidationError, match="view must be an integer in \\[0, 1\\]"):
        fitted.transform(tr[0], view=2)
    with pytest.raises(ValidationError, match="16"):
        fitted.transform(tr[0], view=1)  # view 1 has 16 features, not 24
    assert hashlearn.make_hasher("prompthash", n_bits=8).requires_labels
