"""Checkable facts in text: numbers (with units and scales), dates, names, identifiers, CJK terms.

The faithfulness guard (:mod:`compressors.faithfulness`) extracts these from a
summary and looks each one up in the source documents. Everything is compared in
a normal form, so that a faithful rewording passes:

- numbers by value: ``2,102,650`` = ``2102650`` = ``2.1 million`` only when equal;
  ``two`` = ``2``; ordinals and decades by their number (``21st`` = 21, ``1990s`` = 1990);
  a unit or currency, when the summary states one, must be the source's
  (``5 km`` = ``5 kilometres`` != ``5 miles``; ``$5`` = ``5 dollars``);
- dates by (year, month, day) whatever the format (``16 July 1966``,
  ``July 16, 1966``, ``1966-07-16``, ``16/07/1966`` in either order, ``1966年7月16日``);
  a summary date may be less precise than the source's, never more;
- names and words by NFKC, case folding and accent folding (``Zoë`` = ``Zoe``),
  possessives dropped (``Wood's`` = ``Wood``);
- CJK terms (Han, Katakana) and Hangul word stems by their characters (see the guard).

Extraction is regular-expression based: it is a safety net tuned to reject,
not a parser; a fact it cannot read is not checked (documented in the tests).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MONTHS = {name: i + 1 for i, names in enumerate([
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
    ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
    ("october", "oct"), ("november", "nov"), ("december", "dec")]) for name in names}
_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"

WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
WORD_NUMBERS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                     "ninety": 90, "hundred": 100, "dozen": 12})
# "one" is usually a pronoun ("one of the films"): a summary's "one" is not checked.
_UNCHECKED_WORDS = {"one", "zero"}
SCALES = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12, "bn": 10**9}

# Canonical unit names; a word may stand for more than one ("pounds": money or weight).
_UNIT_WORDS: dict[str, frozenset[str]] = {}
for _canon, _words in {
    "km": "km kms kilometre kilometres kilometer kilometers", "m": "metre metres meter meters",
    "cm": "cm centimetre centimetres centimeter centimeters", "mm": "mm millimetre millimetres",
    "mi": "mi mile miles", "ft": "ft feet foot", "inch": "inch inches", "kg": "kg kgs kilogram kilograms",
    "lb": "lb lbs", "t": "tonne tonnes", "ha": "ha hectare hectares", "acre": "acre acres",
    "km2": "km2 sqkm", "mph": "mph", "kmh": "km/h kph", "degree": "°c °f degrees",
    "%": "% percent per-cent", "usd": "dollar dollars usd us$ $", "eur": "euro euros eur €",
    "gbp": "gbp £ sterling", "jpy": "yen ¥ jpy", "w": "watt watts mw kw", "byte": "gb mb tb kb",
}.items():
    for _w in _words.split():
        _UNIT_WORDS[_w] = frozenset({_canon})
_UNIT_WORDS["pounds"] = _UNIT_WORDS["pound"] = frozenset({"gbp", "lb"})
_UNIT_WORDS["per cent"] = frozenset({"%"})
_UNIT = r"(?:" + "|".join(re.escape(w) for w in sorted(_UNIT_WORDS, key=len, reverse=True)) + r")"
_CURRENCY = r"(?:US\$|\$|€|£|¥|USD|EUR|GBP)"

# Latin letters and digits before a figure make it part of a word ("A380"); CJK does not ("第3").
_NOT_AFTER_WORD = r"(?<![0-9A-Za-z_\u00c0-\u024f])(?<!\d[.,])"
_NOT_BEFORE_LETTER = r"(?!(?![\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af])[^\W\d_])"
_SCALE = r"(?P<scale>hundred|thousand|million|billion|trillion|bn)\b"
NUMBER = re.compile(
    _NOT_AFTER_WORD + r"(?P<cur>" + _CURRENCY + r")?\s?"
    r"(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>[.,]\d+)?(?P<suffix>st|nd|rd|th|s)?"
    r"(?:[\s-]?" + _SCALE + r")?(?:[\s-]?(?P<unit>" + _UNIT + r"))?" + _NOT_BEFORE_LETTER, re.I)
_WORD_NUMBER = re.compile(r"\b(?P<word>" + "|".join(WORD_NUMBERS) + r")\b(?:[\s-]" + _SCALE + r")?"
                          r"(?:[\s-](?P<unit>" + _UNIT + r"))?" + _NOT_BEFORE_LETTER, re.I)

_D = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?"
_Y = r"(?P<y>\d{4})"
_M = r"(?P<m>" + _MONTH + r")"
DATE_PATTERNS = [
    re.compile(r"(?<!\d)" + _D + r"\s+(?:of\s+)?" + _M + r",?\s+" + _Y + r"(?!\d)", re.I),   # 16 July 1966
    re.compile(r"\b" + _M + r"\s+" + _D + r"(?:,\s*|\s+)" + _Y + r"(?!\d)", re.I),            # July 16, 1966
    re.compile(r"\b" + _M + r",?\s+" + _Y + r"(?!\d)", re.I),                                 # July 1966
    re.compile(r"(?<!\d)" + _Y + r"-(?P<mn>\d{1,2})-(?P<dn>\d{1,2})(?!\d)"),                   # 1966-07-16
    re.compile(r"(?<![\d/.])(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.]" + _Y + r"(?!\d)"),          # 16/07/1966
    re.compile(_Y + r"\s*年\s*(?P<mn>\d{1,2})\s*月(?:\s*(?P<dn>\d{1,2})\s*日)?"),              # 1966年7月16日
]

WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
# Tokens that mix letters and digits: model numbers, codes ("A380", "COVID-19", "S/S").
IDENTIFIER = re.compile(r"(?<![\w-])(?=[\w-]*[^\W\d_])(?=[\w-]*\d)[\w]+(?:-[\w]+)*")
CJK_TERM = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u30a0-\u30ff\u31f0-\u31ff]+")
HANGUL_WORD = re.compile(r"[\uac00-\ud7af]+")
# Han characters that are grammar rather than content; CJK terms are split at them.
_CJK_FUNCTION = set("的了是在和与及也有为被将把从对而并或等个們们"
                    "这那其之于以所就都还又很更最已")
_HANGUL_PARTICLES = sorted("은 는 이 가 을 를 의 에 에서 에게 와 과 도 로 으로 만 까지 부터 "
                           "이다 입니다 였다 이었다 했다 하다 한 된 인".split(), key=len, reverse=True)
# Capitalised words that begin sentences without naming anything.
STARTERS = frozenset(
    "a an the it its he she his her they their them this that these those there here both each either "
    "neither however in on at by for from with as after before during while when where which who whose "
    "what why how although though since because also but and or so yet then thus therefore moreover "
    "furthermore additionally meanwhile later earlier today however some many most all several other "
    "another such no not only one two three first second finally overall according based unlike like "
    "despite among between i we you our your my summary answer note".split())


@dataclass(frozen=True)
class Fact:
    """A checkable statement in a text: ``kind`` is number, date, name, identifier or cjk."""

    kind: str
    text: str
    start: int
    end: int
    # Normal form, by kind: ("2102650", frozenset({"usd"}), tolerance), (1966, 7, 16),
    # ("scott", "derrickson"), ("a380",), ("东京塔",).
    key: tuple


def normalise(text: str) -> str:
    """NFKC, typographic quotes and dashes made plain (the one normal form of every check)."""
    text = unicodedata.normalize("NFKC", text)
    return text.translate(_PLAIN)


_PLAIN = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                        "\u2212": "-", "\u00a0": " ", "\u202f": " "})


def fold(word: str) -> str:
    """Case- and accent-folded word, possessive dropped: ``Zoë's`` -> ``zoe``."""
    word = re.sub(r"'s$", "", word.replace("\u2019", "'"))
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    # Recomposed, so that scripts whose letters decompose without accents (Hangul) stay whole.
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _value(digits: str, frac: str | None, scale: str | None) -> Decimal | None:
    try:
        value = Decimal(digits.replace(",", "") + ("." + frac[1:] if frac else ""))
    except InvalidOperation:
        return None
    if scale:
        value *= SCALES[scale.lower()]
    return value


