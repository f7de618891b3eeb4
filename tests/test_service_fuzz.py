"""Schemathesis against the service's own OpenAPI schema: whatever it sends, never a 5xx.

Runs in-process (ASGI) with a bounded number of examples per operation; half of the cases target an
existing, trained collection so that the fuzzer reaches the search / upsert code, not only 404s.
A longer run against a real server is recorded in bench/sections/service.md.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from hashlearn.service import CollectionConfig  # noqa: E402
from hashlearn.service.app import create_app  # noqa: E402

KEY = "fuzz-write-key-0123"
HEADERS = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("fuzz"), api_keys={KEY: "write", "fuzz-read-key-0123": "read"},
                     max_body_bytes=1 << 20, max_batch=200, max_queries=20, fsync=False)
    return app


def _ensure_target(app):
    storage = app.state.storage
    if "fuzz" not in storage.names():
        coll = storage.create(CollectionConfig(name="fuzz", dim=3, n_bits=16))
        X = np.random.default_rng(0).normal(size=(50, 3))
        coll.train(X)
        coll.upsert(list(range(50)), X, [{"g": i % 2} for i in range(50)])


def _operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


# Schemathesis' pytest plugin (``from_fixture``/``parametrize``) breaks with newer pytest releases, so
# the operations are driven through hypothesis directly: one property per operation, same bounds.
def test_no_server_errors(service):
    operations = _operations(service)
    assert len(operations) >= 8, [op.label for op in operations]
    for operation in operations:

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def no_5xx(case):
            _ensure_target(service)
            if "name" in (case.path_parameters or {}) and zlib.crc32(repr(case.body).encode()) % 2 == 0:
                case.path_parameters["name"] = "fuzz"
            response = case.call(headers=HEADERS)
            assert response.status_code < 500, (case.method, case.path, case.path_parameters,
                                                str(case.body)[:300], response.text[:300])

        no_5xx()
