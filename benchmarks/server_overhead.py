"""Latency of sc8 through `tts serve` against the same strategy called in-process, on the simulator, with 1 and 16
concurrent clients. Both sides use the same simulator settings and questions. Two more figures say where the
difference lies: the same server app called in this process through ASGI (the gateway's own work: reading, checking,
answering; no sockets, no second process), and the floor any HTTP service pays here, the OpenAI SDK listing models
from the server. Writes results/bench/server_overhead.json."""
from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

from common import ROOT, write

import httpx
import openai

import tts
from tts.app.server import build_app
from tts.engine_adapters.sim import SimConfig, SimulatedEngine

LATENCY, REQUESTS = 0.002, 48


def question(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Problem {i}: Ann has {i} apples and buys {i} more. How many?"}]


async def timed_many(call, concurrency: int) -> list[float]:
    sem = asyncio.Semaphore(concurrency)
    times: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            await call(i)
            times.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    return times


async def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tts.app.cli", "serve", "--engine", "sim", "--port", str(port),
                               "--sim-latency", str(LATENCY)], cwd=ROOT, env={**os.environ},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        engine = SimulatedEngine(SimConfig(latency_per_token_s=LATENCY))
        app = build_app(engine, "chat", upstream="sim")
        asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tts")
        floor = []
        for _ in range(100):
            t0 = time.perf_counter()
            await client.models.list()
            floor.append(time.perf_counter() - t0)
        out = {"requests": REQUESTS, "strategy": "sc8", "sim_latency_per_token_s": LATENCY,
               "http_and_sdk_floor_ms": round(statistics.median(floor) * 1000, 2)}
        for concurrency in (1, 16):
            served = await timed_many(lambda i: client.chat.completions.create(model="sc8:sim", messages=question(i)),
                                      concurrency)
            local = await timed_many(lambda i: tts.solve(question(i)[0]["content"], engine=engine, n=8), concurrency)
            app_only = await timed_many(lambda i: asgi.post("/v1/chat/completions", json={
                "model": "sc8:sim", "messages": question(i)}), concurrency)
            out[f"clients_{concurrency}"] = {
                "served_mean_s": round(statistics.mean(served), 4), "in_process_mean_s": round(statistics.mean(local), 4),
                "served_over_in_process": round(statistics.mean(served) / statistics.mean(local), 3),
                "gateway_app_in_process_mean_s": round(statistics.mean(app_only), 4),
                "gateway_app_over_in_process": round(statistics.mean(app_only) / statistics.mean(local), 3),
                "served_p95_s": round(sorted(served)[int(0.95 * len(served)) - 1], 4)}
        await client.close()
        await asgi.aclose()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(write("server_overhead", out))


if __name__ == "__main__":
    asyncio.run(main())
