"""`tts serve` as an agent's gateway, driven over HTTP by the real `openai` and `anthropic` SDKs: tool calls voted and
returned in each API's shape, a tool result continued to a text answer, JSON answers that meet their schema, USC and
medoid on open questions, and bad requests answered as API-shaped 4xx without reaching the engine."""
import json
import urllib.request

import anthropic
import jsonschema
import openai
import pytest

from tests.test_server import serve, stats
from tests.test_structured_votes import EMAIL, WEATHER

PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
ASK = [{"role": "user", "content": "What is the weather in Oslo for 3 days?"}]


@pytest.fixture(scope="module")
def gateway():
    yield from serve("--sim-latency", "0.001", "--sim-accuracy", "0.6")


def test_openai_tool_call_voted_then_the_loop_continues(gateway):
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="x")
    r = client.chat.completions.create(model="sc8:sim", messages=ASK, tools=[WEATHER, EMAIL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo", "days": 3}
    extra = r.model_extra["tts"]
    assert extra["answer"].startswith("tool_calls:") and sum(extra["votes"].values()) >= 3
    assert r.usage.completion_tokens > 0
    # the agent runs the tool and sends its result back, as it would to the bare model
    follow = [*ASK, choice.message.model_dump(exclude_none=True),
              {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    r2 = client.chat.completions.create(model="sc4:sim", messages=follow, tools=[WEATHER, EMAIL])
    assert r2.choices[0].finish_reason == "stop" and "sunny, 21 C" in r2.choices[0].message.content


def test_openai_streamed_tool_call_and_named_tool_choice(gateway):
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="x")
    stream = client.chat.completions.create(model="sc4:sim", messages=ASK, tools=[WEATHER, EMAIL], stream=True)
    calls, finish = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.tool_calls:
            calls += chunk.choices[0].delta.tool_calls
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls" and [c.function.name for c in calls] == ["get_weather"]
    forced = client.chat.completions.create(model="sc4:sim", messages=ASK, tools=[WEATHER, EMAIL],
                                            tool_choice={"type": "function", "function": {"name": "send_email"}})
    assert [c.function.name for c in forced.choices[0].message.tool_calls] == ["send_email"]


def test_openai_json_schema_answer_meets_the_schema(gateway):
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="x")
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
    r = client.chat.completions.create(model="sc8:sim", response_format=fmt,
                                       messages=[{"role": "user", "content": "Extract the person: Alice is 31."}])
    value = json.loads(r.choices[0].message.content)
    jsonschema.validate(value, PERSON)
    assert value == {"name": "Alice", "age": 31}


def test_open_questions_by_usc_and_medoid(gateway):
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="x")
    ids = {m.id for m in client.models.list().data}
    assert {"usc:sim", "medoid:sim"} <= ids
    q = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Summarise why the sky is blue."}]
    usc = client.chat.completions.create(model="usc6:sim", messages=q)
    extra = usc.model_extra["tts"]
    assert extra["chosen"] is not None and usc.choices[0].message.content
    assert usc.usage.model_extra["tts_verification"]["calls"] == 1  # the selection call, reported apart
    med = client.chat.completions.create(model="medoid6:sim", messages=q)
    assert med.model_extra["tts"]["chosen"] is not None and med.choices[0].message.content


def test_anthropic_messages_with_tool_use_and_streaming(gateway):
    client = anthropic.Anthropic(base_url=gateway, api_key="x")
    tools = [{"name": "get_weather", "description": "Get the weather forecast for a city",
              "input_schema": WEATHER["function"]["parameters"]}]
    msg = client.messages.create(model="sc8:sim", max_tokens=256, messages=ASK, tools=tools)
    assert msg.stop_reason == "tool_use"
    [use] = [b for b in msg.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Oslo", "days": 3}
    assert msg.usage.output_tokens > 0
    follow = [*ASK, {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "rain"}]}]
    with client.messages.stream(model="sc4:sim", max_tokens=256, messages=follow, tools=tools,
                                system="You are a weather agent.") as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "rain" in text and final.stop_reason == "end_turn"


