"""Cache-aware prompt assembly."""

from __future__ import annotations

import pytest

from middleware.errors import InvalidArgument
from middleware.generation.prompt import Demonstration, assemble, resolve_template


def test_default_template_puts_stable_parts_first_and_the_question_last():
    demos = [Demonstration("2", "b?", "B"), Demonstration("1", "a?", "A")]
    p = assemble(resolve_template("default"), "Be brief.", "CTX", "Who?", demos)
    assert p.messages() == [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "Question: a?\nAnswer: A\n\nQuestion: b?\nAnswer: B\n\n"
                                                        "Context:\nCTX\n\nQuestion: Who?\nAnswer:"}]


def test_demonstrations_in_any_order_give_the_same_prefix():
    t = resolve_template("")
    a = assemble(t, "S", "C", "q1", [Demonstration("x", "1", "2"), Demonstration("y", "3", "4")])
    b = assemble(t, "S", "C", "q2", [Demonstration("y", "3", "4"), Demonstration("x", "1", "2")])
    shared = a.user[: a.user.index("q1")]
    assert b.user.startswith(shared) and len(shared) > 20


def test_template_text_is_accepted_and_checked():
    assert assemble(resolve_template("Docs: {context}\nQ: {question}"), "", "C", "Q").messages() == [
        {"role": "user", "content": "Docs: C\nQ: Q"}]
    with pytest.raises(InvalidArgument, match="unknown prompt template 'nope'"):
        resolve_template("nope")
    with pytest.raises(InvalidArgument, match=r"unknown field\(s\) \['secret'\]"):
        resolve_template("{secret} {context} {question}")
    with pytest.raises(InvalidArgument, match=r"must contain \{context\}"):
        resolve_template("{question}")
    with pytest.raises(InvalidArgument, match="after {context}"):
        resolve_template("{question}\n{context}")
    with pytest.raises(InvalidArgument, match="not a valid format string"):
        resolve_template("{context} {question")
