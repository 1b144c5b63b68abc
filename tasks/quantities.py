"""What a word-problem answer says, read as what it is: a number (signed, money, thousands separators, a unit or a
percent after it, a fraction or a mixed number), a clock time, a ratio, or a list of numbers; or nothing, when it
cannot be read. Golds and model answers are read by the same code, so they agree, and graded in their own kind: a
time is never equal to a number that happens to be its hour.

A gold must be one value (or a pure list, `3 and 4`, or ASDiv's `5 (years old); 15 (years old)`: a unit in
brackets is a note, not a value): a gold with several values that are not a list (`5 ft 3 in`,
`12 dogs and 3 cats`) or none (`Tuesday`) is refused, never read as its first number. A model's stated answer
(the text after `The answer is`) is read by its first value, after the last `=` when it shows its arithmetic."""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_DASHES = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u00a0": " ", "\u2009": " ",
                         "\u202f": " "})
_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|mbox)\{[^{}]*\}")
_FRAC = re.compile(r"\\d?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}|\\d?frac(\d)(\d)")
# a single-letter variable next to + - * and a number: "L - 8", "8 + x", "2*n" (units such as "km/h" are words)
_VARIABLE = re.compile(r"(?<![A-Za-z\\])[A-Za-z]\s*[-+*]\s*\d|\d\s*[-+*]\s*[A-Za-z](?![A-Za-z])")
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_MERIDIEM = r"(?:\s*(?P<mer>[aApP])\.?\s?[mM]\b\.?)"
# one value, by the first alternative that matches at a position: a time, a ratio, a mixed number, a fraction,
# a number (a minus is read apart: "5 - 2" is arithmetic, "- 2" a negative number)
_VALUE = re.compile(
    rf"(?P<time>(?<![\d.:])(?P<h>\d{{1,2}}):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?(?![\d:]){_MERIDIEM}?)"
    rf"|(?P<ratio>(?<![\d.:])(?P<ra>{_NUM})\s*:\s*(?P<rb>{_NUM})(?![\d:]))"
    rf"|(?P<mixed>(?<![\d.,/])(?P<whole>\d+)\s+(?P<mn>\d+)\s*/\s*(?P<md>\d+)(?![\d/]|\.\d))"
    rf"|(?P<frac>(?<![\d.,/])(?P<fn>\d+)\s*/\s*(?P<fd>\d+)(?![\d/]|\.\d))"
    rf"|(?P<num>(?<![\d.]){_NUM}(?![\d]))")
# the common case, read without the general pattern: a whole number (a money sign and separators allowed) ending the
# text; it is read on every sample, and the general reader costs three times as much
_PLAIN = re.compile(r"\s*\$?(\d{1,3}(?:,\d{3})+|\d+)\s*\.?\s*$")
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(rf"\b{_MONTH}\s+\d|\d(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?![a-z])", re.IGNORECASE)  # a date
_BRACKETED_NEGATIVE = re.compile(r"-\s*\(\s*([\d.,/ ]+?)\s*\)")  # -(1/3): the minus applies to the whole bracket
_UNIT_NOTE = re.compile(r"\([^()\d]*\)")  # "(years old)", "(sq. ft)": a unit in brackets, no value in it
_LIST_SEP = re.compile(r"^\s*(?:,|;|&|\band\b|\bor\b)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Value:
    """A read answer. kind: number | time | ratio | list. For a time, `parts` is (hour, minute, second) and
    `clock24` says whether the hour is known on a 24-hour clock (a.m./p.m. given, or an hour past 12 or written 0x).
    A time read to the minute does not equal one given to the second unless its seconds are 0."""

    kind: str
    parts: tuple[Fraction, ...]
    clock24: bool = False

    def text(self) -> str:
        """The canonical answer string (votes are counted over it); reading it back gives an equal value."""
        if self.kind == "number":
            return number_text(self.parts[0])
        if self.kind == "time":
            h, m, sec = (int(x) for x in self.parts)
            seconds = f":{sec:02d}" if sec else ""
            return f"{h:02d}:{m:02d}{seconds}" if self.clock24 else f"{h}:{m:02d}{seconds}"
        if self.kind == "ratio":
            return ":".join(number_text(p) for p in self.parts)
        return ", ".join(number_text(p) for p in self.parts)

    def equals(self, other: "Value") -> bool:
        # "10:12" may be a time or a ratio; beside a ratio, a time with no a.m./p.m. is read as the ratio it writes
        if {self.kind, other.kind} == {"time", "ratio"} and not (self.clock24 or other.clock24):
            a, b = (Value("ratio", v.parts[:2]) for v in (self, other))
            return not any(v.kind == "time" and v.parts[2] for v in (self, other)) and a.equals(b)
        if self.kind != other.kind or len(self.parts) != len(other.parts):
            return False
        if self.kind == "time":
            if self.clock24 and other.clock24:
                return self.parts == other.parts
            return (self.parts[0] % 12, *self.parts[1:]) == (other.parts[0] % 12, *other.parts[1:])
        if self.kind == "ratio":  # 2:4 is 1:2
            (a, b), (c, d) = self.parts, other.parts
            return a * d == b * c and (b != 0 or d != 0 or a == c)
        return all(_close(a, b) for a, b in zip(self.parts, other.parts))


def _close(a: Fraction, b: Fraction) -> bool:
    return abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))


