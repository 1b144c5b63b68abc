"""Standard benchmark sets by name: the packaged ones, hub-format files offline, field mappings, clear errors."""
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tts import tasks
from tts.kernel.errors import DataError
from tts.tasks.mapping import Fields

# One row of each set as its hub dataset has it (field names and types as the hub's parquet files carry them)
HUB_ROWS = {
    "gsm8k": {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
    "math500": {"problem": "What is $\\frac{1}{2}+\\frac{1}{4}$?", "solution": "It is \\boxed{\\frac34}.",
                "answer": "\\frac{3}{4}", "subject": "Algebra", "level": 1, "unique_id": "test/algebra/1.json"},
    "aime24": {"id": 60, "problem": "Find $x$ if $x+1=74$.", "solution": "So $x=\\boxed{073}$.", "answer": "73",
               "url": "https://example.org", "year": "2024"},
    "aime25": {"problem": "Find $2\\cdot 35$.", "answer": "70", "id": "0"},
    "amc23": {"id": 0, "question": "How many miles? $45$ apart, $18$ and $12$ mph.", "answer": 27.0,
              "url": "https://example.org"},
    "svamp": {"ID": "chal-1", "Body": "Each pack has 6 eggs. There are 3 packs.", "Question": "How many eggs?",
              "Equation": "( 6.0 * 3.0 )", "Answer": 18.0, "Type": "Multiplication",
              "question_concat": "Each pack has 6 eggs. There are 3 packs. How many eggs?"},
    "humaneval": {"task_id": "HumanEval/0", "prompt": "def add(a, b):\n    \"\"\"\n    >>> add(1, 2)\n    3\n    \"\"\"\n",
                  "canonical_solution": "    return a + b\n", "test": "def check(f):\n    assert f(1, 2) == 3\n",
                  "entry_point": "add"},
    "mbpp": {"task_id": 11, "text": "Write a function to add two numbers.", "code": "def add(a, b):\n    return a + b",
             "test_list": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"], "test_setup_code": "",
             "challenge_test_list": []},
}
GOLD = {"gsm8k": "7", "math500": "\\frac{3}{4}", "aime24": "73", "aime25": "70", "amc23": "27", "svamp": "18",
        "humaneval": None, "mbpp": None}


def write(path, rows):
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("fmt", ["parquet", "json", "jsonl"])
@pytest.mark.parametrize("name", sorted(HUB_ROWS))
def test_every_standard_set_reads_its_hub_format_offline(tmp_path, name, fmt):
    row = HUB_ROWS[name]
    key = next((k for k in ("id", "ID", "task_id", "unique_id") if k in row), None)
    other = dict(row) if key is None else {**row, key: row[key] + 1 if isinstance(row[key], int) else row[key] + "b"}
    [a, b] = tasks.get(name).load(write(tmp_path / f"{name}.{fmt}", [row, other]))
    assert a.gold == GOLD[name] and a.id != b.id
    if name == "svamp":
        assert a.question == "Each pack has 6 eggs. There are 3 packs. How many eggs?"  # the body is not dropped
    if name in ("humaneval", "mbpp"):
        assert a.meta["entry_point"] == "add"


@pytest.mark.parametrize("name,size,first_gold", [("gsm8k", 1319, "18"), ("humaneval", 164, None),
                                                  ("aime24", 30, None), ("amc23", 40, None), ("demo", 20, "12")])
def test_packaged_sets_are_the_real_sets(name, size, first_gold, capsys):
    problems = tasks.get(name).load()
    assert len(problems) == size and len({p.id for p in problems}) == size
    if first_gold:
        assert problems[0].gold == first_gold
    assert "warning" not in capsys.readouterr().err


def test_packaged_math_golds_are_graded_by_their_own_task():
    aime = tasks.get("aime24")
    problems = aime.load()
    assert all(p.gold and aime.grade(p, f"\\boxed{{{p.gold}}}") for p in problems)
    assert not aime.grade(problems[0], "\\boxed{-1}")


def test_a_hub_dataset_in_the_hubs_layout_loads_through_datasets(tmp_path, monkeypatch, capsys):
    """The `datasets` code path itself, on a local folder laid out as a hub dataset repository."""
    from tts.tasks import Source, sources

    repo = tmp_path / "MATH-500"
    (repo / "data").mkdir(parents=True)
    rows = [{**HUB_ROWS["math500"], "unique_id": f"test/{i}.json"} for i in range(3)]
    write(repo / "data" / "test-00000-of-00001.parquet", rows)
    monkeypatch.setattr(sources, "hub_reachable", lambda timeout_s=3.0: False)  # as on this machine: cache only
    t = tasks.get("math500")
    local = type(t)(**{**t.__dict__, "source": Source(hub=str(repo), size=500)})
    problems = local.load()
    assert [p.id for p in problems] == ["test/0.json", "test/1.json", "test/2.json"] and problems[0].gold == "\\frac{3}{4}"
    assert "3 problems, but the standard 'math500' set has 500" in capsys.readouterr().err


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tts.app.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HF_ENDPOINT": "http://127.0.0.1:9",
                                            "HOME": str(cwd)})


