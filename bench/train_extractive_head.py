"""Trains the extractive method's scoring heads (one command, a few minutes on CPU).

    .venv/bin/python bench/train_extractive_head.py [--data FILE ...]

Training data (``--data``, repeatable; paths under RAGPRESS_DATA or as given):
by default hotpotqa/hotpot_retrieved_500.jsonl and nq/nq_hybrid_train.jsonl, the
training files of both kinds of data (multi-hop paragraphs, single-hop retrieved
passages), and HotpotQA's distractor setting rebuilt from the first of them
(bench/distractor_setting.py: gold pairs among TF-IDF-close paragraphs, the shape
where closeness to the question is not evidence). A document is positive when its title is among the supporting facts'
titles. A unit is positive when it is a supporting-fact sentence; in rows that
list ``answers`` (NQ: a whole passage is the supporting fact), when it is a unit
of the gold passage holding an accepted answer (all the gold passage's units if
none does). The dev files (hotpot_distractor_dev100, nq_hybrid_dev) are NEVER read
here: the benchmark reports on them. A fixed 20% of the training questions (by id
hash) is the validation split for choosing the regularisation and the kind of
each head (logistic regression or trees). Each stacked head learns from
out-of-fold outputs of the stage before. Writes compressors/data/extractive_head_rerank.json
(with --no-rerank: extractive_head.json, the default heads' file);
``--holdout [--fold N] --out PATH`` writes heads fitted without fold N (default 0,
the validation split) instead, for tuning the method's thresholds on it
(bench/tune_extractive_thresholds.py) or for cross-validating the whole method
(bench/crossval_extractive.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
TRAINING_FILES = ("hotpotqa/hotpot_retrieved_500.jsonl", "nq/nq_hybrid_train.jsonl",
                  "derived:hotpot_train_distractor")


def training_files(names) -> list[Path]:
    """Paths of the training files; ``derived:hotpot_train_distractor`` is HotpotQA's distractor
    setting rebuilt from the retrieved training file (bench/distractor_setting.py), built once."""
    from distractor_setting import ensure
    from hotpot_to_batch import resolve

    return [ensure() if name == "derived:hotpot_train_distractor" else resolve(name) for name in names]
# Where the heads go unless --out says otherwise: the rerank heads by default, the default
# (cheap, HotpotQA) heads' file only with --no-rerank, so that a default run never replaces them.
OUT = HERE.parent / "compressors" / "data" / "extractive_head_rerank.json"
OUT_CHEAP = OUT.with_name("extractive_head.json")


FOLDS = 5  # by question (SHA-1 of the id); fold 0 is the validation split
# scikit-learn stops boosting early on a random tenth of the rows (above 10,000 rows), so
# the trees then depend on the rows' order (which files come first); off, every forest
# has its 200 trees whatever the order. The fast heads were fitted with it on (--early-stopping).
EARLY_STOPPING = False
# A forest head is the average of this many forests, each fitted on a Poisson bootstrap of the
# rows (seeds 0, 1, ...); 1: one forest on the rows as they are.
BAGS = 1


def train(kind, x, y, names):
    """One head: ("logistic", C) or ("forest", None), fitted on all of x."""
    if kind[0] == "forest":
        from sklearn.ensemble import HistGradientBoostingClassifier

        from compressors.trees import Forest

        def forest(seed, weight=None):
            model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_depth=3, random_state=seed,
                                                   early_stopping="auto" if EARLY_STOPPING else False)
            return Forest.from_sklearn(model.fit(x, y, sample_weight=weight), names)

        if BAGS == 1:
            return forest(0)
        return Forest.average([forest(b, np.random.default_rng(b).poisson(1.0, len(y)).astype(np.float64))
                               for b in range(BAGS)])
    from sklearn.linear_model import LogisticRegression

    from compressors.head import Logistic

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=kind[1], max_iter=5000).fit((x - mean) / scale, y)
    return Logistic(names, mean.astype(np.float32), scale.astype(np.float32),
                    clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


def select(x, y, fold, names, validation, forest=True, log=print):
    """The kind with the best average precision on the validation fold when trained on the others;
    then fitted on all rows given."""
    from sklearn.metrics import average_precision_score

    kinds = [("logistic", c) for c in (0.01, 0.1, 1.0, 10.0)] + ([("forest", None)] if forest else [])
    val = fold == validation
    scored = [(average_precision_score(y[val], train(k, x[~val], y[~val], names).logit(x[val])), k) for k in kinds]
    ap, kind = max(scored, key=lambda t: t[0])
    log(f"  {len(y)} rows, {int(y.sum())} positives: {kind[0]}" + (f" C={kind[1]}" if kind[1] else "") +
        f", validation AP {ap:.4f} (" + ", ".join(f"{k[0][0]}{k[1] or ''} {a:.3f}" for a, k in scored) + ")")
    return kind, train(kind, x, y, names), round(float(ap), 4)


def out_of_fold(kind, x, y, fold, names, targets):
    """For each fold, predictions (logits) on ``targets`` rows of that fold by a head trained on the other folds."""
    out = [None] * len(targets)
    for f in sorted(set(fold.tolist()) | {t for _, t in targets}):
        head = train(kind, x[fold != f], y[fold != f], names)
        for i, (t_x, t_fold) in enumerate(targets):
            if t_fold == f:
                out[i] = head.logit(t_x)
    return out


def sigmoid(z):
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


@dataclass
class Item:
    """One training question: its features' context, labels and fold."""

    ctx: object            # compressors.features.Context
    doc_y: np.ndarray      # per document: holds a supporting fact
    unit_y: np.ndarray     # per unit: is evidence
    fold: int
    source: str            # the file it came from
    request: tuple         # (documents as dicts, gold record) for compressing it again