def canonical(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _units(cur: str | None, unit: str | None) -> frozenset[str]:
    out: set[str] = set()
    for part in (cur, unit):
        if part:
            out |= _UNIT_WORDS.get(" ".join(part.lower().split()), frozenset())
    return frozenset(out)


def numbers(text: str, source: bool = False) -> list[Fact]:
    """Numbers in ``text`` (already :func:`normalise`d) with their units.

    ``key`` is (value, units, tolerance): a figure stated with a scale word
    ("2.1 million") stands for any value it rounds (tolerance half its last digit).
    With ``source``, every reading of an ambiguous figure is kept ("3,5" is 3.5,
    35, 3 and 5), so that the lookup side is generous and the summary side strict.
    """
    out: list[Fact] = []
    for m in NUMBER.finditer(text):
        digits, frac, scale = m["int"], m["frac"], m["scale"]
        units = _units(m["cur"], m["unit"])
        if frac and frac.startswith(","):
            readings = [(digits, None), (frac[1:], None)]
            if source:
                readings += [(digits, "." + frac[1:]), (digits + frac[1:], None)]
        else:
            readings = [(digits, frac)]
        for d, f in readings:
            value = _value(d, f, scale)
            if value is not None:
                tol = _tolerance(f, scale) if not source else Decimal(0)
                out.append(Fact("number", m.group().strip(), m.start(), m.end(), (canonical(value), units, tol)))
        if source and scale:  # "2.1 million" also stands for the bare "2.1"
            value = _value(digits, frac if frac and frac.startswith(".") else None, None)
            if value is not None:
                out.append(Fact("number", m.group(), m.start(), m.end(), (canonical(value), frozenset(), Decimal(0))))
    for m in _WORD_NUMBER.finditer(text):
        word = m["word"].lower()
        if not source and word in _UNCHECKED_WORDS and not m["scale"]:
            continue
        value = Decimal(WORD_NUMBERS[word]) * (SCALES[m["scale"].lower()] if m["scale"] else 1)
        tol = _tolerance(None, m["scale"]) if not source else Decimal(0)
        out.append(Fact("number", m.group(), m.start(), m.end(), (canonical(value), _units(None, m["unit"]), tol)))
    return out


def _tolerance(frac: str | None, scale: str | None) -> Decimal:
    if not scale or SCALES[scale.lower()] < 1000:
        return Decimal(0)  # "two hundred" is 200, not "about 200"
    places = len(frac) - 1 if frac else 0
    return Decimal(SCALES[scale.lower()]) / (Decimal(10) ** places) / 2


def dates(text: str, source: bool = False) -> list[Fact]:
    """Dates as (year, month, day) with ``None`` for an absent part; numeric d/m/y dates
    give both readings (day-month and month-day) when both are valid."""
    out: list[Fact] = []
    taken: list[tuple[int, int]] = []
    for pattern in DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue  # inside a longer date already read ("16 July 1966" before "July 1966")
            for key in _date_keys(m):
                out.append(Fact("date", m.group(), m.start(), m.end(), key))
            taken.append((m.start(), m.end()))
    return out


def _date_keys(m: re.Match) -> list[tuple]:
    groups = m.groupdict()
    year = int(groups["y"])
    if groups.get("m"):
        month = MONTHS[groups["m"].lower().rstrip(".")]
        day = int(groups["d"]) if groups.get("d") else None
        return [(year, month, day)] if day is None or 1 <= day <= 31 else []
    if groups.get("mn"):
        month, day = int(groups["mn"]), int(groups["dn"]) if groups.get("dn") else None
        return [(year, month, day)] if 1 <= month <= 12 else []
    a, b = int(groups["a"]), int(groups["b"])
    keys = {(year, mo, d) for d, mo in ((a, b), (b, a)) if 1 <= mo <= 12 and 1 <= d <= 31}
    return sorted(keys)


def words(text: str) -> list[tuple[str, int, int]]:
    """Word tokens (letters, inner apostrophes and hyphens) with their spans."""
    return [(m.group(), m.start(), m.end()) for m in WORD.finditer(text)]


def names(sentence: str) -> list[Fact]:
    """Capitalised words and runs of them in one sentence; a sentence's first word is
    skipped when it is a common starter ("The", "However")."""
    out: list[Fact] = []
    run: list[tuple[str, int, int]] = []
    tokens = words(sentence)

    def close() -> None:
        if run:
            out.append(Fact("name", sentence[run[0][1]:run[-1][2]], run[0][1], run[-1][2],
                            tuple(fold(w) for w, _, _ in run)))
            run.clear()

    for i, (word, start, end) in enumerate(tokens):
        capital = word[0].isupper()
        starter = i == 0 and fold(word) in STARTERS
        if not capital or starter:
            close()
            continue
        gap = sentence[run[-1][2]:start] if run else ""
        if run and gap not in (" ", "-"):
            close()
        run.append((word, start, end))
    close()
    return out


def identifiers(text: str) -> list[Fact]:
    """Tokens of letters and digits ("A380"), except figures the number reader covers
    ("5km", "1990s", "21st") and CJK dates ("2019年")."""
    out = []
    for m in IDENTIFIER.finditer(text):
        token = m.group()
        if NUMBER.fullmatch(token) or CJK_TERM.search(token) or HANGUL_WORD.search(token):
            continue
        out.append(Fact("identifier", token, m.start(), m.end(), (fold(token),)))
    return out


def cjk_terms(text: str) -> list[Fact]:
    """Han/Katakana terms (split at grammatical characters) and Hangul word stems."""
    out: list[Fact] = []
    for m in CJK_TERM.finditer(text):
        start = m.start()
        for piece in re.split("([" + "".join(_CJK_FUNCTION) + "])", m.group()):
            if len(piece) >= 2 and piece[0] not in _CJK_FUNCTION:
                out.append(Fact("cjk", piece, start, start + len(piece), (piece,)))
            start += len(piece)
    for m in HANGUL_WORD.finditer(text):
        stem = hangul_stem(m.group())
        if len(stem) >= 2:
            out.append(Fact("cjk", stem, m.start(), m.start() + len(stem), (stem,)))
    return out


def hangul_stem(word: str) -> str:
    """A Korean word without its trailing particle ("서울에서" -> "서울")."""
    for particle in _HANGUL_PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= 2:
            return word[: -len(particle)]
    return word
