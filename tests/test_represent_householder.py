"""hashlearn.represent.householder: the projector is the hashers' Householder layer, orthogonal, equal to the
explicit product of reflections; attributes on hand-made images; tiny VAE and directions."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashlearn.hashing.deep._nets import HouseholderRotation  # noqa: E402
from hashlearn.represent._nets import HouseholderProjector  # noqa: E402
from hashlearn.represent.householder import (VAE, LatentDirections, attribute_change, image_attributes,  # noqa: E402
                                             random_orthogonal)


def test_projector_is_orthogonal_and_the_explicit_product():
    gen = torch.Generator().manual_seed(0)
    P = HouseholderProjector(6, 4, n_reflections=5)
    P.reset(gen)
    assert isinstance(P, HouseholderRotation)  # the deep hashers' rotation="householder" layer
    Q = P.matrix().double().detach().numpy()
    explicit = np.eye(6)
    for v in P.vectors.detach().double().numpy():
        explicit = explicit @ (np.eye(6) - 2 * np.outer(v, v) / (v @ v))
    assert np.allclose(Q, explicit, atol=1e-6)
    assert np.allclose(Q.T @ Q, np.eye(6), atol=1e-6)
    D = P.directions().detach().double().numpy()
    assert D.shape == (4, 6) and np.allclose(D @ D.T, np.eye(4), atol=1e-6)
    z = torch.randn(3, 6, generator=gen)
    assert np.allclose(P(z).detach().numpy(), z.numpy() @ Q[:, :4], atol=1e-5)


def test_image_attributes_on_hand_made_strokes():
    img = np.zeros((2, 28, 28))
    img[0, 4:24, 13:15] = 1.0  # vertical bar, 2 px wide
    for r in range(4, 24):  # right-leaning bar: top further right
        img[1, r, 20 - (r - 4) // 2: 22 - (r - 4) // 2] = 1.0
    a = image_attributes(img)
    assert a[0, 0] == pytest.approx(40 / 784)
    assert abs(a[0, 1]) < 1e-9 and a[1, 1] > 0.3
    assert a[0, 3] > a[0, 2]  # taller than wide
    thick = img[:1].copy()
    thick[0, 4:24, 12:16] = 1.0
    assert image_attributes(thick)[0, 0] == pytest.approx(2 * a[0, 0])


def test_random_orthogonal_and_attribute_change_identity():
    R = random_orthogonal(5, 3, 0)
    assert np.allclose(R @ R.T, np.eye(3))

    def decode(Z):  # latent coordinate 0 = ink of a centred block; others do nothing
        out = np.zeros((len(Z), 28, 28))
        out[:, 10:18, 10:18] = np.clip(0.5 + 0.1 * Z[:, :1], 0, 1)[:, :, None]
        return out

    Z = np.random.default_rng(0).standard_normal((20, 5))
    A = attribute_change(decode, np.eye(5)[:2], Z, shift=1.0)
    assert A[0, 0] > 0.5 and A[1, 0] == 0 and np.isnan(A[:, 4]).all()


def test_vae_and_directions_tiny():
    X = np.random.default_rng(0).random((64, 28, 28)).astype(np.float32)
    vae = VAE(4, hidden=16, epochs=1, batch_size=32, random_state=0).fit(X)
    assert vae.transform(X[:3]).shape == (3, 4) and vae.decode(np.zeros((2, 4))).shape == (2, 28, 28)
    ld = LatentDirections(3, steps=3, batch_size=8, hidden=16, random_state=0).fit(vae)
    assert ld.directions_.shape == (3, 4) and np.allclose(ld.directions_ @ ld.directions_.T, np.eye(3), atol=1e-5)


def test_projector_set_directions_and_pca_init():
    A = np.linalg.qr(np.random.default_rng(1).standard_normal((6, 3)))[0].T
    P = HouseholderProjector(6, 3)
    P.set_directions(A)
    D = P.directions().double().detach().numpy()
    assert np.allclose(np.abs((D * A).sum(1)), 1, atol=1e-5)  # the same directions up to sign
    X = np.random.default_rng(0).random((64, 28, 28)).astype(np.float32)
    vae = VAE(4, hidden=16, epochs=1, batch_size=32, random_state=0).fit(X)
    Z = vae.transform(X)
    ld = LatentDirections(2, init="pca", steps=1, batch_size=4, hidden=8, lr=1e-9, random_state=0).fit(vae, Z)
    from sklearn.decomposition import PCA

    assert np.allclose(np.abs((ld.directions_ * PCA(2).fit(Z).components_).sum(1)), 1, atol=1e-3)
