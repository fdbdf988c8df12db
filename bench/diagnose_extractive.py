"""Why does ``extractive`` lose answers that a MiniLM cosine ranking keeps? (training data only)

    .venv/bin/python bench/diagnose_extractive.py [--data nq/nq_hybrid_train.jsonl] [--fold N] [--heads PATH ...]

For each question of a training file, packs whole sentences under each budget
in the order of the extractive method's heads (the committed ones, and each
``--heads`` file; thresholds as the method applies them) and by the int8 ONNX
all-MiniLM-L6-v2 cosine of "title: sentence" (the ``cosine`` baseline's order,
from the same model run through ONNX Runtime). Each question the cosine order
keeps the answer for and the heads do not is put in one class:

- ``document``: no sentence of the answer's passage is kept (the heads ranked
  other passages first);
- ``sentence``: a sentence of the answer's passage is kept, but not the one
  holding the answer (choice inside the passage);
- ``threshold``: the answer's sentence would have fitted, but its probability is
  below ``min_probability`` or its passage's below ``min_document_probability``
  (the method stopped early).

Also prints where the answer's passage ranks under the heads' document score and
under the dense cosine of its best sentence, and, inside each passage that holds an
answer in one of at least two units, how often a unit holding it comes first by
the heads' probability, by the static table's cosine and by the dense cosine ("title:
sentence" for both): whether a real transformer would choose better inside a passage.
Never run it on the dev files.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BUDGETS = (150, 300)


def sentence_cosine(job, seg, embed, units=None) -> np.ndarray:
    """Cosine of the query with every unit (or those of ``units``) as the ``cosine`` baseline reads
    it ("title: sentence")."""
    from compressors.baselines import titled

    chosen = seg.units if units is None else [seg.units[i] for i in units]
    vecs = embed([job.query, *(titled(job, u) for u in chosen)])
    return (vecs[1:] @ vecs[0]).astype(np.float32)


def answer_holders(accepted: list[str], seg) -> np.ndarray:
    """Per unit: holds one of ``accepted`` (normalised answers padded with spaces)."""
    from metrics import normalise

    return np.array([any(a in f" {normalise(u.text)} " for a in accepted) for u in seg.units], dtype=bool)


def answer_passages(seg, holds: np.ndarray) -> list[np.ndarray]:
    """The units of each passage with an answer in some but not all of at least two units:
    the passages where the choice inside them decides."""
    doc_of = np.array([u.doc for u in seg.units])
    passages = [np.flatnonzero(doc_of == d) for d in sorted({seg.units[i].doc for i in np.flatnonzero(holds)})]
    return [u for u in passages if len(u) >= 2 and not holds[u].all()]


def first_holds(score: np.ndarray, holds: np.ndarray, passage: np.ndarray) -> bool:
    """Whether the unit of ``passage`` first by ``score`` (one score per unit of it) holds an answer."""
    return bool(holds[passage[int(np.argmax(score))]])


def main() -> None:
    from compressors import head, packing
    from compressors.base import CompressionJob
    from compressors.extractive import ExtractiveOptions
    from hotpot_to_batch import read_rows
    from hotpot_to_batch import fold as question_fold
    from metrics import answer_kept, normalise
    from middleware.library import Ragpress
    from train_extractive_head import segmented, training_files

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="nq/nq_hybrid_train.jsonl",
                    help="a training file (or derived:hotpot_train_distractor, built from the HotpotQA one)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--fold", type=int, default=None,
                    help="only this fold's questions (of 5, by id hash: train_extractive_head.py --holdout --fold N)")
    ap.add_argument("--heads", action="append", default=None,
                    help="a heads JSON to compare with the committed heads (repeatable)")
    ap.add_argument("--out", default=str(HERE / "results" / "diagnose_extractive.json"))
    args = ap.parse_args()
    if "dev" in Path(args.data).name:
        sys.exit("diagnose on training files only: the dev files are for reporting")
    engine = Ragpress()
    named = {"committed": head.load()}
    for path in args.heads or []:
        named[Path(path).stem] = head.from_spec(json.loads(Path(path).read_text()))
    opts = ExtractiveOptions()
    tok = engine.models.tokenizers.get("gpt-4o")
    static, dense = engine.models.static_embedder().embed, engine.models.onnx_embedder().embed
    rows = [r for r in read_rows(training_files([args.data])[0])
            if args.fold is None or question_fold(r["id"], 5) == args.fold]
    rows = rows[:args.limit]
    tally = {(n, b): collections.Counter() for n in named for b in BUDGETS}
    ranks = {(n, b): collections.defaultdict(list) for n in named for b in BUDGETS}
    text = lambda docs: "\n".join(d.text for d in docs)  # noqa: E731
    for row in rows:
        _, _, req, seg = segmented(engine, row)
        if not seg.units:
            continue
        accepted = [f" {n} " for n in (normalise(a) for a in row.get("answers") or [row["answer"]]) if n]
        if answer_kept(accepted, "") is None:  # yes/no answers are never in a context
            continue
        holds = answer_holders(accepted, seg)
        if not holds.any():
            continue
        job = CompressionJob(req.query, req.documents, 300, tok)
        cos = sentence_cosine(job, seg, dense)
        static_cos = sentence_cosine(job, seg, static)
        answer_docs = {seg.units[i].doc for i in np.flatnonzero(holds)}
        doc_of = np.array([u.doc for u in seg.units])
        dense_doc = np.array([cos[doc_of == d].max() if (doc_of == d).any() else -1 for d in range(len(req.documents))])
        dense_rank = min(int((dense_doc > dense_doc[d]).sum()) for d in answer_docs)
        inside = answer_passages(seg, holds)

        def first_inside(score: np.ndarray) -> int:
            return sum(first_holds(score[u], holds, u) for u in inside)

        for name, heads in named.items():
            scores = heads.score(job, seg, static, dense, heads.reading)
            head_rank = min(int((scores.doc > scores.doc[d]).sum()) for d in answer_docs)
            within = {"passages": len(inside), "heads": first_inside(scores.unit),
                      "static_cosine": first_inside(static_cos), "dense_cosine": first_inside(cos)}
            eligible = scores.eligible(seg, opts.min_probability, opts.min_document_probability)
            for budget in BUDGETS:
                t, job_b = tally[name, budget], CompressionJob(req.query, req.documents, budget, tok)
                ext_docs, _ = packing.pack(job_b, seg, eligible)
                all_docs, _ = packing.pack(job_b, seg, [int(i) for i in scores.order])
                cos_docs, _ = packing.pack(job_b, seg, [int(i) for i in np.argsort(-cos, kind="stable")])
                ext, cosine = answer_kept(accepted, text(ext_docs)), answer_kept(accepted, text(cos_docs))
                t["questions"] += 1
                for key, n in within.items():
                    t[f"inside_{key}"] += n
                t["extractive"] += ext
                t["cosine"] += cosine
                t["heads_without_thresholds"] += answer_kept(accepted, text(all_docs))
                t["answer_passage_first_heads"] += head_rank == 0
                t["answer_passage_first_dense"] += dense_rank == 0
                if cosine and not ext:
                    kept_ids = {d.id for d in ext_docs}
                    if answer_kept(accepted, text(all_docs)):
                        cls = "threshold"
                    elif any(req.documents[d].id in kept_ids for d in answer_docs):
                        cls = "sentence"
                    else:
                        cls = "document"
                    t[cls] += 1
                    ranks[name, budget][cls].append((head_rank, dense_rank))
                elif ext and not cosine:
                    t["extractive_only"] += 1
    out = {}
    for (name, b), t in tally.items():
        print(f"heads {name}, budget {b}: {t['questions']} questions with an answer in the context; answer kept: "
              f"extractive {t['extractive']}, without its thresholds {t['heads_without_thresholds']}, "
              f"cosine {t['cosine']}; cosine only {t['document'] + t['sentence'] + t['threshold']} "
              f"(document {t['document']}, sentence {t['sentence']}, threshold {t['threshold']}), "
              f"extractive only {t['extractive_only']}; answer passage ranked first by the heads "
              f"{t['answer_passage_first_heads']}, by the dense cosine {t['answer_passage_first_dense']}")
        print(f"  inside {t['inside_passages']} answer passages of at least two units, a unit holding the answer "
              f"comes first by the heads {t['inside_heads']}, by the static cosine {t['inside_static_cosine']}, "
              f"by the dense cosine {t['inside_dense_cosine']}")
        for cls, rs in ranks[name, b].items():
            print(f"  {cls}: answer passage rank (0 = first) under the heads median "
                  f"{statistics.median(r[0] for r in rs)}, under the dense cosine median "
                  f"{statistics.median(r[1] for r in rs)}; dense ranks it first in {sum(r[1] == 0 for r in rs)}")
        out.setdefault(name, {})[b] = {"counts": dict(t), "ranks": dict(ranks[name, b])}
    Path(args.out).write_text(json.dumps({"data": args.data, "fold": args.fold, "limit": args.limit,
                                          "heads": out}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