def test_an_unreachable_hub_is_one_error_naming_both_ways(tmp_path):
    r = cli("eval", "--engine", "sim", "--task", "math500", "--limit", "2", cwd=tmp_path)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert "HuggingFaceH4/MATH-500" in lines[0] and "--data FILE" in lines[0] and "reachable" in lines[0]
    assert not (tmp_path / "results").exists()


def test_any_set_runs_with_a_field_mapping(tmp_path):
    data = write(tmp_path / "mine.jsonl", [{"input": f"What is {i} plus {i}?", "target": str(2 * i), "idx": f"q{i}"}
                                           for i in range(4)])
    recognised = cli("eval", "--engine", "sim", "--data", str(data), "--run-id", "auto", "--no-progress", "-n", "2",
                     cwd=tmp_path)
    assert recognised.returncode == 0, recognised.stderr  # 'input' and 'target' are known shapes without a mapping
    r = cli("eval", "--engine", "sim", "--task", "numeric", "--data", str(data), "--field", "question=input",
            "--field", "answer=target", "--field", "id=idx", "--run-id", "m", "--no-progress", "-n", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "results" / "m" / "results.jsonl").read_text().splitlines()]
    assert sorted(x["id"] for x in rows) == ["q0", "q1", "q2", "q3"] and {x["gold"] for x in rows} == {"0", "2", "4", "6"}
    config = json.loads((tmp_path / "results" / "m" / "config.json").read_text())
    assert config["fields"] == {"question": "input", "answer": "target", "id": "idx"}


ASDIV = {"body": "Seven red apples and two green apples are in the basket.",
         "question": "How many apples are in the basket?", "answer": "9 (apples)", "formula": "7+2=9"}


def test_a_body_the_question_would_drop_is_refused_and_a_template_keeps_it(tmp_path):
    path = write(tmp_path / "asdiv.jsonl", [ASDIV])
    with pytest.raises(DataError, match="'body' field that the question leaves out.*--field question='\\{body\\} "):
        tasks.get("numeric").load(path)
    [p] = tasks.get("numeric").load(path, Fields(question="{body} {question}"))
    assert p.question == f"{ASDIV['body']} {ASDIV['question']}" and p.gold == "9"


@pytest.mark.parametrize("fields,match", [(Fields(question="prompt_text"), "no field 'prompt_text'"),
                                          (Fields(question="{body} {question}", answer="gold"), "no answer field 'gold'"),
                                          (Fields(question="{body} {nope}"), "no field 'nope'")])
def test_a_mapping_naming_a_missing_field_is_one_error(tmp_path, fields, match):
    with pytest.raises(DataError, match=match):
        tasks.get("numeric").load(write(tmp_path / "a.jsonl", [ASDIV]), fields)


def test_generated_tasks_refuse_a_field_mapping():
    from tts.kernel.errors import ConfigError
    with pytest.raises(ConfigError, match="--field does not apply"):
        tasks.get("countdown").load(None, Fields(question="x"))


async def test_mbpp_is_graded_by_its_asserts_in_the_sandbox(tmp_path):
    [p, _] = tasks.get("mbpp").load(write(tmp_path / "m.jsonl", [HUB_ROWS["mbpp"], {**HUB_ROWS["mbpp"], "task_id": 2}]))
    mbpp = tasks.get("mbpp")
    assert await mbpp.grade(p, mbpp.extract("```python\ndef add(a, b):\n    return a + b\n```"))
    assert not await mbpp.grade(p, "def add(a, b):\n    return a - b\n")
    assert mbpp.example_calls(p) == ["add(1, 2)", "add(2, 2)"]
