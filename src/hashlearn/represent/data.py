"""Readers of the benchmark data of :mod:`hashlearn.represent`: 20 Newsgroups posts from the bydate tarball
(or a folder with the same layout) and plain-text corpora, with the handling of bad input documented.

Bad input: a post whose bytes are not valid UTF-8 is decoded with ``errors="replace"`` (each bad byte
becomes U+FFFD) and counted in ``stats["decoded_with_replacement"]``; a post that is empty once its header
block is removed is skipped and counted in ``stats["empty_skipped"]``. Nothing is dropped silently.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataFileError, ValidationError

__all__ = ["Corpus", "decode_documents", "load_20newsgroups", "strip_header", "embed_text"]

_SPLITS = {"train": "20news-bydate-train", "test": "20news-bydate-test"}


@dataclass
class Corpus:
    """Documents with their group labels. ``texts`` list of str (body without header), ``subjects`` list of
    str, ``labels`` int64 (n,), ``groups`` tuple of group names (label i ↔ ``groups[i]``), ``stats`` dict of
    counts (``read``, ``decoded_with_replacement``, ``empty_skipped``)."""

    texts: list
    subjects: list
    labels: np.ndarray
    groups: tuple
    stats: dict = field(default_factory=dict)


def strip_header(text: str) -> tuple[str, str]:
    """``(subject, body)`` of a news post: the header block ends at the first blank line.

    A text without a blank line whose first line does not look like a header (``Name: value``) is all body.
    """
    head, sep, body = text.partition("\n\n")
    first = head.split("\n", 1)[0]
    if not sep and ":" not in first[:40]:
        return "", text.strip()
    if not sep:
        head, body = text, ""
    subject = next((line[8:].strip() for line in head.split("\n") if line.lower().startswith("subject:")), "")
    return subject, body.strip()


def decode_documents(raw: list[bytes], *, has_header: bool = True) -> tuple[list[str], list[str], np.ndarray, dict]:
    """Decode posts (bytes) → ``(subjects, bodies, kept indices int64, stats)``.

    Non-UTF-8 bytes are replaced by U+FFFD (``stats["decoded_with_replacement"]`` counts such posts);
    posts with an empty body and subject are skipped (``stats["empty_skipped"]``).
    """
    subjects, bodies, kept = [], [], []
    stats = {"read": len(raw), "decoded_with_replacement": 0, "empty_skipped": 0}
    for i, data in enumerate(raw):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            stats["decoded_with_replacement"] += 1
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        subject, body = strip_header(text) if has_header else ("", text.strip())
        if not body and not subject:
            stats["empty_skipped"] += 1
            continue
        subjects.append(subject)
        bodies.append(body)
        kept.append(i)
    return subjects, bodies, np.asarray(kept, dtype=np.int64), stats


def _read_members(path: Path, split_dir: str) -> list[tuple[str, bytes]]:
    out = []
    if path.is_dir() and not (path / "20news-bydate.tar.gz").is_file():
        roots = [p for p in (path / split_dir, path / "20news-bydate" / split_dir) if p.is_dir()]
        if not roots:
            raise DataFileError(f"{path}: no {split_dir} folder (20 Newsgroups bydate layout)")
        for f in sorted(roots[0].glob("*/*")):
            if f.is_file():
                out.append((f.parent.name, f.read_bytes()))
        return out
    tar_path = path if path.is_file() else path / "20news-bydate.tar.gz"
    if not tar_path.is_file():
        raise DataFileError(f"{tar_path}: no such file (the 20 Newsgroups bydate tarball)")
    try:
        with tarfile.open(tar_path) as tar:
            for m in tar.getmembers():
                parts = m.name.split("/")
                if m.isfile() and split_dir in parts and len(parts) >= 3 and parts[-3] == split_dir:
                    out.append((parts[-2], tar.extractfile(m).read()))
    except tarfile.TarError as exc:
        raise DataFileError(f"{tar_path}: not a readable tar archive ({exc})") from exc
    if not out:
        raise DataFileError(f"{tar_path}: no posts under {split_dir}/")
    out.sort(key=lambda t: t[0])  # stable: group order, then archive order
    return out


def load_20newsgroups(path, split: str = "train") -> Corpus:
    """20 Newsgroups (bydate) from the tarball, its folder, or an unpacked folder; ``split`` train or test.

    Headers are removed (the ``Subject:`` line is kept separately); quotes and signatures are kept.
    """
    if split not in _SPLITS:
        raise ValidationError(f"split must be 'train' or 'test', got {split!r}")
    members = _read_members(Path(path), _SPLITS[split])
    groups = tuple(sorted({g for g, _ in members}))
    index = {g: i for i, g in enumerate(groups)}
    subjects, bodies, kept, stats = decode_documents([b for _, b in members])
    labels = np.asarray([index[members[i][0]] for i in kept], dtype=np.int64)
    return Corpus(bodies, subjects, labels, groups, stats)


def embed_text(corpus: Corpus, max_chars: int = 300) -> list[str]:
    """The text embedded per post: ``subject + ". " + body``, cut to ``max_chars`` characters (MiniLM on one
    CPU thread costs about linear time in the length; the subject and first lines carry the topic)."""
    return [(s + ". " + b)[:max_chars] for s, b in zip(corpus.subjects, corpus.texts)]