def unit_labels(row: dict, gold: dict, docs, seg) -> np.ndarray:
    """Evidence units: supporting-fact sentences, or (rows that list ``answers``, whose supporting
    fact is a whole passage) the gold passage's units that hold an accepted answer."""
    from metrics import normalise

    facts = {(t, i) for t, i in gold["supporting_facts"]}
    y = np.array([any((docs[u.doc].title, i) in facts and (u.text in s or s in u.text)
                      for i, s in enumerate(gold["sentences"][docs[u.doc].title]))
                  for u in seg.units], dtype=np.int64)
    if row.get("answers"):
        accepted = [f" {n} " for n in (normalise(a) for a in row["answers"]) if n]
        holds = np.array([any(a in f" {normalise(u.text)} " for a in accepted) for u in seg.units])
        if (y.astype(bool) & holds).any():
            y = (y.astype(bool) & holds).astype(np.int64)
    return y


def segmented(engine, row: dict):
    """A question row as (batch line, gold record, request, its units)."""
    from compressors import packing
    from hotpot_to_batch import convert

    line, gold = convert(row, None)
    req = engine.request(line["query"], line["documents"], 300)
    return line, gold, req, packing.segment(req.documents)


def build_items(files: list[Path], engine, log=print) -> list[Item]:
    """Features' contexts and labels of every question (with context and supporting facts) of ``files``."""
    from compressors import features
    from compressors.base import CompressionJob
    from hotpot_to_batch import read_rows
    from hotpot_to_batch import fold as question_fold

    tok = engine.models.tokenizers.get("gpt-4o")
    embed = engine.models.static_embedder().embed
    items = []
    for path in files:
        rows = [r for r in read_rows(path) if r.get("supporting_facts") and r.get("context")]
        for row in rows:
            line, gold, req, seg = segmented(engine, row)
            if not seg.units:
                continue
            ctx = features.prepare(CompressionJob(req.query, req.documents, 300, tok), seg, embed)
            gold_titles = {t for t, _ in gold["supporting_facts"]}
            doc_y = np.array([d.title in gold_titles for d in req.documents], dtype=np.int64)
            items.append(Item(ctx, doc_y, unit_labels(row, gold, req.documents, seg),
                              question_fold(row["id"], FOLDS), path.name, (line["documents"], gold)))
        log(f"{path.name}: {len(rows)} questions")
    return items


