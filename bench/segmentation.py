"""Sentence-splitting accuracy and speed against HotpotQA's own sentence boundaries.

    .venv/bin/python bench/segmentation.py

HotpotQA gives every paragraph as a list of sentences; joined with spaces, their
boundaries are the gold. Reports boundary precision/recall of the splitter the
compressors use (compressors.units.split) and, when they are importable in the
same interpreter, of pysbd and blingfire for comparison; plus milliseconds per 10
paragraphs (a typical request), caches cold. Writes bench/results/segmentation.json.
To compare, give it an interpreter that also has them (the compressors' units module
needs only sentencex):

    uv venv /tmp/seg && uv pip install --python /tmp/seg/bin/python sentencex==1.0.32 pysbd blingfire numpy
    PYTHONPATH=. /tmp/seg/bin/python bench/segmentation.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = ("hotpotqa", "hotpot_retrieved_500.jsonl")  # under RAGPRESS_DATA (default ../shared/data)


def paragraphs() -> list[list[str]]:
    out = []
    from hotpot_to_batch import data_path

    for line in data_path(*DATA).read_text(encoding="utf-8").splitlines():
        for _, sents in json.loads(line).get("context", []):
            sents = [s.strip() for s in sents if s.strip()]
            if sents:
                out.append(sents)
    return out


def gold_bounds(sents: list[str]) -> set[int]:
    bounds, pos = set(), 0
    for s in sents[:-1]:
        pos += len(s)
        bounds.add(pos)
        pos += 1
    return bounds


def piece_bounds(text: str, pieces: list[str]) -> set[int]:
    bounds, pos = set(), 0
    for piece in pieces[:-1]:
        start = text.find(piece.strip(), pos)
        pos = start + len(piece.strip())
        bounds.add(pos)
    return bounds


def splitters() -> dict:
    from compressors import units

    found = {"ragpress (sentencex)": lambda t: [t[s.start:s.end] for s in units.split.__wrapped__(t)]}
    try:
        import pysbd

        seg = pysbd.Segmenter(language="en", clean=False)
        found["pysbd 0.3"] = seg.segment
    except ImportError:
        pass
    try:
        import blingfire

        found["blingfire"] = lambda t: blingfire.text_to_sentences(t).split("\n")
    except ImportError:
        pass
    return found


def main() -> None:
    paras = paragraphs()
    texts = [" ".join(p) for p in paras]
    results = {"data": DATA[-1], "paragraphs": len(paras), "splitters": {}}
    print("| splitter | boundary precision | boundary recall | ms per 10 paragraphs |")
    print("|---|---|---|---|")
    for name, split in splitters().items():
        started = time.perf_counter()
        outs = [split(t) for t in texts]
        ms = (time.perf_counter() - started) / len(texts) * 10 * 1000
        tp = fp = fn = 0
        for sents, text, out in zip(paras, texts, outs):
            gold, got = gold_bounds(sents), piece_bounds(text, out)
            tp, fp, fn = tp + len(gold & got), fp + len(got - gold), fn + len(gold - got)
        row = {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn), "ms_per_10": ms}
        results["splitters"][name] = row
        print(f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {ms:.2f} |")
    out = HERE / "results" / "segmentation.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
