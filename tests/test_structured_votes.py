"""Tool calls and JSON answers as votable keys, the chat task's reading of samples, and the votes over them."""
import asyncio
import json

import pytest

from tts import tasks
from tts.app.session import Session, resolve_strategy
from tts.engine_adapters.sim import SimConfig, SimulatedEngine
from tts.kernel.types import Completion, Message, Problem, ToolCall
from tts.kit.structured import calls_of, call_key, check_schema, json_key, merge_calls

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather forecast for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city", "days"]}}}
EMAIL = {"type": "function", "function": {
    "name": "send_email", "description": "Send an email to someone",
    "parameters": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]}}}
PERSON = {"type": "json_schema", "json_schema": {"name": "person", "schema": {
    "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"], "additionalProperties": False}}}


def test_calls_that_differ_only_in_spelling_share_a_key():
    a = call_key([("get_weather", '{"city": "Paris", "days": 3}')])
    b = call_key([("get_weather", '{ "days":3,"city":"Paris" }')])
    c = call_key([("get_weather", '{"city": "Paris", "days": 4}')])
    assert a == b != c
    parallel = call_key([("f", '{"x": 1}'), ("g", "{}")])
    assert parallel == call_key([("g", "{}"), ("f", '{"x":1}')])  # parallel calls are a set
    assert calls_of(a) == [{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]


def test_tied_calls_are_merged_argument_by_argument():
    keys = [call_key([("get_weather", '{"city": "Paris", "days": 3}')]),
            call_key([("get_weather", '{"city": "Paris", "days": 5}')]),
            call_key([("get_weather", '{"city": "Pariss", "days": 3}')]),
            call_key([("send_email", '{"to": "bob"}')])]
    key, how = merge_calls(keys)
    # no whole call repeats, but each argument has a majority among the three get_weather calls
    assert calls_of(key) == [{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]
    assert how["arguments"] == {"get_weather.city": "2/3", "get_weather.days": "2/3"} and how["samples"] == 3


def test_json_answers_are_checked_against_the_schema():
    schema = PERSON["json_schema"]["schema"]
    good, why = json_key('Sure:\n```json\n{"age": 31, "name": "Alice"}\n```', schema)
    assert why is None and good == json_key('{"name":"Alice","age":31}', schema)[0]
    assert json_key('{"name": "Alice"}', schema) == (None, json_key('{"name": "Alice"}', schema)[1])
    assert "schema" in json_key('{"name": "Alice"}', schema)[1]
    assert json_key("no json here", schema)[0] is None
    assert json_key("[1, 2]", None)[0] is None  # json_object wants an object
    with pytest.raises(ValueError, match="invalid JSON schema"):
        check_schema({"type": "objekt"})


def test_the_chat_task_reads_a_sample_by_its_request():
    chat = tasks.get("chat")
    calls = (ToolCall(id="c1", name="get_weather", arguments='{"days": 3, "city": "Paris"}'),)
    plain = chat.bind(Problem(id="p", question="hi"))
    assert plain.read(Completion(text="  Hello\n there ", completion_tokens=2)) == "Hello there"
    with_tools = chat.bind(Problem(id="p", question="hi", tools=(WEATHER,)))
    assert with_tools.read(Completion(text="", completion_tokens=2, tool_calls=calls)).startswith("tool_calls:")
    json_task = chat.bind(Problem(id="p", question="hi", response_format=PERSON))
    assert json_task.read(Completion(text='{"name": "A", "age": 1}', completion_tokens=2)) == 'json:{"age":1,"name":"A"}'
    assert json_task.read(Completion(text='{"name": "A"}', completion_tokens=2)) is None
    assert not chat.gradable(Problem(id="p", question="hi", gold="3"))  # open-ended: never graded as wrong


def _solve(engine, problem, strategy):
    spec, config = resolve_strategy(strategy, {})
    return asyncio.run(Session(engine, tasks.get("chat"), spec, config).solve(problem))


def test_voting_tool_calls_beats_one_sample_on_the_simulator():
    """20 questions, a simulator right 55% of the time: the voted call over 8 samples is right more often."""
    engine = SimulatedEngine(SimConfig(accuracy=0.55, latency_per_token_s=0.0, seed=3))
    cities = ["Paris", "Lyon", "Oslo", "Rome", "Lima", "Kyiv", "Quito", "Doha", "Riga", "Bern"]
    right_one = right_vote = 0
    for i in range(20):
        city, days = cities[i % 10], 2 + i
        problem = Problem(id=f"q{i}", question=f"What is the weather in {city} for {days} days?",
                          messages=(Message(role="user", content=f"What is the weather in {city} for {days} days?"),),
                          tools=(WEATHER, EMAIL))
        expected = call_key([("get_weather", json.dumps({"city": city, "days": days}))])
        one = _solve(engine, problem.model_copy(update={"id": f"one{i}"}), "sc(n=1, seed=%d)" % (100 + i))
        voted = _solve(engine, problem, "sc(n=8, early_stop=False)")
        right_one += one.answer.answer == expected
        right_vote += voted.answer.answer == expected
        sample = next(s for s in voted.answer.samples if s.index == voted.answer.chosen) \
            if voted.answer.chosen is not None else None
        assert sample is None or sample.tool_calls  # the chosen sample carries the calls the server returns
    print(f"voted {right_vote}/20, one sample {right_one}/20")
    assert right_vote >= 17 and right_vote > right_one, (right_vote, right_one)


def test_json_votes_drop_and_count_invalid_samples():
    engine = SimulatedEngine(SimConfig(accuracy=0.6, latency_per_token_s=0.0, seed=1))
    text = "Alice is 31 years old."
    problem = Problem(id="j", question=text, messages=(Message(role="user", content=text),), response_format=PERSON)
    solved = _solve(engine, problem, "sc(n=12, early_stop=False)")
    answer = solved.answer
    assert answer.answer == 'json:{"age":31,"name":"Alice"}'
    invalid = sum(s.answer is None for s in answer.samples)
    assert invalid > 0 and answer.meta["unread"] == invalid and "could be read" in answer.note
    assert sum(answer.votes.values()) == 12 - invalid
