"""RagpressExampleSelector: a LangChain BaseExampleSelector in a FewShotPromptTemplate,
in-process and against a real server, sync and async."""

from __future__ import annotations

import pytest
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate

from middleware.errors import InvalidArgument
from middleware.integrations.langchain import RagpressExampleSelector
from middleware.library import Ragpress
from middleware.settings import Settings
from tests.servers import ThreadedServer

EXAMPLES = [
    {"question": "Who wrote Hamlet ?", "answer": "Shakespeare", "kind": "person", "source": "quiz-1"},
    {"question": "Who painted the Mona Lisa ?", "answer": "Leonardo", "kind": "person", "source": "quiz-2"},
    {"question": "Where is the Eiffel Tower ?", "answer": "Paris", "kind": "location", "source": "quiz-3"},
    {"question": "How many legs does a spider have ?", "answer": "eight", "kind": "number", "source": "quiz-4"},
]
EXAMPLE_PROMPT = PromptTemplate.from_template("Q: {question}\nA: {answer}")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Ragpress(Settings(embedding_model="hashing", data_dir=str(tmp_path_factory.mktemp("lc-examples"))))


def _prompt(selector) -> FewShotPromptTemplate:
    return FewShotPromptTemplate(example_selector=selector, example_prompt=EXAMPLE_PROMPT,
                                 suffix="Q: {question}\nA:", input_variables=["question"])


def test_inline_examples_fill_a_few_shot_prompt_within_the_token_budget(engine):
    selector = RagpressExampleSelector(examples=EXAMPLES, engine=engine, input_key="question", output_key="answer",
                                       k=3, budget=30, model="gpt-4o", template="Q: {input}\nA: {output}\n\n")
    text = _prompt(selector).format(question="Who painted the ceiling ?")
    assert text.endswith("Q: Who painted the Mona Lisa ?\nA: Leonardo\n\nQ: Who painted the ceiling ?\nA:")
    result = selector.select_result({"question": "Who painted the ceiling ?"})
    tok = engine.models.tokenizers.get("gpt-4o")
    assert result.selected_tokens == tok.count(result.prompt) <= 30
    # The examples come back whole, extra keys included.
    picked = selector.select_examples({"question": "Who painted the ceiling ?"})
    assert picked[-1] == EXAMPLES[1]


async def test_a_named_pool_is_shared_and_add_example_upserts(engine):
    writer = RagpressExampleSelector(pool="quiz", engine=engine, input_key="question", output_key="answer",
                                     label_key="kind", id_key="source")
    for example in EXAMPLES[:2]:
        assert writer.add_example(example) == example["source"]
    await writer.aadd_example(EXAMPLES[2])
    reader = RagpressExampleSelector(pool="quiz", engine=engine, input_key="question", output_key="answer",
                                     method="balanced", k=2)
    picked = await reader.aselect_examples({"question": "Where was Hamlet written ?"})
    assert {p["kind"] for p in picked} == {"person", "location"}
    assert engine.demonstrations.pools.get("quiz", "default").labels() == {"person": 2, "location": 1}


def test_remote_selector_meets_the_same_contract(engine):
    with ThreadedServer(engine) as srv:
        remote = RagpressExampleSelector(target=srv.address, tenant="lc", pool="remote-quiz", input_key="question",
                                         output_key="answer", k=1)
        for example in EXAMPLES:
            remote.add_example(example)
        assert _prompt(remote).format(question="How many arms does an octopus have ?").startswith(
            "Q: How many legs does a spider have ?\nA: eight")


def test_bad_construction_and_examples_fail_clearly(engine):
    with pytest.raises(InvalidArgument, match="not both"):
        RagpressExampleSelector(pool="p", examples=EXAMPLES, engine=engine)
    selector = RagpressExampleSelector(examples=[], engine=engine, input_key="question")
    with pytest.raises(InvalidArgument, match="example has no 'question' key"):
        selector.add_example({"q": "x"})
    with pytest.raises(InvalidArgument, match="the pool is empty"):
        selector.select_examples({"question": "x"})
