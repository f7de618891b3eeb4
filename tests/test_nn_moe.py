"""LSH-MoE: LSH clustering/restoring, compressed dispatch, and the all-to-all between 2 real processes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="hashlearn.nn needs torch (pip install 'hashlearn[deep]')")

from hashlearn.errors import ValidationError  # noqa: E402
from hashlearn.nn.lsh import random_rotation  # noqa: E402
from hashlearn.nn.moe import LSHMoE, lsh_compress, lsh_restore, spawn_forward  # noqa: E402


def _clustered(n=300, d=16, k=10, seed=0, noise=0.01):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g)
    return centres[torch.randint(k, (n,), generator=g)] + noise * torch.randn(n, d, generator=g)


def test_compress_groups_near_duplicates_and_centroids_are_means():
    x = _clustered()
    rot = torch.stack([random_rotation(16, seed=s) for s in range(2)])
    cent, assign = lsh_compress(x, rot)
    assert cent.shape[0] <= 20  # ~10 true clusters (a few may split at bucket borders)
    for c in range(cent.shape[0]):
        torch.testing.assert_close(cent[c], x[assign == c].mean(0))
    # restoring the identity "expert" with residual compensation gives the tokens back exactly
    torch.testing.assert_close(lsh_restore(cent, assign, x, cent), x)


def test_more_hashes_more_clusters():
    x = torch.randn(400, 16, generator=torch.Generator().manual_seed(1))
    counts = [lsh_compress(x, torch.stack([random_rotation(16, seed=s) for s in range(L)]))[0].shape[0]
              for L in (1, 2, 4)]
    assert counts[0] <= counts[1] <= counts[2] <= 400


def test_compressed_layer_close_to_uncompressed_on_clustered_tokens_with_fewer_bytes():
    x = _clustered(n=400)
    full = LSHMoE(16, n_experts=2, d_hidden=32, compress=False, seed=3)
    comp = LSHMoE(16, n_experts=2, d_hidden=32, compress=True, n_hashes=2, seed=3)
    yf, yc = full(x), comp(x)
    assert float((yf - yc).detach().norm() / yf.detach().norm()) < 0.05
    assert comp.last_stats["bytes"] * 5 < full.last_stats["bytes"] == 2 * 400 * 16 * 4
    yc.sum().backward()  # trainable through the compressed path
    assert all(p.grad is not None for p in comp.experts.parameters())


def test_bad_input():
    with pytest.raises(ValidationError, match=r"tokens of shape \(n, 16\), got \(4, 8\)"):
        LSHMoE(16)(torch.zeros(4, 8))
    with pytest.raises(ValidationError, match="n_experts"):
        LSHMoE(16, n_experts=0)


@pytest.mark.slow
@pytest.mark.parametrize("compress", [False, True])
def test_two_real_processes_match_single_process(tmp_path, compress):
    kw = dict(d_model=16, n_experts=2, d_hidden=32, n_hashes=2, compress=compress, seed=5)
    results = spawn_forward(kw, n_tokens=200, seed=7, workdir=tmp_path)
    ref = LSHMoE(**kw)
    cross = 0
    for rank, r in enumerate(results):
        with torch.no_grad():
            torch.testing.assert_close(r["out"], ref(r["x"]))
        cross += int((ref.route(r["x"])[0] != rank).sum())  # tokens whose expert lives on the other rank
    total = sum(r["bytes"] for r in results)
    # two all-to-alls, each: one int64 row count per rank, then the rows (16 float32 each)
    if compress:
        assert 32 < total < 32 + 2 * cross * 16 * 4
    else:
        assert total == 32 + 2 * cross * 16 * 4
