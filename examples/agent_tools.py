"""An agent that calls tools through `tts serve`, with the OpenAI Agents SDK: each of the model's turns is 8 samples
voted into one (tool calls in canonical form), and the agent loop goes on as it would with the bare model.

    tts serve --engine vllm --model qwen2.5-coder-0.5b --port 8100 &
    python examples/agent_tools.py --base-url http://127.0.0.1:8100/v1 --model sc8:qwen "Weather in Oslo for 3 days?"

The weather tool is a stand-in that answers from a table; the tool runs in this process, as the agent's own code.
"""
from __future__ import annotations

import argparse
import asyncio

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

FORECASTS = {"oslo": "rain, 9 C", "paris": "sunny, 21 C", "lima": "cloudy, 18 C"}
CALLS: list[dict] = []  # what the agent asked the tool, for whoever runs this (and the test)


@function_tool
def get_weather(city: str, days: int) -> str:
    """Get the weather forecast for a city.

    Args:
        city: the city's name
        days: how many days ahead
    """
    CALLS.append({"city": city, "days": days})
    return f"{city}, next {days} days: {FORECASTS.get(city.lower(), 'no forecast')}"


async def ask(question: str, base_url: str, model: str) -> str:
    set_tracing_disabled(True)  # traces go to OpenAI's platform by default; a gateway run keeps them local
    client = AsyncOpenAI(base_url=base_url, api_key="unused")
    agent = Agent(name="weather", instructions="Answer weather questions with the get_weather tool.",
                  tools=[get_weather], model=OpenAIChatCompletionsModel(model=model, openai_client=client))
    result = await Runner.run(agent, question, max_turns=4)
    return str(result.final_output)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("question")
    ap.add_argument("--base-url", default="http://127.0.0.1:8100/v1")
    ap.add_argument("--model", default="sc8:qwen")
    args = ap.parse_args()
    print(asyncio.run(ask(args.question, args.base_url, args.model)))
    print("tool calls:", CALLS)
