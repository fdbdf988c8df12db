"""Training and evaluation examples for the soft-token projector, from files in the
HotpotQA row format (``id``, ``question``, ``answer``, ``context`` as
``[[title, [sentence, ...]], ...]``, ``supporting_facts`` as ``[[title, index], ...]``;
the NQ files of ``shared/data/nq`` have the same shape).

A question-answering example is a question, its answer and its *gold* passages (the
context entries its supporting facts name, in context order); a row whose gold
passages were not retrieved at all gives no example. Reconstruction passages are
every distinct passage of the files.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from middleware.errors import InvalidArgument


@dataclass(frozen=True)
class Passage:
    title: str
    text: str


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    answer: str
    passages: tuple[Passage, ...]
    # Every accepted answer (NQ lists several); ``answer`` is the first.
    answers: tuple[str, ...] = ()


def read_rows(path: Path) -> Iterator[dict]:
    """Rows of a JSONL file; a line that is not a JSON object is an error naming the line."""
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(row, dict) or "question" not in row or "context" not in row:
                raise InvalidArgument(f"{path}:{number}: expected an object with 'question' and 'context'")
            yield row


def passages_of(row: dict) -> list[Passage]:
    """A row's context entries as passages (sentences joined by single spaces)."""
    return [Passage(str(title), " ".join(str(s).strip() for s in sents)) for title, sents in row.get("context", [])]


def qa_example(row: dict) -> QAExample | None:
    gold = {str(title) for title, _ in row.get("supporting_facts", [])}
    passages = tuple(p for p in passages_of(row) if p.title in gold)
    answer = str(row.get("answer", "")).strip()
    if not passages or not answer:
        return None
    answers = tuple(str(a) for a in row.get("answers", [])) or (answer,)
    return QAExample(str(row.get("id", "")), str(row["question"]), answer, passages, answers)


def qa_examples(rows: Iterable[dict]) -> list[QAExample]:
    return [e for e in (qa_example(r) for r in rows) if e is not None]


def with_distractors(example: QAExample, row: dict, n: int, seed: int = 0) -> QAExample:
    """``example`` with ``n`` of its row's other (non-gold) passages added, all in a shuffled order.

    The draw depends only on the seed and the example's id, so it is the same in every run and
    consumes nothing from the training's own random stream. Training on these teaches the
    projector and LM to find the answer among several passages' soft tokens, as a multi-hop
    question's bridge paragraph asks, when most training questions have one gold passage.
    """
    if n <= 0:
        return example
    gold = {(p.title, p.text) for p in example.passages}
    others = [p for p in passages_of(row) if p.text.strip() and (p.title, p.text) not in gold]
    rng = random.Random(int(hashlib.sha1(f"{seed}:{example.id}".encode()).hexdigest(), 16))
    passages = list(example.passages) + rng.sample(others, min(n, len(others)))
    rng.shuffle(passages)
    return QAExample(example.id, example.question, example.answer, tuple(passages), example.answers)


def distinct_passages(rows: Iterable[dict]) -> list[Passage]:
    """Every distinct (title, text) passage, in first-seen order."""
    seen: dict[tuple[str, str], Passage] = {}
    for row in rows:
        for p in passages_of(row):
            if p.text.strip():
                seen.setdefault((p.title, p.text), p)
    return list(seen.values())


def held_out(example_id: str, folds: int = 10) -> bool:
    """The fixed held-out fold (SHA-1 of the id), never trained on: the model card's held-out figures."""
    return int(hashlib.sha1(example_id.encode()).hexdigest(), 16) % folds == 0
