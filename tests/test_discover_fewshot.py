"""Few-shot episode classifiers: brute-force prototypes, invariants of soft k-means and OpTA, bad input."""

import numpy as np
import pytest

from hashlearn.discover import FEWSHOT_METHODS, fewshot_predict, opta_plan, sample_episode
from hashlearn.errors import HashlearnError, UnknownMethodError


def _episode(seed=0, way=5, shot=3, n_query=10, d=8, spread=4.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (way, d))
    support = centres[:, None] + rng.normal(size=(way, shot, d))
    yq = np.repeat(np.arange(way), n_query)
    query = centres[yq] + rng.normal(size=(yq.size, d))
    return support, query, yq


@pytest.mark.parametrize("seed", range(3))
def test_prototypes_match_brute_force(seed):
    support, query, _ = _episode(seed, spread=1.0)
    pred = fewshot_predict(support, query, method="prototypes")
    protos = support.mean(1)
    ref = [int(np.argmin([np.sum((q - p) ** 2) for p in protos])) for q in query]
    assert pred.tolist() == ref


def test_softkmeans_without_steps_is_prototypes():
    support, query, _ = _episode(1, spread=1.0)
    assert np.array_equal(fewshot_predict(support, query, method="softkmeans", n_iter=0),
                          fewshot_predict(support, query, method="prototypes"))


def test_opta_plan_marginals():
    rng = np.random.default_rng(0)
    Q, C = rng.normal(size=(37, 4)), rng.normal(size=(5, 4))
    G = opta_plan(Q, C, reg=0.1)
    assert G.shape == (37, 5) and (G >= 0).all()
    assert np.allclose(G.sum(1), 1 / 37, atol=1e-6) and np.allclose(G.sum(0), 1 / 5, atol=1e-6)


@pytest.mark.parametrize("method", sorted(FEWSHOT_METHODS))
def test_every_method_solves_separated_episodes(method):
    support, query, yq = _episode(2, spread=6.0)
    assert np.mean(fewshot_predict(support, query, method=method) == yq) == 1.0


def test_transductive_methods_beat_prototypes_when_support_is_biased():
    # 1-shot support drawn far from the class centres: the queries' structure corrects the prototypes
    wins = {m: 0.0 for m in FEWSHOT_METHODS}
    for seed in range(20):
        support, query, yq = _episode(seed, way=5, shot=1, n_query=20, d=16, spread=0.7)
        for m in wins:
            wins[m] += np.mean(fewshot_predict(support, query, method=m) == yq) / 20
    for m in ("softkmeans", "transductive", "opta"):
        assert wins[m] > wins["prototypes"] + 0.1, wins  # measured: +0.18 to +0.25


def test_labels_as_2d_support():
    support, query, yq = _episode(3, spread=6.0)
    S = support.reshape(-1, support.shape[-1])
    labels = np.repeat(np.array([10, 20, 30, 40, 50]), support.shape[1])
    assert np.array_equal(fewshot_predict(S, query, support_labels=labels, method="opta"), 10 * (yq + 1))


def test_sample_episode_and_bad_input():
    labels = np.repeat(np.arange(6), 4)
    rng = np.random.default_rng(0)
    s, q = sample_episode(labels, 3, 1, 3, rng)
    assert s.shape == (3, 1) and q.shape == (3, 3)
    assert all(len(set(labels[np.concatenate([a, b])])) == 1 for a, b in zip(s, q))
    assert not set(s.ravel()) & set(q.ravel())
    with pytest.raises(HashlearnError, match=r"2 shots \+ 3 queries = 5 rows per class, but the largest class has 4"):
        sample_episode(labels, 3, 2, 3, rng)
    with pytest.raises(HashlearnError, match="7-way episodes need 7 classes, the data has 6"):
        sample_episode(labels, 7, 1, 1, rng)
    support, query, _ = _episode(4)
    with pytest.raises(UnknownMethodError, match="available: prototypes"):
        fewshot_predict(support, query, method="nope")
    bad = query.copy()
    bad[2, 3] = np.nan
    with pytest.raises(HashlearnError, match="NaN"):
        fewshot_predict(support, bad)
    with pytest.raises(HashlearnError, match="query has 3 features but the model was fitted on 8"):
        fewshot_predict(support, query[:, :3])


def test_protonet_encoder_trains_and_restores_state():
    torch = pytest.importorskip("torch", reason="ProtoNetEncoder trains with torch (pip install 'hashlearn[deep]')")
    from hashlearn.discover.encoders import ProtoNetEncoder

    rng = np.random.default_rng(0)
    templates = rng.random((8, 8, 8)) > 0.6
    labels = np.repeat(np.arange(8), 6)
    images = (templates[labels] ^ (rng.random((48, 8, 8)) > 0.95)).astype(np.float32)
    threads, state = torch.get_num_threads(), torch.get_rng_state()
    enc = ProtoNetEncoder(8, n_blocks=2, episodes=30, train_way=4, n_query=2, random_state=0).fit(images, labels)
    assert torch.get_num_threads() == threads and torch.equal(state, torch.get_rng_state())
    F = enc.transform(images)
    assert F.shape == (48, 8 * 2 * 2) and enc.loss_[-10:].mean() < enc.loss_[:10].mean()
    with pytest.raises(HashlearnError, match=r"4 shots \+ 5 queries = 9 rows per class, but the largest class has 6"):
        ProtoNetEncoder(8, train_way=4, train_shot=4).fit(images, labels)
