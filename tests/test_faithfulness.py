"""The faithfulness guard: what it accepts as stated by the sources, and what it rejects."""

from __future__ import annotations

import pytest

from compressors import faithfulness as G
from compressors.facts import fold

SOURCE = G.index([
    "Paris\nParis is the capital of France. It has 2,102,650 inhabitants and covers 105.4 km2. "
    "The Louvre received 8.9 million visitors in 2023; tickets cost $22 or 17 euros.",
    "Scott Derrickson\nScott Derrickson (born July 16, 1966) is an American director. "
    "He lives in Los Angeles, California. Two of his films were released on 03/04/2019.",
    "Zoë Saldaña\nZoë Saldaña-Nazario is an actress from New Jersey. She starred in Avatar, "
    "and the Airbus A380 appears in one scene. The race was 5 km long and 45% finished it.",
    "东京\n东京塔于1958年12月23日完工，高333米。北京大学的校长是龚旗煌。",
    "日本\n東京タワーは東京都港区にある電波塔です。",
    "한국\n서울은 대한민국의 수도이며 인구는 약 940만 명이다.",
])


def unsupported(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.text) for f in G.check(text, SOURCE).unsupported]


@pytest.mark.parametrize("text", [
    "Paris has 2102650 inhabitants.",                  # thousands separators dropped
    "Paris has 2,102,650 people.",
    "The Louvre had 8,900,000 visitors.",               # a scale word's value
    "The Louvre had about 8.9 million visitors.",
    "Paris covers 105.4 km2.",
    "Tickets cost 22 dollars.",                         # currency symbol = currency word
    "Tickets cost €17.",
    "The race was 5 kilometres long.",                 # unit spelled out
    "The race was 5km long.",
    "45 percent finished the race.",
    "Two films came out in 2019.",                     # word number
    "Paris has 2.1 million inhabitants.",              # rounding a scale word allows
])
def test_numbers_with_units_that_the_sources_state_pass(text):
    assert unsupported(text) == []


@pytest.mark.parametrize("text, fact", [
    ("Paris has 2,102,651 inhabitants.", "2,102,651"),
    ("Paris has 3 million inhabitants.", "3 million"),      # outside the rounding of 2,102,650
    ("The race was 5 miles long.", "5 miles"),              # same number, other unit
    ("Tickets cost $17.", "$17"),                           # 17 was euros
    ("55% finished the race.", "55%"),
    ("Seven films came out in 2019.", "Seven"),
    ("The Louvre had 9.9 million visitors.", "9.9 million"),
])
def test_numbers_the_sources_do_not_state_are_caught(text, fact):
    assert ("number", fact) in unsupported(text)


@pytest.mark.parametrize("text", [
    "Scott Derrickson was born on 16 July 1966.",
    "Scott Derrickson was born July 16, 1966.",
    "Scott Derrickson was born on 1966-07-16.",
    "Scott Derrickson was born on 16/07/1966.",
    "Scott Derrickson was born in July 1966.",           # less precise than the source: fine
    "Scott Derrickson was born in 1966.",
    "The films came out on 4 March 2019.",               # 03/04/2019 read day-first
    "The films came out on April 3, 2019.",              # ... or month-first
    "东京塔于1958年12月23日完工。",
])
def test_dates_in_other_formats_pass(text):
    assert unsupported(text) == []


@pytest.mark.parametrize("text, fact", [
    ("Scott Derrickson was born on 17 July 1966.", "17 July 1966"),
    ("Scott Derrickson was born in August 1966.", "August 1966"),
    ("Scott Derrickson was born on 1967-07-16.", "1967-07-16"),
    ("东京塔于1958年11月23日完工。", "1958年11月23日"),
])
def test_dates_that_disagree_are_caught(text, fact):
    assert ("date", fact) in unsupported(text)


@pytest.mark.parametrize("text", [
    "Zoë Saldaña starred in Avatar.",
    "Zoe Saldana starred in Avatar.",                    # accents folded
    "ZOË SALDAÑA starred in Avatar.",                     # case folded
    "Saldaña's film Avatar has an Airbus A380 scene.",    # possessive, identifier
    "Scott Derrickson lives in Los Angeles.",
    "However, Scott Derrickson is American.",            # sentence starter skipped
    "Zoë Saldaña-Nazario is an actress.",
    "Zoë Saldaña Nazario is an actress.",                # hyphenated name written apart
])
def test_names_with_accents_and_case_changes_pass(text):
    assert unsupported(text) == []


@pytest.mark.parametrize("text, fact", [
    ("Scott Derrickson played for the Los Angeles Dodgers.", "Los Angeles Dodgers"),
    ("Zoë Derrickson starred in Avatar.", "Zoë Derrickson"),   # names of two documents mixed
    ("Zoë Saldaña flew an Airbus A390.", "A390"),
    ("Scott Derrickson met Björk.", "Björk"),
])
def test_invented_or_mixed_names_are_caught(text, fact):
    kinds = dict((t, k) for k, t in unsupported(text))
    assert fact in kinds


@pytest.mark.parametrize("text", [
    "东京塔高333米。",
    "北京大学的校长是龚旗煌。",
    "東京タワーは港区にある。",
    "서울은 대한민국의 수도이다.",
])
def test_cjk_terms_from_the_sources_pass(text):
    assert unsupported(text) == []


@pytest.mark.parametrize("text, fact", [
    ("东京塔高334米。", "334"),
    ("清华大学的校长是龚旗煌。", "清华大学"),
    ("京北大学的校长是龚旗煌。", "京北大学"),          # source characters, spliced
    ("大阪タワーは港区にある。", "大阪タワー"),
    ("부산은 대한민국의 수도이다.", "부산"),
])
def test_cjk_terms_the_sources_lack_are_caught(text, fact):
    assert fact in [t for _, t in unsupported(text)]


def test_guard_keeps_supported_sentences_and_reports_the_rest():
    out = G.guard(["Paris has 2,102,650 inhabitants.", "Paris was founded in 52 BC by Julius Caesar.",
                   "Scott Derrickson lives in Los Angeles."], SOURCE)
    assert out.kept == ("Paris has 2,102,650 inhabitants.", "Scott Derrickson lives in Los Angeles.")
    assert out.action == "repaired" and len(out.dropped) == 1
    report = out.report()
    assert {"kind": "name", "text": "Julius Caesar"} in report["unsupported"]
    assert {"kind": "number", "text": "52"} in report["unsupported"]
    assert report["facts_checked"] >= 5


def test_guard_actions():
    assert G.guard(["Paris is the capital of France."], SOURCE).action == "passed"
    assert G.guard(["Paris has 7 inhabitants."], SOURCE).action == "failed"
    assert G.guard([], SOURCE).action == "passed"


def test_a_fact_only_in_the_question_is_not_a_source():
    # The guard reads the documents only: a name that appears in nothing it was given fails.
    assert ("name", "Ed Wood") in unsupported("Ed Wood and Scott Derrickson were both American.")


def test_fold_normal_form():
    assert fold("Zoë's") == "zoe" and fold("ÉCOLE") == "ecole" and fold("Saldaña") == "saldana"
