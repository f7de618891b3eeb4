"""hashlearn.robust VFL: the straight-through sign, party checks, a real 3-process run (gloo), the attacks."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashlearn.errors import ValidationError
from hashlearn.robust import check_parties, label_inference_attack, reconstruction_attack, sign_ste, train_vfl


def test_sign_ste_forward_is_pm1_and_gradient_is_clipped_identity():
    z = torch.tensor([-2.0, -0.5, 0.0, 0.3, 0.99, 1.5], requires_grad=True)
    out = sign_ste(z)
    assert out.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    out.backward(g)
    # identity inside |z| <= 1, zero outside
    assert z.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0]


def test_parties_with_mismatched_rows_are_refused():
    a, b = np.zeros((10, 3)), np.zeros((9, 2))
    with pytest.raises(ValidationError, match=r"parties\[1\] has 9 rows but parties\[0\] has 10"):
        check_parties([a, b])
    with pytest.raises(ValidationError, match="the labels have 8 rows but the parties hold 10"):
        check_parties([a, a], np.zeros(8))
    with pytest.raises(ValidationError, match="rows"):
        train_vfl([a, b], np.zeros(10), [a, a], np.zeros(10), hashed=True)
    with pytest.raises(ValidationError, match="non-empty list"):
        check_parties([])


def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    A = (rng.normal(size=(n, 6)) + 2.0 * y[:, None]).astype(np.float32)
    B = (rng.normal(size=(n, 5)) - 2.0 * y[:, None]).astype(np.float32)
    return A, B, y


@pytest.mark.slow
def test_vfl_real_processes_hashed_sends_bits():
    A, B, y = _blobs(360, 0)
    res = train_vfl([A[:240], B[:240]], y[:240], [A[240:], B[240:]], y[240:], hashed=True, n_bits=12, epochs=4,
                    batch_size=32, random_state=0)
    assert res["acc"] > 0.6  # three well separated classes
    m = res["messages"][0]
    assert m.shape == (120, 12) and set(np.unique(m)) <= {-1.0, 1.0}
    # 240 rows × 4 epochs, 2 bytes of packed bits per row for 12 bits
    assert res["bytes_forward"] == [240 * 4 * 2, 240 * 4 * 2]
    assert res["bits_per_row"] == 12


def test_reconstruction_and_label_inference_attacks():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(300, 10)).astype(np.float32)
    W = rng.normal(size=(10, 10)).astype(np.float32)
    M = X @ W  # an invertible message: the decoder should reconstruct well
    aux, test = np.arange(200), np.arange(200, 300)
    _, mse_inv = reconstruction_attack(M, X, aux, test, epochs=100, random_state=0)
    _, mse_noise = reconstruction_attack(rng.normal(size=M.shape).astype(np.float32), X, aux, test, epochs=100,
                                         random_state=0)
    assert mse_inv < 0.5 * mse_noise
    y = (X[:, 0] > 0.5).astype(int)
    noise = rng.normal(size=M.shape).astype(np.float32)
    assert label_inference_attack(M, y, aux, test) > 0.8 > label_inference_attack(noise, y, aux, test)
    with pytest.raises(ValidationError, match="rows"):
        reconstruction_attack(M[:10], X, aux, test)