def fit(items: list[Item], log=print, dense=None, reading=None,
        cheap_sources: set[str] | None = None, lead_words: int | None = None) -> dict:
    """The heads fitted on ``items`` (as JSON), each head's kind chosen on their first fold.

    With ``dense`` (the real sentence embedder's ``embed``), also the rerank head over the
    units of the documents ``reading`` chooses for each question (default ``rerank.READING``;
    compressors/rerank.py). With
    ``cheap_sources``, the cheap heads learn from the items of those files only and the rerank
    head from all: its inputs on the other files' items come from the cheap heads fitted on all
    of ``cheap_sources`` (those items are unseen by them anyway).
    """
    from compressors import features, rerank
    from compressors.head import SOFT_TEMPERATURE

    # One canonical order (by file name, then question id): the fit does not depend on the
    # order the files were named in (float sums and the pair head's solver follow row order).
    items = sorted(items, key=lambda it: (it.source, str(it.request[1]["id"])))
    every = items
    if cheap_sources:
        items = [it for it in items if it.source in cheap_sources]
    validation = min(it.fold for it in items)

    # Stacked heads are trained on out-of-fold outputs of the stage before, so that
    # a stage never learns from predictions its predecessor made on its own training rows.
    def stack(mats, ys):
        return (np.concatenate(mats), np.concatenate(ys),
                np.concatenate([np.full(len(y), it.fold) for y, it in zip(ys, items)]))

    log("stage 1 (documents)")
    d1s = [features.doc_features_1(it.ctx) for it in items]
    x, y, fold = stack(d1s, [it.doc_y for it in items])
    kind, doc1, ap1 = select(x, y, fold, features.DOC_FEATURES_1, validation, log=log)
    p1s = [sigmoid(z) for z in out_of_fold(kind, x, y, fold, features.DOC_FEATURES_1,
                                             [(d1, it.fold) for d1, it in zip(d1s, items)])]
    log("stage 2 (documents with bridges)")
    d2s = [features.doc_features_2(it.ctx, d1, p1) for it, d1, p1 in zip(items, d1s, p1s)]
    x, y, fold = stack(d2s, [it.doc_y for it in items])
    kind, doc2, ap2 = select(x, y, fold, features.DOC_FEATURES_2, validation, log=log)
    p2s = [sigmoid(z) for z in out_of_fold(kind, x, y, fold, features.DOC_FEATURES_2,
                                             [(d2, it.fold) for d2, it in zip(d2s, items)])]
    log("pairs (questions whose two gold documents were both retrieved)")
    pf = [features.pair_features(it.ctx, p2) for it, p2 in zip(items, p2s)]
    both = [i for i, it in enumerate(items) if it.doc_y.sum() == 2]
    labels = {i: np.array([items[i].doc_y[a] * items[i].doc_y[b] for a, b in pf[i][0]], np.int64) for i in both}
    if both:
        x = np.concatenate([pf[i][1] for i in both])
        y = np.concatenate([labels[i] for i in both])
        fold = np.concatenate([np.full(len(labels[i]), items[i].fold) for i in both])
        kind, pair, ap_pair = select(x, y, fold, features.PAIR_FEATURES, validation, forest=False, log=log)
        logits = out_of_fold(kind, x, y, fold, features.PAIR_FEATURES,
                             [(x_, it.fold) for (_, x_), it in zip(pf, items)])
        top1 = [labels[i][int(np.argmax(logits[i]))] for i in both if items[i].fold == validation]
        log(f"  validation: the best pair is the gold pair in {np.mean(top1):.3f} of {len(top1)} questions")
    else:
        # Single-hop data alone (NQ: one gold passage) has no pair to learn from: a neutral pair
        # head (every pair alike), so that the pair shares carry no signal and the unit head ignores them.
        from compressors.head import Logistic

        n = len(features.PAIR_FEATURES)
        pair = Logistic(features.PAIR_FEATURES, np.zeros(n, np.float32), np.ones(n, np.float32),
                        np.zeros(n, np.float32), 0.0)
        logits, ap_pair = [np.zeros(len(x_), np.float32) for _, x_ in pf], None
        log("  no question with two gold documents: a neutral pair head")
    log("units")
    us = [features.unit_features(it.ctx, p2, features.pair_marginals(len(p2), pairs, z),
                                 features.pair_marginals(len(p2), pairs, z / SOFT_TEMPERATURE))
          for it, p2, (pairs, _), z in zip(items, p2s, pf, logits)]
    x, y, fold = stack(us, [it.unit_y for it in items])
    kind, unit, ap3 = select(x, y, fold, features.UNIT_FEATURES, validation, log=log)
    sources = sorted({it.source for it in items})
    spec = {"doc1": doc1.to_json(), "doc2": doc2.to_json(), "pair": pair.to_json(), "unit": unit.to_json(),
            "trained_on": sources, "questions": {s: sum(it.source == s for it in items) for s in sources},
            "validation_fold": validation, **({"forest_bags": BAGS} if BAGS > 1 else {}),
            "validation_average_precision": {"doc1": ap1, "doc2": ap2, "pair": ap_pair, "unit": ap3},
            "validation_pair_top1": round(float(np.mean(top1)), 4) if both else None}
    if dense is None:
        return spec
    doc_probs = [np.maximum(p2, features.pair_marginals(len(p2), pairs, z))
                 for p2, (pairs, _), z in zip(p2s, pf, logits)]
    zs = out_of_fold(kind, x, y, fold, features.UNIT_FEATURES, [(u, it.fold) for u, it in zip(us, items)])
    cheap = {id(it): (z, p) for it, z, p in zip(items, zs, doc_probs)}
    others = [it for it in every if id(it) not in cheap]
    if others:
        from compressors.head import from_spec

        heads = from_spec(spec)
        for it in others:
            cheap[id(it)] = heads.cheap(it.ctx)
    return rerank_stage(every, cheap, spec, dense, reading or rerank.READING, lead_words or rerank.LEAD_WORDS, log)


