"""``hashlearn serve`` argument and key-file errors: one line on stderr, exit code 2 (in-process)."""

from __future__ import annotations

import pytest

from hashlearn.cli import main

pytest.importorskip("fastapi")


def _run(capsys, args, monkeypatch=None):
    code = main(args)
    return code, capsys.readouterr().err


def test_serve_refuses_without_keys(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HASHLEARN_API_KEYS", raising=False)
    code, err = _run(capsys, ["serve", "--data-dir", str(tmp_path / "d")])
    assert code == 2 and "no API keys" in err


@pytest.mark.parametrize("content, needle", [
    ("onlyonefield\n", "expected 'KEY ROLE'"),
    ("abcdefghij admin\n", "role must be 'read' or 'write'"),
    ("short write\n", "at least 8 characters"),
])
def test_serve_rejects_bad_key_file(tmp_path, capsys, monkeypatch, content, needle):
    monkeypatch.delenv("HASHLEARN_API_KEYS", raising=False)
    keys = tmp_path / "keys.txt"
    keys.write_text(content)
    code, err = _run(capsys, ["serve", "--data-dir", str(tmp_path / "d"), "--api-keys", str(keys)])
    assert code == 2 and needle in err and "Traceback" not in err


def test_serve_other_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HASHLEARN_API_KEYS", "abcdefghij:write")
    code, err = _run(capsys, ["serve", "--data-dir", str(tmp_path / "d"), "--no-auth"])
    assert code == 2 and "choose one" in err
    monkeypatch.delenv("HASHLEARN_API_KEYS")
    code, err = _run(capsys, ["serve", "--data-dir", str(tmp_path / "d"), "--no-auth", "--host", "0.0.0.0"])
    assert code == 2 and "only allowed on a loopback address" in err
    monkeypatch.setenv("HASHLEARN_API_KEYS", "abcdefghij:write")
    f = tmp_path / "file"
    f.write_text("x")
    code, err = _run(capsys, ["serve", "--data-dir", str(f)])
    assert code == 2 and "is not a directory" in err
    code, err = _run(capsys, ["serve", "--data-dir", str(tmp_path / "d"), "--api-keys", str(tmp_path / "nope.txt")])
    assert code == 2 and "cannot read API key file" in err
    monkeypatch.setenv("HASHLEARN_API_KEYS", "abcdefghij=write")
    code, err = _run(capsys, ["serve", "--data-dir", str(tmp_path / "d")])
    assert code == 2 and "KEY:ROLE" in err


def test_key_file_and_env_are_merged(tmp_path):
    from hashlearn.service.app import load_api_keys

    keys = tmp_path / "keys.txt"
    keys.write_text("# comment\n\nreader-key-1 read   # trailing comment\n")
    assert load_api_keys(keys, "writer-key-1:write, other-key-12:read") == {
        "reader-key-1": "read", "writer-key-1": "write", "other-key-12": "read"}
