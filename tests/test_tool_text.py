"""Tool calls written in a model's text (Hermes/Qwen format), as in-process vLLM reads them back, and messages with
calls rendered for a Hugging Face chat template."""
import json

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
