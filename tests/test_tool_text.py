"""Tool calls written in a model's text (Hermes/Qwen format), as in-process vLLM reads them back, and messages with
calls rendered for a Hugging Face chat template."""
import json
import os

from tts.engine_adapters.tool_text import parse_calls, template_messages
from tts.kernel.types import Message, ToolCall


def test_hermes_calls_are_read_and_removed_from_the_content():
    text = ('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "days": 3}}\n'
            '</tool_call>\n<tool_call>{"name": "send_email", "arguments": {"to": "bob"}}</tool_call>')
    content, calls = parse_calls(text)
    assert content == "Let me check."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo", "days": 3}),
                                                                 ("send_email", {"to": "bob"})]
    assert len({c.id for c in calls}) == 2


def test_unreadable_calls_stay_text_and_are_never_guessed():
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>'
    assert parse_calls(text) == (text, None)
    assert parse_calls("no calls here") == ("no calls here", None)
    # a call cut off by max_tokens (no closing tag) whose JSON is whole is still read
    _, calls = parse_calls('<tool_call>{"name": "f", "arguments": {}}')
    assert calls[0].name == "f"


def test_template_messages_carry_arguments_as_objects():
    turn = Message(role="assistant", tool_calls=(ToolCall(id="c1", name="f", arguments='{"x": 1}'),))
    result = Message(role="tool", content="2", tool_call_id="c1")
    wired = template_messages([turn, result])
    assert wired[0]["tool_calls"][0]["function"]["arguments"] == {"x": 1}
    assert wired[1] == {"role": "tool", "content": "2", "tool_call_id": "c1"}


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}}


def _tokenizer(name: str):
    """A real model's tokenizer and chat template, from the local model folder `tts setup-model` writes."""
    import pytest

    transformers = pytest.importorskip("transformers")
    from tts.engine_adapters.local_models import is_ready, model_dir

    if not is_ready(name):
        if os.environ.get("TTS_REQUIRE_REAL_ENGINE") == "1" and name == "smollm2-135m":
            pytest.fail(f"{name} not set up")
        pytest.skip(f"{name} not set up (tts setup-model {name})")
    return transformers.AutoTokenizer.from_pretrained(str(model_dir(name)))


def test_tools_reach_a_model_whose_template_has_no_place_for_them():
    """SmolLM2's chat template drops `tools` silently: the model would never hear of them. The prompt states them
    in a system message (Hermes's words), and a system message of the caller's own is kept."""
    from tts.engine_adapters.tool_text import render_prompt
    from tts.kernel.types import GenerateRequest

    tok = _tokenizer("smollm2-135m")
    ask = (Message(role="system", content="Be brief."), Message(role="user", content="Weather in Oslo?"))
    request = GenerateRequest(messages=ask, tools=(WEATHER,))
    plain = render_prompt(tok, request.model_copy(update={"tools": ()}))
    assert "get_weather" not in tok.apply_chat_template([m.wire() for m in ask], tools=[WEATHER], tokenize=False)
    prompt = render_prompt(tok, request)
    assert "get_weather" in prompt and "<tool_call>" in prompt and "Be brief." in prompt and prompt != plain
    assert prompt.count("<|im_start|>system") == 1  # folded into the caller's system message, not a second one


def test_a_template_with_tools_renders_them_its_own_way():
    from tts.engine_adapters.tool_text import render_prompt
    from tts.kernel.types import GenerateRequest

    tok = _tokenizer("qwen2.5-coder-0.5b")
    request = GenerateRequest(messages=(Message(role="user", content="Weather in Oslo?"),), tools=(WEATHER,))
    prompt = render_prompt(tok, request)
    assert prompt == tok.apply_chat_template([{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER],
                                             tokenize=False, add_generation_prompt=True)
    assert "get_weather" in prompt


TOOLS = {"lookup", "prime_factors"}


def test_calls_written_as_bare_json_are_read_when_they_are_the_whole_response():
    """Qwen2.5-Coder's ways of calling (issue 29's measurement): a ```json block, bare JSON, the template's doubled
    braces, several blocks or a list for parallel calls; each names an offered tool."""
    fenced = '```json\n{ "name": "lookup", "arguments": { "entity": "Veloria", "attribute": "capital" } }\n```'
    content, calls = parse_calls(fenced, names=TOOLS)
    assert content == "" and [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("lookup", {"entity": "Veloria", "attribute": "capital"})]
    for text in ('{"name": "lookup", "arguments": {"entity": "Quell", "attribute": "capital"}}',
                 '{{"name": "lookup", "arguments": {"entity": "Quell", "attribute": "capital"}}}',
                 '<tool_call>\n{{"name": "lookup", "arguments": {"entity": "Quell", "attribute": "capital"}}}\n'
                 '</tool_call>'):
        _, calls = parse_calls(text, names=TOOLS)
        assert [json.loads(c.arguments)["entity"] for c in calls] == ["Quell"], text
    parallel = "\n".join(f'```json\n{{"name": "prime_factors", "arguments": {{"n": {n}}}}}\n```' for n in (84, 91))
    _, calls = parse_calls(parallel, names=TOOLS)
    assert [json.loads(c.arguments) for c in calls] == [{"n": 84}, {"n": 91}] and calls[0].id != calls[1].id
    _, calls = parse_calls('[{"name": "prime_factors", "arguments": {"n": 4}}, '
                           '{"name": "prime_factors", "arguments": {"n": 6}}]', names=TOOLS)
    assert len(calls) == 2


def test_json_that_is_not_only_calls_to_offered_tools_stays_text():
    fenced = '```json\n{"name": "lookup", "arguments": {"entity": "Veloria", "attribute": "capital"}}\n```'
    for text in ("Here is how you would call it:\n" + fenced,  # prose around it: an explanation, not a call
                 fenced.replace("lookup", "delete_everything"),  # a function nobody offered
                 '{"name": "lookup", "arguments": "Veloria"}',  # arguments that are not an object
                 '```json\n{"name": "lookup", "arguments": {}}\n```\n```json\n{"city": "Oslo"}\n```',  # one is not a call
                 '```python\nprint({"name": "lookup"})\n```', "The answer is 42."):
        assert parse_calls(text, names=TOOLS) == (text, None), text
    assert parse_calls(fenced) == (fenced, None)  # no tools offered: never calls


def test_the_openai_engine_reads_calls_its_server_left_in_the_text():
    import asyncio

    from tests.fake_openai_server import FakeOpenAI
    from tts.engine_adapters import make_engine
    from tts.kernel.types import GenerateRequest

    fenced = '```json\n{"name": "lookup", "arguments": {"entity": "Tarsin", "attribute": "capital"}}\n```'
    tools = ({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},)

    async def go(server, offered):
        engine = await make_engine("openai", model="fake-model", base_url=server.url)
        try:
            return await engine.generate(GenerateRequest(messages=(Message(role="user", content="capital?"),),
                                                         tools=offered, max_tokens=64))
        finally:
            await engine.aclose()

    with FakeOpenAI(responder=lambda body: fenced) as server:
        [called] = asyncio.run(go(server, tools))
        [plain] = asyncio.run(go(server, None))
    assert called.finish_reason == "tool_calls" and called.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in called.tool_calls] == [
        ("lookup", {"entity": "Tarsin", "attribute": "capital"})]
    assert plain.tool_calls is None and plain.text == fenced
