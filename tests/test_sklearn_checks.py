"""Every registered vector hasher passes scikit-learn's estimator checks at its defaults.

Supervised hashers (``ksh``, ``sdh``, ``cosdish``, ``lfh``) say so with the tag
``target_tags.required``, and scikit-learn's checks then pass them labels ``y``; here they get class
labels wherever the others are fitted on ``X`` alone.

Also: each hasher works after a ``StandardScaler`` in a ``Pipeline``; errors from scikit-learn's input
validation and from ``check_scalar`` come out as hashlearn errors with scikit-learn's wording; a
hasher fitted on a DataFrame keeps its feature names through save/load.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

import hashlearn
from hashlearn.errors import HashlearnError, NotFittedError, ValidationError
from hashlearn.hashing import get_hasher_class, is_supervised, list_methods, make_hasher
from hashlearn.hashing._validation import InputTypeError, check_int_param, check_real_param

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:  # the deep hashers need the [deep] extra
    HAVE_TORCH = False
from hashlearn.hashing.deep import DeepHasher

ALL_VECTOR_METHODS = list_methods("vector")
DEEP = {name for name in ALL_VECTOR_METHODS if issubclass(get_hasher_class(name), DeepHasher)}
# without torch the deep hashers cannot fit: they are left out here (tests/test_hashing_deep.py skips with a reason)
VECTOR_METHODS = [name for name in ALL_VECTOR_METHODS if HAVE_TORCH or name not in DEEP]
SUPERVISED = {name for name in VECTOR_METHODS if is_supervised(get_hasher_class(name))}
# deep hashers at their defaults train 30 epochs: two tiny epochs are enough for the contract checks
_CHECK_PARAMS = {name: {"epochs": 2, "hidden": 16, "n_threads": 1} for name in DEEP}

# Checks a hasher cannot pass by its nature: {method name: {check name: one-line reason}}, at most one
# per method. None is needed today; an entry here is reported by pytest as an expected failure.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def _expected_failed_checks(estimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS.get(estimator.method_name, {})


@parametrize_with_checks([make_hasher(name, random_state=0, **_CHECK_PARAMS.get(name, {})) for name in VECTOR_METHODS],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # fitting sklearn's tiny data sets at the defaults (n_bits=64, n_anchors=300) shortens the code or
        # the anchor set with a warning; that is the behaviour under test elsewhere
        warnings.filterwarnings("ignore", message=".*; fitting with ", category=UserWarning)
        check(estimator)


def test_expected_failures_are_few_and_named():
    for name, checks in EXPECTED_FAILED_CHECKS.items():
        assert name in VECTOR_METHODS, name
        assert len(checks) <= 1, f"{name}: at most one expected failure per estimator, got {sorted(checks)}"
        assert all(reason.strip() for reason in checks.values()), name


@pytest.mark.parametrize("name", VECTOR_METHODS)
def test_tags_say_what_the_estimator_is(name):
    tags = get_tags(make_hasher(name, random_state=0))
    assert tags.transformer_tags is not None  # a transformer (scikit-learn leaves estimator_type None for those)
    assert tags.transformer_tags.preserves_dtype == []  # the output is packed uint64 codes
    assert not tags.input_tags.sparse and not tags.input_tags.allow_nan and tags.input_tags.two_d_array
    assert tags.requires_fit and tags.target_tags.required == (name in SUPERVISED)


def test_the_supervised_hashers_are_those_of_issue_15():
    assert DEEP == {"dpsh", "hashnet", "csq", "greedyhash", "dsh", "dtsh"}
    assert SUPERVISED == {"ksh", "sdh", "cosdish", "lfh"} | (DEEP if HAVE_TORCH else set())
    with pytest.raises(ValidationError, match="requires y to be passed, but the target y is None"):
        make_hasher("sdh", n_bits=8, n_anchors=10, random_state=0).fit(np.zeros((20, 3)))


@pytest.fixture(scope="module")
def pipeline_data():
    rng = np.random.default_rng(0)
    # 400 rows of 80 features on very different scales: every method runs at its defaults (64 bits, up to
    # 300 anchors or bases) without any parameter exceeding the data
    X = rng.normal(size=(400, 80)) * np.logspace(-2, 3, 80) + 50.0
    y = rng.integers(0, 4, size=320)  # labels for the supervised hashers
    return X[:320], X[320:], y


@pytest.mark.parametrize("name", VECTOR_METHODS)
def test_hasher_after_a_standard_scaler_in_a_pipeline(name, pipeline_data):
    X, Xq, labels = pipeline_data
    y = labels if name in SUPERVISED else None
    hasher = make_hasher(name, random_state=0, **_CHECK_PARAMS.get(name, {}))
    if "n_anchors" in hasher.get_params() and name in SUPERVISED:  # RBF anchors: at most the 320 training rows
        hasher.set_params(n_anchors=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # defaults fit this data as they are
        pipe = make_pipeline(StandardScaler(), hasher).fit(X, y)
    codes = pipe.transform(Xq)
    assert codes.dtype == np.uint64 and codes.flags.c_contiguous
    assert codes.shape == (len(Xq), -(-pipe[-1].code_bits // 64)) and pipe[-1].code_bits == 64
    assert pipe[-1].n_features_in_ == X.shape[1]
    # the pipeline is exactly the hasher fitted on the scaled data
    scaler = StandardScaler().fit(X)
    direct = clone(hasher).fit(scaler.transform(X), y)
    np.testing.assert_array_equal(codes, direct.transform(scaler.transform(Xq)))
    np.testing.assert_array_equal(pipe.fit_transform(X, y), direct.transform(scaler.transform(X)))


def test_input_errors_are_hashlearn_errors_with_sklearn_wording():
    import scipy.sparse as sp

    X = np.random.default_rng(1).normal(size=(30, 4))
    h = make_hasher("simhash", n_bits=8, random_state=0).fit(X)
    cases = [
        (X[0], ValidationError, "Expected 2D array, got 1D array instead"),
        (X[:, :3], ValidationError, "X has 3 features, but SimHash is expecting 4 features as input"),
        (X + 1j, ValidationError, "Complex data not supported"),
        (np.zeros((0, 4)), ValidationError, r"Found array with 0 sample\(s\)"),
        (sp.csr_matrix(X), InputTypeError, "Sparse data was passed for X, but dense data is required"),
        (np.array([["a", "b", "c", "d"]], dtype=object), ValidationError, "could not convert string to float"),
    ]
    for bad, cls, match in cases:
        with pytest.raises(cls, match=match) as exc:
            h.transform(bad)
        assert isinstance(exc.value, HashlearnError) and isinstance(exc.value, ValueError | TypeError)
    assert issubclass(InputTypeError, TypeError) and issubclass(InputTypeError, ValidationError)


def test_check_scalar_wrappers_name_parameter_value_and_range():
    assert check_int_param(3, "k", min_val=1) == 3 and check_int_param(None, "k", allow_none=True) is None
    for value in (0, 2.0, True, "3"):
        with pytest.raises(ValidationError, match=rf"^k must be an integer >= 1, got {value!r}$"):
            check_int_param(value, "k", min_val=1)
    with pytest.raises(ValidationError, match=r"^b_bits must be an integer from 1 to 32 or None, got 33$"):
        check_int_param(33, "b_bits", min_val=1, max_val=32, allow_none=True)
    assert check_real_param(0.5, "tol", min_val=0, include_boundaries="neither") == 0.5
    for value in (0.0, -1.0, float("nan"), float("inf"), "x", False):
        with pytest.raises(ValidationError, match=rf"^tol must be a finite number > 0, got {value!r}$"):
            check_real_param(value, "tol", min_val=0, include_boundaries="neither")
    with pytest.raises(ValidationError, match="n_anchors must be an integer >= 2, got 1"):
        make_hasher("agh", n_anchors=1).fit(np.zeros((5, 2)))


def test_dataframe_feature_names_are_kept_and_persisted(tmp_path):
    pd = pytest.importorskip("pandas", reason="DataFrame input")
    X = np.random.default_rng(2).normal(size=(50, 3))
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    h = make_hasher("itq", n_bits=3, random_state=0).fit(df)
    assert h.feature_names_in_.tolist() == ["a", "b", "c"]
    loaded = hashlearn.load(hashlearn.save(h, tmp_path / "itq.hl"))
    assert loaded.feature_names_in_.dtype == object and loaded.feature_names_in_.tolist() == ["a", "b", "c"]
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(loaded.transform(df), h.transform(X))
    with pytest.raises(ValidationError, match="feature names"):
        loaded.transform(df[["c", "b", "a"]])


@pytest.mark.parametrize("name", ["itq", "agh", "kmh"])
def test_files_saved_before_n_bits_existed_still_load(name, tmp_path):
    X = np.random.default_rng(3).normal(size=(120, 12))
    h = make_hasher(name, n_bits=8, random_state=0, **({"n_anchors": 30} if name == "agh" else {})).fit(X)
    codes = h.transform(X)
    del h.n_bits_  # the state such a file holds: parameters and the other fitted attributes
    loaded = hashlearn.load(hashlearn.save(h, tmp_path / "old.hl"))
    assert loaded.n_bits_ == loaded.code_bits == 8
    np.testing.assert_array_equal(loaded.transform(X), codes)


def test_a_failed_refit_never_looks_fitted():
    X = np.random.default_rng(4).normal(size=(40, 6))
    h = make_hasher("simhash", n_bits=8, random_state=0).fit(X)
    h.set_params(n_bits=0)
    with pytest.raises(ValidationError, match="n_bits must be an integer >= 1, got 0"):
        h.fit(X)
    assert not [k for k in vars(h) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        h.transform(X)
