"""deep-xm leaves torch's global state as it found it: random generator and thread count."""

from __future__ import annotations

import numpy as np
import pytest

import hashlearn
from hashlearn.crossmodal.data import make_planted_views

torch = pytest.importorskip("torch", reason="deep-xm trains with torch (pip install 'hashlearn[deep]')")

KW = dict(n_bits=8, hidden=16, epochs=3, batch_size=50)


@pytest.fixture(scope="module")
def views():
    return make_planted_views(120, n_clusters=3, latent_dim=4, dims=(12, 8), noise=0.2, random_state=0)[0]


def _fit(views, **kw):
    return hashlearn.make_hasher("deep-xm", **{**KW, **kw}).fit(views)


def test_fit_leaves_the_global_rng_and_thread_count_unchanged(views):
    torch.manual_seed(1234)
    state = torch.random.get_rng_state().clone()
    threads = torch.get_num_threads()
    _fit(views, random_state=0, n_threads=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    # the caller's stream goes on exactly as if fit had not run
    expected = torch.Generator().manual_seed(1234)
    np.testing.assert_array_equal(torch.rand(5).numpy(), torch.rand(5, generator=expected).numpy())


def test_failed_fit_restores_the_thread_count(views, monkeypatch):
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state().clone()

    def boom(*args, **kwargs):
        raise RuntimeError("optimiser failed")

    monkeypatch.setattr(torch.optim, "Adam", boom)
    with pytest.raises(RuntimeError, match="optimiser failed"):
        _fit(views, random_state=0, n_threads=1)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), state)


def test_results_depend_on_random_state_only(views):
    torch.manual_seed(1)
    a = _fit(views, random_state=5)
    torch.manual_seed(2)  # a different global seed must not change the model
    b = _fit(views, random_state=5)
    for la, lb in zip(a.layers_, b.layers_):
        for wa, wb in zip(la, lb):
            np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.loss_, b.loss_)
    np.testing.assert_array_equal(a.transform(views[0], view=0), b.transform(views[0], view=0))
    c = _fit(views, random_state=6)
    assert not np.array_equal(a.layers_[0][0], c.layers_[0][0])
