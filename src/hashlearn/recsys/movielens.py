"""MovieLens readers: the 100K layout (``u.data``, ``u.item``, ``u.user``) and the 1M layout
(``ratings.dat``, ``movies.dat``, ``users.dat``, ``::``-separated), chosen by the files present.

MovieLens is licensed by GroupLens for research use only, without redistribution: hashlearn never ships
it. Every function here takes the path of a folder the user downloaded (Harper & Konstan, "The
MovieLens Datasets: History and Context", ACM TiiS 2015).

Malformed lines are refused with :class:`~hashlearn.errors.DataFileError` naming the file and the line
number; repeated (user, item) ratings follow the ``duplicates`` policy of
:meth:`Interactions.from_arrays <hashlearn.recsys.interactions.Interactions.from_arrays>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFileError, ValidationError
from .interactions import Interactions, deduplicate

__all__ = ["MovieLens", "load_movielens", "movielens_fold", "detect_layout", "GENRES_100K"]

#: Genre names of the 100K layout, in the order of the 19 flags of ``u.item`` (as in ``u.genre``).
GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western")

_LAYOUTS = {
    "100k": {"ratings": "u.data", "items": "u.item", "users": "u.user"},
    "1m": {"ratings": "ratings.dat", "items": "movies.dat", "users": "users.dat"},
}
_FOLDS = ("1", "2", "3", "4", "5", "a", "b")


@dataclass(frozen=True, eq=False)
class MovieLens:
    """A MovieLens folder, read.

    Attributes
    ----------
    interactions : Interactions
        All ratings (explicit, 1–5); ``.implicit(4)`` gives the usual implicit feedback.
    items : pandas.DataFrame
        One row per catalogue item, in the order of ``interactions.item_ids``: ``item_id``, ``title``,
        ``genres`` (a tuple of genre names).
    users : pandas.DataFrame or None
        ``user_id``, ``age``, ``gender``, ``occupation``, ``zip`` (None when the users file is absent).
    layout : {"100k", "1m"}
    path : Path
    n_duplicates : int
        Repeated (user, item) ratings that were dropped.
    """

    interactions: Interactions
    items: pd.DataFrame
    users: pd.DataFrame | None
    layout: str
    path: Path
    n_duplicates: int

    def item_texts(self) -> list[str]:
        """``"<title>. Genres: <g1>, <g2>"`` per catalogue item (the text embedded for semantic IDs)."""
        return [f"{t}. Genres: {', '.join(g)}" if g else str(t)
                for t, g in zip(self.items["title"], self.items["genres"])]


def detect_layout(path) -> str:
    """``"100k"`` or ``"1m"`` from the ratings file present in the folder ``path``."""
    path = Path(path)
    if not path.is_dir():
        raise DataFileError(f"{path}: no such folder (expected a MovieLens folder)")
    found = [name for name, files in _LAYOUTS.items() if (path / files["ratings"]).is_file()]
    if not found:
        raise DataFileError(f"{path}: neither u.data (MovieLens 100K) nor ratings.dat (MovieLens 1M) is there")
    if len(found) > 1:
        raise DataFileError(f"{path}: both u.data and ratings.dat are there; point to one MovieLens layout")
    return found[0]


def _lines(path: Path, encoding: str):
    try:
        text = path.read_bytes().decode(encoding)
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not {encoding} text ({exc})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield lineno, line


def _bad(path: Path, lineno: int, line: str, why: str) -> DataFileError:
    shown = line if len(line) <= 80 else line[:77] + "..."
    return DataFileError(f"{path}:{lineno}: {why}: {shown!r}")


def _read_ratings(path: Path, sep: str | None):
    """Parallel arrays (user, item, rating, timestamp, line number) of a ratings file."""
    users, items, ratings, times, linenos = [], [], [], [], []
    for lineno, line in _lines(path, "latin-1"):
        fields = line.split(sep)
        if len(fields) != 4:
            raise _bad(path, lineno, line, f"expected 4 fields (user, item, rating, timestamp), got {len(fields)}")
        try:
            u, i, t = int(fields[0]), int(fields[1]), int(fields[3])
            r = float(fields[2])
        except ValueError:
            raise _bad(path, lineno, line, "user, item and timestamp must be integers and rating a number") from None
        if u < 0 or i < 0 or t < 0:
            raise _bad(path, lineno, line, "ids and timestamp must be non-negative")
        if not 0.5 <= r <= 5.0:
            raise _bad(path, lineno, line, f"rating {r:g} is outside [0.5, 5]")
        users.append(u)
        items.append(i)
        ratings.append(r)
        times.append(t)
        linenos.append(lineno)
    if not users:
        raise DataFileError(f"{path}: no ratings in the file")
    return (np.asarray(users, np.int64), np.asarray(items, np.int64), np.asarray(ratings, np.float32),
            np.asarray(times, np.int64), np.asarray(linenos, np.int64))


def _genre_names(folder: Path) -> tuple[str, ...]:
    path = folder / "u.genre"
    if not path.is_file():
        return GENRES_100K
    names = {}
    for lineno, line in _lines(path, "latin-1"):
        fields = line.split("|")
        if len(fields) != 2 or not fields[1].strip().isdigit():
            raise _bad(path, lineno, line, "expected 'genre|index'")
        names[int(fields[1])] = fields[0]
    if sorted(names) != list(range(len(names))):
        raise DataFileError(f"{path}: genre indices are not 0..{len(names) - 1}")
    return tuple(names[k] for k in range(len(names)))


def _read_items_100k(folder: Path):
    path = folder / "u.item"
    genres = _genre_names(folder)
    width = 5 + len(genres)
    rows = []
    for lineno, line in _lines(path, "latin-1"):
        fields = line.split("|")
        if len(fields) != width:
            raise _bad(path, lineno, line, f"expected {width} '|'-separated fields, got {len(fields)}")
        flags = fields[5:]
        if not fields[0].isdigit() or any(f not in ("0", "1") for f in flags):
            raise _bad(path, lineno, line, "item id must be an integer and genre flags 0 or 1")
        rows.append((int(fields[0]), fields[1], tuple(g for g, f in zip(genres, flags) if f == "1")))
    return rows


def _read_items_1m(folder: Path):
    path = folder / "movies.dat"
    rows = []
    for lineno, line in _lines(path, "latin-1"):
        fields = line.split("::")
        if len(fields) != 3 or not fields[0].isdigit():
            raise _bad(path, lineno, line, "expected 'MovieID::Title::Genres'")
        rows.append((int(fields[0]), fields[1], tuple(g for g in fields[2].split("|") if g)))
    return rows


def _read_users(folder: Path, layout: str) -> pd.DataFrame | None:
    path = folder / _LAYOUTS[layout]["users"]
    if not path.is_file():
        return None
    sep, order = ("|", (0, 1, 2, 3, 4)) if layout == "100k" else ("::", (0, 2, 1, 3, 4))
    rows = []
    for lineno, line in _lines(path, "latin-1"):
        fields = line.split(sep)
        if len(fields) != 5 or not fields[0].isdigit() or not fields[order[1]].isdigit():
            raise _bad(path, lineno, line, "expected 5 fields starting with an integer user id")
        f = [fields[k] for k in order]
        rows.append((int(f[0]), int(f[1]), f[2], f[3], f[4]))
    return pd.DataFrame(rows, columns=["user_id", "age", "gender", "occupation", "zip"])


def _items_frame(rows, path: Path) -> pd.DataFrame:
    ids = [r[0] for r in rows]
    if len(set(ids)) != len(ids):
        seen, dup = set(), None
        for k in ids:
            if k in seen:
                dup = k
                break
            seen.add(k)
        raise DataFileError(f"{path}: item id {dup} is listed more than once")
    frame = pd.DataFrame(rows, columns=["item_id", "title", "genres"])
    return frame.sort_values("item_id", kind="stable").reset_index(drop=True)


def _read_interactions(file: Path, sep, item_ids, user_ids, duplicates: str):
    u, i, r, t, lines = _read_ratings(file, sep)
    keep, n_dup = deduplicate(u, i, t, policy=duplicates, where=lambda p: f"{file.name}:{int(lines[p])}")
    for name, ids, cat in (("item", i, item_ids), ("user", u, user_ids)):
        if cat is not None:
            unknown = ~np.isin(ids, cat)
            if unknown.any():
                p = int(np.flatnonzero(unknown)[0])
                raise DataFileError(
                    f"{file}:{int(lines[p])}: {name} {int(ids[p])} is not in the {name}s file "
                    f"({int(unknown.sum())} rating(s) refer to unknown {name}s)"
                )
    inter = Interactions.from_arrays(u[keep], i[keep], r[keep], t[keep], user_ids=user_ids,
                                     item_ids=item_ids, duplicates="error")
    return inter, n_dup


def load_movielens(path, *, duplicates: str = "last") -> MovieLens:
    """Read a MovieLens folder (100K or 1M layout, chosen by the files present).

    Parameters
    ----------
    path : str or Path
        The folder holding ``u.data`` (100K) or ``ratings.dat`` (1M) and, optionally, the items and
        users files. Without an items file the catalogue is the rated items and titles are empty.
    duplicates : {"last", "first", "error"}, default "last"
        Policy for repeated (user, item) ratings.

    Returns
    -------
    MovieLens

    Raises
    ------
    DataFileError
        Missing folder or ratings file, malformed line (file and line number in the message), a
        rating of an item or user absent from the items/users file.
    ValidationError
        ``duplicates="error"`` and a pair is repeated (both line numbers in the message).
    """
    folder = Path(path)
    layout = detect_layout(folder)
    files = _LAYOUTS[layout]
    items_path = folder / files["items"]
    if items_path.is_file():
        rows = _read_items_100k(folder) if layout == "100k" else _read_items_1m(folder)
        items = _items_frame(rows, items_path)
    else:
        items = None
    users = _read_users(folder, layout)
    item_ids = None if items is None else items["item_id"].to_numpy(np.int64)
    user_ids = None if users is None else np.unique(users["user_id"].to_numpy(np.int64))
    sep = None if layout == "100k" else "::"
    inter, n_dup = _read_interactions(folder / files["ratings"], sep, item_ids, user_ids, duplicates)
    if items is None:
        items = pd.DataFrame({"item_id": inter.item_ids, "title": [""] * inter.n_items,
                              "genres": [()] * inter.n_items})
    if users is not None:
        users = users.sort_values("user_id", kind="stable").reset_index(drop=True)
    return MovieLens(inter, items, users, layout, folder, n_dup)


def movielens_fold(path, fold, *, duplicates: str = "last", dataset: MovieLens | None = None):
    """One official MovieLens 100K split: ``u{fold}.base`` / ``u{fold}.test`` (fold 1–5, or "a", "b").

    Returns ``(train, test)`` :class:`Interactions` sharing the catalogues of the full folder (read
    again unless ``dataset`` — the folder's :func:`load_movielens` result — is given).
    """
    folder = Path(path)
    fold = str(fold)
    if fold not in _FOLDS:
        raise ValidationError(f"fold must be one of 1, 2, 3, 4, 5, a, b; got {fold!r}")
    if detect_layout(folder) != "100k":
        raise DataFileError(f"{folder}: official u1..u5 folds exist only in the MovieLens 100K layout")
    base, test = folder / f"u{fold}.base", folder / f"u{fold}.test"
    for f in (base, test):
        if not f.is_file():
            raise DataFileError(f"{f}: no such file (official fold {fold})")
    ds = dataset if dataset is not None else load_movielens(folder, duplicates=duplicates)
    cats = (ds.interactions.item_ids, ds.interactions.user_ids)
    train, _ = _read_interactions(base, None, *cats, duplicates)
    test_part, _ = _read_interactions(test, None, *cats, duplicates)
    return train, test_part
