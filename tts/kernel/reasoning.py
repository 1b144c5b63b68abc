"""Reasoning models' completions: the thinking part apart from the answer part, and a thinking budget.

DeepSeek-R1 distills, Qwen3 and QwQ write `<think>...</think>` before their answer; some chat templates open the tag
in the prompt, so the completion holds only the closing tag (`opened_in_prompt`). Votes, distilled workspaces,
refine prompts and joins must see the answer part only, and usage counts thinking tokens apart.

A thinking budget is enforced by budget forcing (s1, Muennighoff et al. 2025): generate the thinking up to N tokens
(stopping at the closing tag), close the tag if the model has not, and let the model answer from there."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from pydantic import Field

from tts.kernel.types import Completion, Frozen, GenerateRequest, Message

INSTRUCTION = ("Think step by step inside {start} and {end} first. After {end}, write only the final answer in the "
               "form the problem asks for.")


class ReasoningConfig(Frozen):
    start: str = Field("<think>", min_length=1)  # an empty tag would match everywhere and empty every answer
    end: str = Field("</think>", min_length=1)
    opened_in_prompt: bool = False  # the chat template writes the opening tag (DeepSeek-R1's does)
    thinking_budget: int | None = Field(None, ge=1, description="thinking tokens per completion (budget forcing)")
    # a model that does not think on its own is asked to, in a system message (the CPU models are such)
    instruct: bool = False

    def split(self, text: str) -> tuple[str, str]:
        """(thinking, answer) of a completion. An unclosed thinking part is all thinking: it has no answer yet."""
        end = text.find(self.end)
        if end >= 0:
            thinking = text[:end]
            start = thinking.find(self.start)
            if start >= 0:
                thinking = thinking[start + len(self.start):]
            return thinking.strip(), text[end + len(self.end):].strip()
        start = text.find(self.start)
        if start >= 0:
            return text[start + len(self.start):].strip(), ""
        if self.opened_in_prompt:
            return text.strip(), ""
        return "", text

    def instruction(self) -> str:
        return INSTRUCTION.format(start=self.start, end=self.end)


EFFORT_BUDGETS = {"low": 512, "medium": 2048, "high": 8192}  # OpenAI's reasoning_effort, as thinking tokens


def instructed(config: ReasoningConfig, request: GenerateRequest) -> GenerateRequest:
    """The request with the thinking instruction in front, for models that do not think on their own."""
    if not config.instruct or request.messages is None or request.continue_final:
        return request
    system = Message(role="system", content=config.instruction())
    return request.model_copy(update={"messages": (system, *request.messages)})


Call = Callable[[GenerateRequest], Awaitable[list[Completion]]]
Emit = Callable[..., None]


def split_all(config: ReasoningConfig, count_tokens: Callable[[str], int],
              completions: list[Completion]) -> list[Completion]:
    """Completions whose `text` is the answer part; the thinking part and its token count ride along (the caller
    charges `thinking_tokens`: they are already in the completion tokens)."""
    out = []
    for c in completions:
        thinking, answer = config.split(c.text)
        tokens = min(count_tokens(thinking), c.completion_tokens) if thinking else 0
        out.append(c.model_copy(update={"text": answer, "thinking": thinking, "thinking_tokens": tokens}))
    return out


async def think(config: ReasoningConfig, request: GenerateRequest, call: Call, count_tokens: Callable[[str], int],
                emit: Emit) -> list[Completion]:
    """A reasoning model's completions, split; with a thinking budget, by budget forcing: think up to the budget
    (stopping at the closing tag), then each completion answers in a continuation after the closed tag. `call`
    makes one engine call as asked (charged and traced by the caller); `emit` traces where thinking was cut."""
    request = instructed(config, request)
    budget = config.thinking_budget
    if budget is None or request.messages is None or budget >= request.max_tokens:
        return split_all(config, count_tokens, await call(request))
    opening = "" if config.opened_in_prompt else config.start
    first = request.model_copy(update={"max_tokens": budget, "stop": (*request.stop, config.end)})
    thoughts = await call(first)

    async def answer(c: Completion) -> Completion:
        thinking = c.text
        if config.end in thinking:  # an engine that keeps the stop string
            thinking = thinking[: thinking.index(config.end)]
        if opening and not thinking.lstrip().startswith(opening):
            thinking = opening + "\n" + thinking.lstrip()
        prefill = thinking.rstrip() + "\n" + config.end + "\n\n"
        rest = max(request.max_tokens - c.completion_tokens, 1)
        follow = request.model_copy(update={
            "messages": (*request.messages, Message(role="assistant", content=prefill)), "continue_final": True,
            "n": 1, "max_tokens": rest})
        [tail] = await call(follow)
        tokens = c.completion_tokens
        emit("thinking_cut" if c.finish_reason == "length" else "thinking_done", thinking_tokens=tokens,
             budget=budget)
        return Completion(text=tail.text.strip(), thinking=thinking.replace(opening, "", 1).strip(),
                          thinking_tokens=tokens, completion_tokens=tokens + tail.completion_tokens,
                          prompt_tokens=c.prompt_tokens + tail.prompt_tokens,
                          cached_prompt_tokens=c.cached_prompt_tokens + tail.cached_prompt_tokens,
                          finish_reason=tail.finish_reason, latency_s=c.latency_s + tail.latency_s)

    async with asyncio.TaskGroup() as tg:  # each sample answers on its own; an error cancels the call as a whole
        tasks = [tg.create_task(answer(c)) for c in thoughts]
    return [t.result() for t in tasks]
