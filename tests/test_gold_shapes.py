"""Golds and stated answers in the shapes public word-problem sets write them (GSM8K, SVAMP, ASDiv, MAWPS): each read
as what it is or refused, never as its first number; a right output graded right and a wrong one wrong, in kind."""
import json

import pytest

from tests.test_cli import tts
from tts import tasks
from tts.kernel.errors import DataError
from tts.tasks.extract import extract_answer, is_correct
from tts.tasks.mapping import numeric_gold

# gold as written -> its canonical reading (None: refused)
GOLDS = [
    ("72", "72"), ("#### 1,000", "1000"), ("$1,234.50", "1234.5"), ("18 km", "18"), ("75%", "75"),
    ("9 (apples)", "9"), ("0.5", "0.5"), (".25", "0.25"), ("3/4", "0.75"), ("1 1/2", "1.5"), ("-3", "-3"),
    ("- 2", "-2"), ("\u22127", "-7"), ("\u2013 4.5", "-4.5"), ("3:30 p.m.", "15:30"), ("10:05 AM", "10:05"),
    ("12:50", "12:50"), ("07:15", "07:15"), ("5:6", "5:6"), ("2 : 3", "2:3"), ("3 and 4", "3, 4"),
    ("12, 15", "12, 15"), ("1.", "1"),
    # ASDiv (the real file, dataset/ASDiv.xml): two answers with their units in brackets, a time to the second
    ("5 (years old); 15 (years old)", "5, 15"), ("8 (ft); 128 (sq. ft)", "8, 128"),
    ("3.5 (dollars); 1.8 (dollars)", "3.5, 1.8"), ("9:03:36 a.m.", "09:03:36"), ("6:01:00 p.m.", "18:01"),
    ("-(1/3)", "-1/3"), ("6th", "6"), ("The 60th caller.", "60"),
    # refused: words, several quantities that are not a list, arithmetic, a variable
    ("Tuesday", None), ("yes", None), ("5 ft 3 in", None), ("12 dogs and 3 cats", None), ("5 - 2", None),
    ("x + 3", None), ("", None), ("They are equal", None), ("11:55 p.m. on 24 December 2014.", None),
    ("Rug B", None), ("February 3rd", None), ("3 March", None), ("the 4th of July", None),
]


@pytest.mark.parametrize("gold,reading", GOLDS)
def test_gold_is_read_as_what_it_is_or_refused(gold, reading):
    assert numeric_gold(gold) == reading


# (gold as written, a right model output, a wrong model output that the old first-number reading graded right)
GRADED = [
    ("3:30 p.m.", "She arrives at 3:30 in the afternoon. The answer is 3:30 p.m.", "The answer is 3:45."),
    ("3:30 p.m.", "The answer is 15:30.", "The answer is 3."),
    ("12:50", "The answer is 12:50.", "The answer is 12."),
    ("5:6", "So the ratio is 5:6. The answer is 5:6.", "The answer is 5."),
    ("5:6", "The answer is 10:12.", "The answer is 5:7."),
    ("1 1/2", "The answer is 1 1/2.", "The answer is 1."),
    ("1 1/2", "The answer is 3/2.", "The answer is 1 1/4."),
    ("- 2", "The answer is - 2.", "The answer is 2."),
    ("\u22127", "The temperature falls to \u22127 degrees. The answer is \u22127.", "The answer is 7."),
    ("$1,234.50", "The answer is $1,234.50.", "The answer is $1,234."),
    ("18 km", "The answer is 18 km.", "The answer is 81 km."),
    ("75%", "The answer is 75%.", "The answer is 7.5%."),
    ("3 and 4", "The answer is 3 and 4.", "The answer is 3."),
    ("3 and 4", "The answers are 3, 4. The answer is 3, 4", "The answer is 4 and 3."),
    ("8", "5 + 3 = 8. The answer is 5 + 3 = 8.", "The answer is 5 + 3."),
    ("42", "#### 42", "We get 41 in the end"),
    ("5 (years old); 15 (years old)", "The answer is 5 and 15.", "The answer is 5."),
    ("5 (years old); 15 (years old)", "The answer is 5, 15.", "The answer is 15 and 5."),
    ("9:03:36 a.m.", "The answer is 9:03:36 a.m.", "The answer is 9:03 a.m."),
    ("9:03:36 a.m.", "The answer is 09:03:36.", "The answer is 9:03:36 p.m."),
]


@pytest.mark.parametrize("gold,right,wrong", GRADED)
def test_right_output_graded_right_and_wrong_output_wrong(gold, right, wrong):
    g = numeric_gold(gold)
    assert g is not None
    assert is_correct(extract_answer(right), g), (extract_answer(right), g)
    assert not is_correct(extract_answer(wrong), g), (extract_answer(wrong), g)


def test_a_time_is_not_a_number_and_a_ratio_is_not_a_time():
    assert not is_correct("3", numeric_gold("3:00 p.m."))
    assert not is_correct(numeric_gold("5:6"), numeric_gold("5"))
    assert is_correct(numeric_gold("2:4"), numeric_gold("1:2"))  # a ratio equals its reduced form


def _write(path, golds):
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Question {i}?", "answer": g}) + "\n"
                            for i, g in enumerate(golds)))
    return path


def test_a_file_with_unreadable_golds_is_one_error_naming_the_count_and_first_ids(tmp_path):
    path = _write(tmp_path / "d.jsonl", ["12", "Tuesday", "3:30 p.m.", "5 ft 3 in", "7"])
    with pytest.raises(DataError) as e:
        tasks.get("numeric").load(path)
    message = str(e.value)
    assert "2 row(s)" in message and "q1" in message and "q3" in message and "--skip-unreadable-golds" in message
    problems, skipped = tasks.get("numeric").load_checked(path, skip_unreadable=True)
    assert [p.id for p in problems] == ["q0", "q2", "q4"] and [p.gold for p in problems] == ["12", "15:30", "7"]
    assert [(s["id"], s["gold"]) for s in skipped] == [("q1", "Tuesday"), ("q3", "5 ft 3 in")]


def test_cli_refuses_then_skips_counting_and_listing(tmp_path):
    path = _write(tmp_path / "d.jsonl", ["12", "Tuesday", "3:30 p.m.", "5 ft 3 in", "7"])
    r = tts("eval", "--engine", "sim", "--task", "numeric", "--data", str(path), "-n", "2", "--no-progress",
            "--run-id", "r", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "2 row(s)" in r.stderr
    assert not (tmp_path / "results" / "r").exists()  # refused before a folder or an engine
    r = tts("eval", "--engine", "sim", "--task", "numeric", "--data", str(path), "-n", "2", "--no-progress",
            "--run-id", "r", "--skip-unreadable-golds", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "results" / "r"
    assert json.loads((run / "summary.json").read_text())["unreadable_golds"] == 2
    listed = [json.loads(x)["id"] for x in (run / "unreadable_golds.jsonl").read_text().splitlines()]
    assert listed == ["q1", "q3"] and "2 rows skipped" in r.stdout
    assert len((run / "results.jsonl").read_text().splitlines()) == 3
