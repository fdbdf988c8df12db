"""Trains the extractive method's scoring heads (one command, a few minutes on CPU).

    .venv/bin/python bench/train_extractive_head.py

Training data: ../shared/data/hotpotqa/hotpot_retrieved_500.jsonl only. A
document is positive when its title is among the supporting facts' titles; a
unit is positive when it is a supporting-fact sentence. hotpot_distractor_dev100
is NEVER read here: it is the held-out set the benchmark reports on. A fixed 20%
of the training questions (by id hash) is the validation split for choosing the
regularisation and the kind of each head (logistic regression or trees). Each
stacked head learns from out-of-fold outputs of the stage before. Writes
compressors/data/extractive_head.json; ``--holdout [--fold N] --out PATH`` writes
heads fitted without fold N (default 0, the validation split) instead, for tuning
the method's thresholds on it (bench/tune_extractive_thresholds.py) or for
cross-validating the whole method (bench/crossval_extractive.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE.parent.parent / "shared" / "data" / "hotpotqa" / "hotpot_retrieved_500.jsonl"
OUT = HERE.parent / "compressors" / "data" / "extractive_head.json"


FOLDS = 5  # by question (SHA-1 of the id); fold 0 is the validation split


def train(kind, x, y, names):
    """One head: ("logistic", C) or ("forest", None), fitted on all of x."""
    if kind[0] == "forest":
        from sklearn.ensemble import HistGradientBoostingClassifier

        from compressors.trees import Forest

        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_depth=3, random_state=0)
        return Forest.from_sklearn(model.fit(x, y), names)
    from sklearn.linear_model import LogisticRegression

    from compressors.head import Logistic

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=kind[1], max_iter=5000).fit((x - mean) / scale, y)
    return Logistic(names, mean.astype(np.float32), scale.astype(np.float32),
                    clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


# --holdout [--fold N]: fit the final heads without fold N (default 0), to tune or
# cross-validate the method on questions the heads never saw.
HOLDOUT = int(sys.argv[sys.argv.index("--fold") + 1]) if "--fold" in sys.argv else 0
HOLDOUT = HOLDOUT if "--holdout" in sys.argv else None


def select(x, y, fold, names, forest=True):
    """The kind with the best average precision on fold 0 when trained on the others; then fitted on all
    (on all but fold 0 with --holdout)."""
    from sklearn.metrics import average_precision_score

    kinds = [("logistic", c) for c in (0.01, 0.1, 1.0, 10.0)] + ([("forest", None)] if forest else [])
    scored = [(average_precision_score(y[fold == 0], train(k, x[fold != 0], y[fold != 0], names).logit(x[fold == 0])),
               k) for k in kinds]
    ap, kind = max(scored, key=lambda t: t[0])
    print(f"  {len(y)} rows, {int(y.sum())} positives: {kind[0]}" + (f" C={kind[1]}" if kind[1] else "") +
          f", validation AP {ap:.4f} (" + ", ".join(f"{k[0][0]}{k[1] or ''} {a:.3f}" for a, k in scored) + ")")
    keep = fold != HOLDOUT if HOLDOUT is not None else np.ones(len(y), bool)
    return kind, train(kind, x[keep], y[keep], names), round(float(ap), 4)


def out_of_fold(kind, x, y, fold, names, targets):
    """For each fold, predictions (logits) on ``targets`` rows of that fold by a head trained on the other folds."""
    out = [None] * len(targets)
    for f in range(FOLDS):
        head = train(kind, x[fold != f], y[fold != f], names)
        for i, (t_x, t_fold) in enumerate(targets):
            if t_fold == f:
                out[i] = head.logit(t_x)
    return out


def sigmoid(z):
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def main() -> None:
    from compressors import features, packing
    from compressors.base import CompressionJob
    from compressors.head import SOFT_TEMPERATURE
    from hotpot_to_batch import convert
    from hotpot_to_batch import fold as question_fold
    from middleware.library import Ragpress

    engine = Ragpress()
    tok = engine.models.tokenizers.get("gpt-4o")
    embed = engine.models.static_embedder().embed
    rows = [json.loads(l) for l in DATA.read_text(encoding="utf-8").splitlines() if l.strip()]
    rows = [r for r in rows if r.get("supporting_facts") and r.get("context")]
    items = []
    for row in rows:
        line, gold = convert(row, None)
        req = engine.request(line["query"], line["documents"], 300)
        seg = packing.segment(req.documents)
        if not seg.units:
            continue
        ctx = features.prepare(CompressionJob(req.query, req.documents, 300, tok), seg, embed)
        gold_titles = {t for t, _ in gold["supporting_facts"]}
        facts = {(t, i) for t, i in gold["supporting_facts"]}
        doc_y = np.array([d.title in gold_titles for d in req.documents], dtype=np.int64)
        unit_y = np.array([any((req.documents[u.doc].title, i) in facts and (u.text in s or s in u.text)
                               for i, s in enumerate(gold["sentences"][req.documents[u.doc].title]))
                           for u in seg.units], dtype=np.int64)
        fold = question_fold(row["id"], FOLDS)
        items.append((ctx, doc_y, unit_y, fold))

    # Stacked heads are trained on out-of-fold outputs of the stage before, so that
    # a stage never learns from predictions its predecessor made on its own training rows.
    def stack(mats, ys):
        return (np.concatenate(mats), np.concatenate(ys),
                np.concatenate([np.full(len(y), it[3]) for y, it in zip(ys, items)]))

    print("stage 1 (documents)")
    d1s = [features.doc_features_1(ctx) for ctx, *_ in items]
    x, y, fold = stack(d1s, [it[1] for it in items])
    kind, doc1, ap1 = select(x, y, fold, features.DOC_FEATURES_1)
    p1s = [sigmoid(z) for z in out_of_fold(kind, x, y, fold, features.DOC_FEATURES_1,
                                             [(d1, it[3]) for d1, it in zip(d1s, items)])]
    print("stage 2 (documents with bridges)")
    d2s = [features.doc_features_2(ctx, d1, p1) for (ctx, *_), d1, p1 in zip(items, d1s, p1s)]
    x, y, fold = stack(d2s, [it[1] for it in items])
    kind, doc2, ap2 = select(x, y, fold, features.DOC_FEATURES_2)
    p2s = [sigmoid(z) for z in out_of_fold(kind, x, y, fold, features.DOC_FEATURES_2,
                                             [(d2, it[3]) for d2, it in zip(d2s, items)])]
    print("pairs (questions whose two gold documents were both retrieved)")
    pf = [features.pair_features(ctx, p2) for (ctx, *_), p2 in zip(items, p2s)]
    both = [i for i, it in enumerate(items) if it[1].sum() == 2]
    labels = {i: np.array([items[i][1][a] * items[i][1][b] for a, b in pf[i][0]], np.int64) for i in both}
    x = np.concatenate([pf[i][1] for i in both])
    y = np.concatenate([labels[i] for i in both])
    fold = np.concatenate([np.full(len(labels[i]), items[i][3]) for i in both])
    kind, pair, ap_pair = select(x, y, fold, features.PAIR_FEATURES, forest=False)
    logits = out_of_fold(kind, x, y, fold, features.PAIR_FEATURES, [(x_, it[3]) for (_, x_), it in zip(pf, items)])
    top1 = [labels[i][int(np.argmax(logits[i]))] for i in both if items[i][3] == 0]
    print(f"  validation: the best pair is the gold pair in {np.mean(top1):.3f} of {len(top1)} questions")
    print("units")
    us = [features.unit_features(ctx, p2, features.pair_marginals(len(p2), pairs, z),
                                 features.pair_marginals(len(p2), pairs, z / SOFT_TEMPERATURE))
          for (ctx, *_), p2, (pairs, _), z in zip(items, p2s, pf, logits)]
    x, y, fold = stack(us, [it[2] for it in items])
    _, unit, ap3 = select(x, y, fold, features.UNIT_FEATURES)
    spec = {"doc1": doc1.to_json(), "doc2": doc2.to_json(), "pair": pair.to_json(), "unit": unit.to_json(),
            "trained_on": DATA.name, "questions": len(items),
            "validation_average_precision": {"doc1": ap1, "doc2": ap2, "pair": ap_pair, "unit": ap3},
            "validation_pair_top1": round(float(np.mean(top1)), 4)}
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(spec, separators=(",", ":")) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
