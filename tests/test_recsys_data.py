"""hashlearn.recsys data: MovieLens readers (both layouts, on small synthetic files), splits, folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hashlearn.errors import DataFileError, HashlearnError, ValidationError
from hashlearn.recsys import Interactions, leave_last_out, load_movielens, movielens_fold
from hashlearn.recsys.movielens import GENRES_100K, detect_layout

ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "movielens" / "ml-100k"
if not ML100K.is_dir():
    ML100K = Path("/work/shared/data/movielens/ml-100k")

# (user, item, rating, timestamp)
EVENTS = [(1, 10, 5, 100), (1, 20, 3, 105), (1, 30, 4, 103), (2, 10, 2, 50), (2, 30, 5, 60),
          (3, 20, 4, 70), (3, 10, 1, 71), (3, 30, 4, 72), (3, 40, 5, 72)]
TITLES = {10: "Alpha (1995)", 20: "Beta (1996)", 30: "Gamma (1997)", 40: "Delta (1998)", 50: "Unrated (1999)"}


def write_100k(folder: Path, events=EVENTS, extra_lines=()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in events] + list(extra_lines)
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    rows = []
    for k, (item, title) in enumerate(sorted(TITLES.items())):
        flags = ["0"] * 19
        flags[1 + k % 18] = "1"
        rows.append("|".join([str(item), title, "01-Jan-1995", "", "http://x"] + flags))
    (folder / "u.item").write_text("\n".join(rows) + "\n", encoding="latin-1")
    (folder / "u.user").write_text("\n".join(f"{u}|{20 + u}|M|other|0000{u}" for u in (1, 2, 3, 4)) + "\n")
    return folder


def write_1m(folder: Path, events=EVENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("\n".join(f"{u}::{i}::{r}::{t}" for u, i, r, t in events) + "\n")
    (folder / "movies.dat").write_text(
        "\n".join(f"{i}::{t}::Comedy|Drama" for i, t in sorted(TITLES.items())) + "\n", encoding="latin-1")
    (folder / "users.dat").write_text("\n".join(f"{u}::F::25::{u}::1234{u}" for u in (1, 2, 3, 4)) + "\n")
    return folder


@pytest.mark.parametrize("layout", ["100k", "1m"])
def test_reader_both_layouts_same_events(tmp_path, layout):
    folder = (write_100k if layout == "100k" else write_1m)(tmp_path / layout)
    assert detect_layout(folder) == layout
    ds = load_movielens(folder)
    inter = ds.interactions
    assert ds.layout == layout and len(inter) == len(EVENTS) and ds.n_duplicates == 0
    got = sorted(zip(inter.user.tolist(), inter.item.tolist(), inter.rating.tolist(), inter.timestamp.tolist()))
    assert got == sorted((u, i, float(r), t) for u, i, r, t in EVENTS)
    # catalogues come from the items / users files: item 50 and user 4 have no rating
    assert inter.item_ids.tolist() == [10, 20, 30, 40, 50]
    assert inter.user_ids.tolist() == [1, 2, 3, 4]
    assert ds.items["title"].tolist() == [TITLES[k] for k in sorted(TITLES)]
    texts = ds.item_texts()
    assert texts[0].startswith("Alpha (1995). Genres: ") and len(texts) == 5
    assert ds.users.shape == (4, 5)
    if layout == "100k":
        assert set(ds.items["genres"][0]) <= set(GENRES_100K)
    else:
        assert ds.items["genres"][0] == ("Comedy", "Drama")
        assert ds.users["age"].tolist() == [25, 25, 25, 25]


def test_layout_detection_errors(tmp_path):
    with pytest.raises(DataFileError, match="no such folder"):
        load_movielens(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="neither u.data"):
        load_movielens(tmp_path / "empty")
    both = write_100k(tmp_path / "both")
    write_1m(both)
    with pytest.raises(DataFileError, match="both u.data and ratings.dat"):
        load_movielens(both)


@pytest.mark.parametrize("bad, what", [
    ("1\t10\t5", "expected 4 fields"),
    ("1\tx\t5\t100", "user, item and timestamp must be integers"),
    ("1\t10\t9\t100", r"rating 9 is outside \[0.5, 5\]"),
    ("1\t10\t5\t-3", "ids and timestamp must be non-negative"),
])
def test_malformed_line_refused_with_line_number(tmp_path, bad, what):
    folder = write_100k(tmp_path / "ml", extra_lines=[bad])
    with pytest.raises(DataFileError, match=rf"u\.data:{len(EVENTS) + 1}: {what}") as info:
        load_movielens(folder)
    assert isinstance(info.value, HashlearnError)


def test_malformed_items_file_and_unknown_item(tmp_path):
    folder = write_100k(tmp_path / "a")
    (folder / "u.item").write_text("10|only three|fields\n")
    with pytest.raises(DataFileError, match=r"u\.item:1: expected 24"):
        load_movielens(folder)
    folder = write_100k(tmp_path / "b", extra_lines=["1\t99\t4\t5"])
    with pytest.raises(DataFileError, match=r"u\.data:10: item 99 is not in the items file"):
        load_movielens(folder)


def test_duplicates_policies(tmp_path):
    events = EVENTS + [(1, 10, 2, 200), (1, 10, 3, 150)]
    folder = write_100k(tmp_path / "dup", events=events)
    last = load_movielens(folder)  # default: keep the latest rating
    assert last.n_duplicates == 2 and len(last.interactions) == len(EVENTS)
    inter = last.interactions
    k = np.flatnonzero((inter.user == 1) & (inter.item == 10))
    assert k.size == 1 and inter.rating[k[0]] == 2.0 and inter.timestamp[k[0]] == 200
    first = load_movielens(folder, duplicates="first").interactions
    k = np.flatnonzero((first.user == 1) & (first.item == 10))
    assert first.rating[k[0]] == 5.0
    with pytest.raises(ValidationError, match=r"user 1 for item 10 at u\.data:1 and u\.data:11"):
        load_movielens(folder, duplicates="error")
    with pytest.raises(ValidationError, match="duplicates must be one of"):
        load_movielens(folder, duplicates="mean")


def test_from_arrays_validation():
    with pytest.raises(ValidationError, match="integer ids"):
        Interactions.from_arrays(["a"], [1])
    with pytest.raises(ValidationError, match="2 entries but item has 1"):
        Interactions.from_arrays([1, 2], [1])
    with pytest.raises(ValidationError, match="not in item_ids"):
        Interactions.from_arrays([1], [5], item_ids=[1, 2])
    inter = Interactions.from_arrays([3, 1], [7, 7], item_ids=[9, 7])
    assert inter.item_ids.tolist() == [7, 9] and inter.n_users == 2
    assert inter.item_counts().tolist() == [2, 0]


def test_implicit_and_leave_last_out_against_brute_force(rng):
    n = 400
    user = rng.integers(0, 20, n)
    item = rng.integers(0, 60, n)
    time = rng.integers(0, 30, n)  # many ties
    inter = Interactions.from_arrays(user, item, rng.integers(1, 6, n), time, duplicates="first")
    imp = inter.implicit(4)
    assert np.all(imp.rating >= 4) and len(imp) == int((inter.rating >= 4).sum())
    split = leave_last_out(inter, n_test=2, n_valid=1, min_train=2)
    assert len(split.train) + len(split.valid) + len(split.test) == len(inter)
    # brute force: per user, stable sort of (timestamp, input position)
    pos = np.arange(len(inter))
    for u in np.unique(inter.user):
        idx = pos[inter.user == u]
        idx = idx[np.lexsort((idx, inter.timestamp[idx]))]
        t_items = set(zip(split.test.user[split.test.user == u].tolist(), split.test.item[split.test.user == u].tolist()))
        if idx.size >= 5:
            want_test = {(int(u), int(inter.item[i])) for i in idx[-2:]}
            assert t_items == want_test
            v = split.valid.item[split.valid.user == u]
            assert v.tolist() == [int(inter.item[idx[-3]])]
        else:
            assert not t_items
    with pytest.raises(ValidationError, match="n_test"):
        leave_last_out(inter, n_test=0)


def test_official_fold_reader(tmp_path):
    folder = write_100k(tmp_path / "ml")
    (folder / "u1.base").write_text("1\t10\t5\t100\n2\t30\t5\t60\n")
    (folder / "u1.test").write_text("3\t40\t5\t72\n")
    train, test = movielens_fold(folder, 1)
    assert len(train) == 2 and len(test) == 1
    assert train.item_ids.tolist() == test.item_ids.tolist() == [10, 20, 30, 40, 50]
    with pytest.raises(DataFileError, match="u2.base: no such file"):
        movielens_fold(folder, 2)
    with pytest.raises(ValidationError, match="fold must be one of"):
        movielens_fold(folder, 9)
    with pytest.raises(DataFileError, match="only in the MovieLens 100K layout"):
        movielens_fold(write_1m(tmp_path / "m1"), 1)


@pytest.mark.skipif(not (ML100K / "u.data").is_file(), reason=f"MovieLens 100K not found: {ML100K / 'u.data'}")
def test_real_movielens_100k():
    ds = load_movielens(ML100K)
    inter = ds.interactions
    assert (len(inter), inter.n_users, inter.n_items) == (100_000, 943, 1_682)
    assert ds.n_duplicates == 0 and ds.layout == "100k"
    split = leave_last_out(inter.implicit(4))
    assert len(split.test) == np.unique(inter.implicit(4).user).size
    train, test = movielens_fold(ML100K, 1, dataset=ds)
    assert (len(train), len(test)) == (80_000, 20_000)
