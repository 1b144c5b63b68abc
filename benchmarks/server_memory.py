"""Does `tts serve`'s memory level off? The server on the simulator gets batches of 300 chat requests (100 of each
batch from clients that disconnect mid-request), and its resident memory is read after each batch.
Writes results/bench/server_memory.json.  Usage: python benchmarks/server_memory.py [--batches 8]"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import write

BODY = {"model": "sc4:sim", "messages": [{"role": "user", "content": "What is 2 plus 3?"}]}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def request(port: int, disconnect: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(BODY).encode()
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n" + data)
    await writer.drain()
    if disconnect:
        await asyncio.sleep(0.01)  # the run has started: the server must cancel it
    else:
        await reader.read()
    writer.close()
    await writer.wait_closed()


async def main(args) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tts.app.cli", "serve", "--engine", "sim", "--port", str(port),
                             "--sim-latency", "0.0005"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        series = [{"requests": 0, "rss_mb": round(rss_mb(proc.pid), 1)}]
        for batch in range(1, args.batches + 1):
            gate = asyncio.Semaphore(32)

            async def one(i: int) -> None:
                async with gate:
                    await request(port, disconnect=i % 3 == 0)

            await asyncio.gather(*(one(i) for i in range(300)))
            await asyncio.sleep(0.5)
            series.append({"requests": 300 * batch, "rss_mb": round(rss_mb(proc.pid), 1)})
            print(series[-1], flush=True)
        growth = [b["rss_mb"] - a["rss_mb"] for a, b in zip(series[1:], series[2:])]
        print(write("server_memory", {"series": series, "growth_per_300_after_the_first_mb": growth,
                                      "note": "300 requests a batch, a third from clients that disconnect"}))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=8)
    asyncio.run(main(ap.parse_args()))
