"""Run the examples in the package's docstrings, so documentation cannot drift from behaviour."""

import doctest
import importlib
import pkgutil

import pytest

import hashlearn

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(hashlearn.__path__, prefix="hashlearn.")
    if not m.name.endswith("__main__")
)


# Modules of the service's web layer need the [service] extra; without it their doctests are skipped
# (the storage engine's doctests need nothing and always run).
_SERVICE_EXTRA = {"fastapi", "starlette", "pydantic", "uvicorn", "httpx"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if name.startswith("hashlearn.service.") and missing in _SERVICE_EXTRA:
            pytest.skip(f"{name} needs {missing} (pip install 'hashlearn[service]')")
        raise
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_examples_exist():
    # The public entry points carry runnable examples; make sure they are collected at all.
    finder = doctest.DocTestFinder()
    from hashlearn.index import flat, hashindex

    assert any(t.examples for t in finder.find(flat))
    assert any(t.examples for t in finder.find(hashindex))
