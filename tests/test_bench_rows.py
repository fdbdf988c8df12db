"""The benchmarks' row handling: any file of question rows, every accepted answer, the data folder setting."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from hotpot_to_batch import convert, data_path, read_rows, resolve  # noqa: E402
from metrics import Tally, answer_kept  # noqa: E402

# An NQ-shaped row: one unsplit passage per "sentence", several accepted answers.
NQ_ROW = {
    "id": "nq1", "question": "who sang rip it up and start again",
    "answer": "Scottish post-punk band Orange Juice", "answers": ["Scottish post-punk band Orange Juice", "Orange Juice"],
    "context": [["Battle of the Sexes (film)", ["The film dramatizes the 1973 match between King and Riggs."]],
                ["Rip It Up (Orange Juice album)", ["Rip It Up is the second album. It was recorded by Orange Juice "
                                                    "in 1982. The album reached the charts."]]],
    "supporting_facts": [["Rip It Up (Orange Juice album)", 0]],
}


def test_an_answer_is_kept_when_any_accepted_answer_survives():
    assert answer_kept(["Scottish post-punk band Orange Juice", "Orange Juice"], "recorded by Orange Juice.") is True
    assert answer_kept(["Orange Juice"], "recorded by Orange.") is False
    assert answer_kept("The Beatles", "a song by beatles") is True  # articles and case are normalised away
    assert answer_kept(["yes"], "yes it is") is None and answer_kept(["", "no"], "x") is None


def test_rows_with_several_answers_are_scored_on_all_of_them():
    line, gold = convert(NQ_ROW, None)
    assert [d["title"] for d in line["documents"]] == ["Battle of the Sexes (film)", "Rip It Up (Orange Juice album)"]
    assert gold["answers"] == NQ_ROW["answers"]
    tally = Tally()
    tally.add(gold, "It was recorded by Orange Juice in 1982.", 10)
    tally.add(gold, "The film dramatizes the 1973 match.", 10)
    summary = tally.summary()
    assert summary["answer_kept"] == 0.5 and summary["answer_questions"] == 2
    assert summary["sf_recall"] == 0.0  # the gold "sentence" is the whole passage: not kept whole here


def test_the_data_folder_comes_from_one_setting(tmp_path, monkeypatch):
    (tmp_path / "nq").mkdir()
    (tmp_path / "nq" / "rows.jsonl").write_text(json.dumps(NQ_ROW) + "\n\n", encoding="utf-8")
    monkeypatch.setenv("RAGPRESS_DATA", str(tmp_path))
    assert data_path("nq", "rows.jsonl") == tmp_path / "nq" / "rows.jsonl"
    assert read_rows(resolve("nq/rows.jsonl")) == [NQ_ROW]
    with pytest.raises(SystemExit, match="benchmark data not found: .*missing.jsonl"):
        data_path("nq", "missing.jsonl")
    monkeypatch.setenv("RAGPRESS_DATA", str(tmp_path / "absent"))
    with pytest.raises(SystemExit, match="Set RAGPRESS_DATA"):
        data_path("nq", "rows.jsonl")


def test_evidence_units_of_a_passage_are_the_ones_holding_an_answer(fast_engine):
    from compressors import packing
    from train_extractive_head import unit_labels

    line, gold = convert(NQ_ROW, None)
    req = fast_engine.request(line["query"], line["documents"], 100)
    seg = packing.segment(req.documents)
    labels = unit_labels(NQ_ROW, gold, req.documents, seg)
    assert [u.text for u, y in zip(seg.units, labels) if y] == ["It was recorded by Orange Juice in 1982."]
    # Without an answer inside any unit, the whole gold passage is evidence.
    no_answer = dict(NQ_ROW, answers=["Altered Images"])
    labels = unit_labels(no_answer, convert(no_answer, None)[1], req.documents, seg)
    assert [seg.units[i].doc for i in range(len(labels)) if labels[i]] == [1, 1, 1]


def test_the_paired_sign_test_is_exact_and_two_sided():
    from paired_extractive import sign_test

    assert sign_test(0, 0) == 1.0
    assert sign_test(1, 2) == 1.0 and sign_test(2, 3) == 1.0  # a one-question net difference says nothing
    assert sign_test(0, 5) == sign_test(5, 0) == 2 / 32
    assert abs(sign_test(25, 2) - 2 * (1 + 27 + 351) / 2 ** 27) < 1e-15  # C(27, 0..2)


def test_bagged_forest_heads_average_fits_on_bootstrap_resamples(monkeypatch):
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    import train_extractive_head as training
    from compressors.trees import Forest

    rng = np.random.default_rng(3)
    x = rng.random((200, 3))
    y = ((x[:, 0] > 0.4) ^ (rng.random(200) < 0.1)).astype(int)
    names = ("a", "b", "c")
    monkeypatch.setattr(training, "BAGS", 3)
    bagged = training.train(("forest", None), x, y, names)
    assert bagged.feature.shape[0] == 3 * 200  # three forests of 200 trees side by side

    def one(seed):
        weight = np.random.default_rng(seed).poisson(1.0, len(y)).astype(np.float64)
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_depth=3, random_state=seed,
                                               early_stopping=False)
        return Forest.from_sklearn(model.fit(x, y, sample_weight=weight), names).logit(x)

    assert np.allclose(bagged.logit(x), np.mean([one(s) for s in range(3)], axis=0), atol=1e-5)
    monkeypatch.setattr(training, "BAGS", 1)
    single = training.train(("forest", None), x, y, names)
    assert single.feature.shape[0] == 200 and not np.allclose(single.logit(x), bagged.logit(x), atol=1e-3)


def test_paired_crossval_runs_count_disagreements_over_the_questions_both_judged(tmp_path, capsys):
    from paired_extractive import crossval_main, paired_counts

    a = {"q1": True, "q2": True, "q3": False, "q4": True, "only_a": True}
    b = {"q1": True, "q2": False, "q3": False, "q4": False, "only_b": False}
    assert paired_counts(a, b) == {"both": 1, "a_only": 2, "b_only": 0, "neither": 1, "p": 0.5}
    runs = []
    for name, kept in (("a", a), ("b", b)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"runs": [{"options": {}, "results": {}, "kept": {"f.jsonl": {"150": kept}}}]}))
        runs.append(str(path))
    out = tmp_path / "paired.json"
    crossval_main(*runs, str(out))
    assert json.loads(out.read_text())["results"]["f.jsonl"]["150"]["a_only"] == 2
    assert "| f.jsonl | 150 | 1 | 2 | 0 | 1 | 0.5 |" in capsys.readouterr().out
    (tmp_path / "b.json").write_text(json.dumps({"runs": [{"options": {}, "results": {}}]}))
    with pytest.raises(SystemExit, match="--per-question"):
        crossval_main(*runs, str(out))
