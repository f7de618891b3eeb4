"""hashlearn.represent.gsimclr: the NT-Xent mask against a brute-force rule, a tiny fit, errors."""

import numpy as np
import pytest

pytest.importorskip("torch")

from hashlearn.errors import ValidationError  # noqa: E402
from hashlearn.represent.gsimclr import GSimCLR, nt_xent_mask  # noqa: E402


def test_mask_removes_exactly_same_cluster_negatives():
    y = np.array([0, 1, 0, 2, 1])
    b = y.size
    M = nt_xent_mask(y)
    for i in range(2 * b):
        for j in range(2 * b):
            img_i, img_j = i % b, j % b
            expected = i == j or (img_i != img_j and y[img_i] == y[img_j])
            assert M[i, j] == expected, (i, j)
    assert not M[np.arange(b), np.arange(b) + b].any()  # positives kept
    assert np.array_equal(nt_xent_mask(None, 3), np.eye(6, dtype=bool))
    assert np.array_equal(nt_xent_mask(np.arange(4)), np.eye(8, dtype=bool))  # all distinct: plain SimCLR


def test_gsimclr_tiny_fit():
    rng = np.random.default_rng(0)
    X = rng.random((48, 28, 28)).astype(np.float32)
    m = GSimCLR(True, n_pseudo=3, dim=8, proj=4, epochs=1, batch_size=16, dae_epochs=1, random_state=0).fit(X)
    assert m.pseudo_labels_.shape == (48,) and set(m.pseudo_labels_) <= {0, 1, 2}
    assert m.loss_.size == 3 and np.isfinite(m.loss_).all()
    assert m.transform(X[:5]).shape == (5, 8)
    plain = GSimCLR(False, dim=8, proj=4, epochs=1, batch_size=16, random_state=0).fit(X)
    assert plain.pseudo_labels_ is None


def test_gsimclr_bad_input():
    X = np.zeros((10, 28, 28), dtype=np.float32)
    with pytest.raises(ValidationError, match="less than one batch"):
        GSimCLR(batch_size=16).fit(X)
    with pytest.raises(ValidationError, match="n_pseudo=20 clusters is more than the 10 images"):
        GSimCLR(n_pseudo=20, batch_size=4).fit(X)
    with pytest.raises(ValidationError, match="28×28"):
        GSimCLR(batch_size=4).fit(np.zeros((10, 8, 8)))