BAD = [
    ({"model": "sc4:sim", "messages": ASK, "tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "objekt"}}}]}, "tools[0].function.parameters: invalid JSON schema"),
    ({"model": "nosuch8:sim", "messages": ASK}, "unknown model 'nosuch8:sim'"),
    ({"model": "sc4@nosuchtask:sim", "messages": ASK}, "unknown task 'nosuchtask'"),
    ({"model": "sc4:sim", "messages": [{"role": "user", "content": "hi"}] * 10_000}, "at most 2048"),
    ({"model": "sc4:sim", "messages": ASK, "response_format": {"type": "xml"}}, "response_format.type"),
    ({"model": "sc4:sim", "messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
]


@pytest.mark.parametrize("body,expected", BAD, ids=["schema", "strategy", "task", "10k-messages", "format", "tool"])
def test_bad_agent_requests_are_400s_that_reach_no_engine(gateway, body, expected):
    before = stats(gateway)["requests"]
    req = urllib.request.Request(f"{gateway}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400
    assert expected in json.loads(e.value.read())["error"]["message"]
    assert stats(gateway)["requests"] == before  # refused before any strategy ran


def test_anthropic_bad_request_is_its_error_shape(gateway):
    client = anthropic.Anthropic(base_url=gateway, api_key="x", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model="nosuch:sim", max_tokens=10, messages=ASK)
    assert e.value.body["error"]["type"] == "invalid_request_error" and "unknown model" in e.value.message


def test_a_response_format_no_sample_meets_is_a_422_naming_the_count(gateway):
    zip_code = {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                "required": ["zip"]}
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError) as e:
        client.chat.completions.create(model="sc4:sim", messages=[{"role": "user", "content": "Where is Bob?"}],
                                       response_format={"type": "json_schema",
                                                        "json_schema": {"name": "z", "schema": zip_code}})
    assert "none of the 4 samples met the response_format" in e.value.message


def test_the_agents_sdk_example_calls_its_tool_through_the_gateway(gateway):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parent.parent / "examples" / "agent_tools.py"
    spec = importlib.util.spec_from_file_location("agent_tools", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    import asyncio

    said = asyncio.run(example.ask("What is the weather in Oslo for 3 days?", f"{gateway}/v1", "sc8:sim"))
    assert example.CALLS == [{"city": "Oslo", "days": 3}]  # the voted call reached the tool once
    assert "rain, 9 C" in said  # and the agent's last turn read its result


def test_when_every_branch_fails_the_upstreams_error_comes_back_in_each_apis_shape():
    """An upstream that refuses every call (a 400 from the model server), and one that is down: a 502 carrying the
    upstream's own words, in OpenAI's and Anthropic's error shapes."""
    import asyncio

    from starlette.testclient import TestClient

    from tests.fake_openai_server import FakeOpenAI
    from tts.app.server import build_app
    from tts.engine_adapters import make_engine

    with FakeOpenAI(failures=[400] * 50) as upstream:
        engine = asyncio.run(make_engine("openai", model="fake-model", base_url=upstream.url))
        with TestClient(build_app(engine, upstream="fake")) as client:
            r = client.post("/v1/chat/completions", json={"model": "sc4:fake", "messages": ASK})
            assert r.status_code == 502 and r.json()["error"]["type"] == "upstream_error"
            assert "scripted 400" in r.json()["error"]["message"]
            a = client.post("/v1/messages", json={"model": "sc4:fake", "max_tokens": 64, "messages": ASK})
            assert a.status_code == 502 and a.json()["type"] == "error" and "scripted 400" in a.json()["error"]["message"]
        assert len(upstream.requests) >= 8  # every branch reached the upstream and failed there
    with FakeOpenAI(model="m") as gone:  # up when the gateway starts, down when the request comes
        down = asyncio.run(make_engine("openai", model="m", base_url=gone.url))
    with TestClient(build_app(down, upstream="m")) as client:
        r = client.post("/v1/chat/completions", json={"model": "greedy:m", "messages": ASK})
        assert r.status_code == 502 and "not reachable" in r.json()["error"]["message"]


def test_anthropic_non_text_tool_result_is_refused_not_dropped(gateway):
    body = {"model": "sc4:sim", "max_tokens": 32, "messages": [*ASK, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "image", "source": {}}]}]}]}
    req = urllib.request.Request(f"{gateway}/v1/messages", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400 and "only text parts" in json.loads(e.value.read())["error"]["message"]