def rerank_stage(items: list[Item], cheap: dict, spec: dict, dense, reading, words: int, log=print) -> dict:
    """Adds the rerank head, fitted on the units of the documents ``reading`` chooses for each question
    (by out-of-fold or unseen cheap outputs, ``cheap``: id(item) -> (unit logits, document probabilities))."""
    from compressors import rerank

    log(f"rerank (the units of the {reading.documents} likeliest documents and of up to {reading.more} more at a "
        f"cheap probability of at least {reading.probability}, their leads of {words} words read by the transformer)")
    validation = min(it.fold for it in items)
    rows, ys, folds, found = [], [], [], []
    for it in items:
        z, doc_prob = cheap[id(it)]
        chosen = reading.choose(doc_prob)
        units = rerank.candidate_units(it.ctx.seg, chosen)
        cos = rerank.lead_cosine(it.ctx.job, chosen, dense, words)
        rows.append(rerank.rerank_features(it.ctx.doc_of, units, z, doc_prob, chosen, cos, it.ctx.cos_u))
        ys.append(it.unit_y[units])
        folds.append(np.full(len(units), it.fold))
        found.append(bool(it.unit_y[units].any()) if it.unit_y.any() else None)
    x, y, fold = np.concatenate(rows), np.concatenate(ys), np.concatenate(folds)
    reachable = [f for f in found if f is not None]
    log(f"  an evidence unit is in a candidate document in {np.mean(reachable):.3f} of {len(reachable)} questions")
    _, head_r, ap4 = select(x, y, fold, rerank.RERANK_FEATURES, validation, log=log)
    spec["rerank"] = head_r.to_json()
    spec.update(reading.to_spec())
    spec["rerank_lead_words"] = words
    spec["rerank_trained_on"] = sorted({it.source for it in items})
    spec["validation_average_precision"]["rerank"] = ap4
    return spec


def add_reading_arguments(ap) -> None:
    """The options that say which documents' leads the transformer reads (rerank.Reading)."""
    from compressors import rerank

    ap.add_argument("--rerank-documents", type=int, default=rerank.DOCUMENTS,
                    help="how many of the likeliest documents' leads the transformer reads at least")
    ap.add_argument("--more-documents", type=int, default=rerank.MORE_DOCUMENTS,
                    help="how many more it may read, each where the cheap probability is at least --more-probability")
    ap.add_argument("--more-probability", type=float, default=rerank.MORE_PROBABILITY)


def add_bags_argument(ap) -> None:
    ap.add_argument("--bags", type=int, default=BAGS,
                    help="average each forest head over this many fits on bootstrap resamples of the rows")


def reading_of(args):
    from compressors import rerank

    return rerank.Reading(args.rerank_documents, args.more_documents, args.more_probability)


def main() -> None:
    from hotpot_to_batch import resolve
    from middleware.library import Ragpress

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=None, help="a training file (repeatable)")
    ap.add_argument("--holdout", action="store_true", help="fit without --fold's questions")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--out", default=None, help="default: compressors/data/extractive_head_rerank.json, "
                                                "or extractive_head.json with --no-rerank")
    ap.add_argument("--no-rerank", action="store_true", help="no transformer rerank head")
    add_reading_arguments(ap)
    ap.add_argument("--lead-words", type=int, default=None,
                    help="words of each candidate document the transformer reads (default: compressors/rerank.py)")
    ap.add_argument("--cheap-data", action="append", default=None,
                    help="fit the cheap heads on this training file only (repeatable; the rerank head on all)")
    ap.add_argument("--early-stopping", action="store_true",
                    help="let scikit-learn stop boosting early (how the fast heads were fitted)")
    add_bags_argument(ap)
    args = ap.parse_args()
    global EARLY_STOPPING, BAGS
    EARLY_STOPPING, BAGS = args.early_stopping, args.bags
    engine = Ragpress()
    items = build_items(training_files(args.data or TRAINING_FILES), engine)
    if args.holdout:
        # Without the held-out fold at all: neither the heads nor the choice of their kind see it.
        items = [it for it in items if it.fold != args.fold]
    spec = fit(items, dense=None if args.no_rerank else engine.models.onnx_embedder().embed,
               reading=reading_of(args), lead_words=args.lead_words,
               cheap_sources={resolve(d).name for d in args.cheap_data} if args.cheap_data else None)
    out = Path(args.out) if args.out else (OUT_CHEAP if args.no_rerank else OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(spec, separators=(",", ":")) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