def number_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.10g}"
    return text if Fraction(text) == value else f"{value.numerator}/{value.denominator}"


def _clean(s: str) -> str:
    s = s.translate(_DASHES)
    if "\\" in s or "{" in s:  # LaTeX: most answers have none
        s = s.replace("\\!", "").replace("{,}", ",").replace("\\$", "$").replace("\\%", "%")
        s = _LATEX_TEXT.sub(" ", s)
        s = _FRAC.sub(lambda m: f"{m.group(1) or m.group(3)}/{m.group(2) or m.group(4)}", s)
        s = s.replace("{", " ").replace("}", " ")
    return s


def _negative(s: str, start: int) -> bool:
    """A minus right before a value (spaces allowed) that does not follow a number or a bracket: a sign."""
    before = s[:start].rstrip()
    if not before.endswith("-"):
        return False
    rest = before[:-1].rstrip()
    return not rest or not (rest[-1].isdigit() or rest[-1] in ")]")


def _one(m: re.Match, s: str) -> Value | None:
    sign = -1 if _negative(s, m.start()) else 1
    if m.group("time"):
        h, mi, sec = int(m.group("h")), int(m.group("m")), int(m.group("s") or 0)
        mer = (m.group("mer") or "").lower()
        if mer and not 1 <= h <= 12:
            return None  # "15:30 p.m." says two things
        if mer:
            h = h % 12 + (12 if mer == "p" else 0)
        if h > 23:
            return None
        known = bool(mer) or h > 12 or m.group("h").startswith("0")
        return Value("time", (Fraction(h), Fraction(mi), Fraction(sec)), clock24=known)
    if m.group("ratio"):
        return Value("ratio", (Fraction(m.group("ra").replace(",", "")), Fraction(m.group("rb").replace(",", ""))))
    if m.group("mixed"):
        d = int(m.group("md"))
        if d == 0:
            return None
        return Value("number", (sign * (int(m.group("whole")) + Fraction(int(m.group("mn")), d)),))
    if m.group("frac"):
        d = int(m.group("fd"))
        if d == 0:
            return None
        return Value("number", (sign * Fraction(int(m.group("fn")), d),))
    return Value("number", (sign * Fraction(m.group("num").replace(",", "")),))


def _values(s: str) -> list[tuple[re.Match, Value | None]]:
    return [(m, _one(m, s)) for m in _VALUE.finditer(s)]


def _as_list(s: str, found: list[tuple[re.Match, Value | None]]) -> Value | None:
    """`3 and 4`, `3, 4`: numbers joined by nothing but separators (and the same sign rules) make a list."""
    if len(found) < 2 or any(v is None or v.kind != "number" for _, v in found):
        return None
    for (a, _), (b, _) in zip(found, found[1:]):
        between = s[a.end():b.start()].replace("-", "") if _negative(s, b.start()) else s[a.end():b.start()]
        if not _LIST_SEP.match(between):
            return None
    head, tail = s[:found[0][0].start()], s[found[-1][0].end():]
    if re.search(r"[A-Za-z]", head.replace("-", "")) or re.search(r"[A-Za-z]{2,}", tail):
        return None  # words around the numbers: not a bare list
    return Value("list", tuple(v.parts[0] for _, v in found))


def read_gold(text: str) -> Value | None:
    """A gold answer as one value, or None when it cannot be read as one (no value, or several that are not a
    list, or an expression in a variable)."""
    s = _UNIT_NOTE.sub(" ", _BRACKETED_NEGATIVE.sub(r"-\1", _clean(str(text)))).strip()
    if not s or _VARIABLE.search(s) or _DATE.search(s):
        return None
    found = _values(s)
    if len(found) == 1:
        return found[0][1]
    return _as_list(s, found)


def read_stated(text: str) -> Value | None:
    """The value a model states (the text after its answer cue, or a boxed answer): a pure list if it is one,
    else the first value after the last `=`."""
    plain = _PLAIN.match(text)
    if plain:
        return Value("number", (Fraction(int(plain.group(1).replace(",", ""))),))
    s = _clean(text)
    if _VARIABLE.search(s):
        return None
    if "=" in s:
        s = s.rsplit("=", 1)[1]
    clause = re.split(r"(?<=\D)\.(?:\s|$)|\n", s, maxsplit=1)[0]  # the sentence the answer is in
    found = _values(clause)
    if not found:
        return None
    listed = _as_list(clause, found)
    return listed if listed is not None else found[0][1]


def last_value(text: str) -> Value | None:
    """The last value in free text (a completion with no answer cue); only the last matches are read."""
    s = _clean(text)
    for m in reversed(list(_VALUE.finditer(s))):
        value = _one(m, s)
        if value is not None:
            return value
    return None
