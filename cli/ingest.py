"""`sieve ingest`: here, or as upload jobs to the server that owns the home."""

from __future__ import annotations

import sys
from contextlib import nullcontext as _nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sieve.cli.common import (
    JsonOpt,
    KbOpt,
    TenantOpt,
    err,
    exit_if_failed,
    friendly_errors,
    open_stack,
    out,
    print_json,
    served_home,
    tenant_or_default,
    through_server_only,
)
from sieve.errors import NotFound


@friendly_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders; a BEIR corpus.jsonl is read line by line.")],
    kb: KbOpt,
    tenant: TenantOpt = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="key=value metadata for every file (owner, tags, created_at ...).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest files into a knowledge base (created if missing). Unchanged files are skipped.

    On a home that `sieve serve` owns, each file is uploaded to the server as a job instead."""
    from sieve.ingest.pipeline import parse_meta

    for p in paths:
        if not p.exists():
            raise NotFound(f"{p} does not exist")
    metadata = parse_meta(meta or [])
    progress = not as_json and sys.stderr.isatty()
    if (served := served_home()) is not None:
        report = _ingest_through(served, paths, kb, tenant, metadata, progress)
    else:
        report = _ingest_here(paths, kb, tenant_or_default(tenant), metadata, progress)
    if as_json:
        print_json(report.as_dict())
    else:
        out.print(
            f"{report.added} added, {report.replaced} replaced, {report.unchanged} unchanged, "
            f"{len(report.failed)} failed; {report.chunks} chunks, {report.embedded} embedded"
        )
        for source, error in report.failed:
            err.print(f"[yellow]skipped[/yellow] {escape(source)}: {escape(error)}")
    exit_if_failed(report.failed, report.added + report.replaced + report.unchanged + len(report.failed), "files")


def _ingest_through(served, paths: list[Path], kb: str, tenant: str | None, metadata: dict, progress: bool):
    """Each file uploaded to the server as a job, one after another (its jobs run one at a time anyway)."""
    from tqdm import tqdm

    from sieve.api.client import ServerError
    from sieve.ingest.loaders import discover
    from sieve.ingest.pipeline import IngestReport
    from sieve.ingest.report import Failure

    through_server_only(tenant, **{"BEIR corpus.jsonl ingest": any(p.name == "corpus.jsonl" for p in paths)})
    report = IngestReport()
    with served:
        served.ensure_kb(kb)
        for path in tqdm(discover(paths), desc=f"upload to {served.url}", unit="file", disable=not progress):
            try:
                report.extend(IngestReport.from_dict(served.ingest(kb, path, metadata)))
            except ServerError as refused:
                if refused.status not in _FILE_REFUSALS:
                    raise  # the server, the key or the knowledge base: every other file would fail the same way
                report.failed.append(Failure(str(path), str(refused)))
    return report


# what the server answers about one upload (malformed, too large, unsupported type, invalid metadata)
_FILE_REFUSALS = frozenset({400, 413, 415, 422})


def _ingest_here(paths: list[Path], kb: str, tenant: str, metadata: dict, progress: bool):
    from sieve.ingest.pipeline import Ingestor, IngestReport

    with open_stack() as stack:
        ingestor = Ingestor(stack)
        report = IngestReport()
        beir = [p for p in paths if p.is_file() and p.name == "corpus.jsonl"]
        files = [p for p in paths if p not in beir]
        for corpus in beir:
            part = ingestor.ingest_beir(corpus, kb, tenant, progress=progress)
            report.extend(part)
        if files:
            report.extend(ingestor.ingest_paths(files, kb, tenant, metadata, progress=progress))
        optimize = getattr(stack.vectors, "optimize", None)  # embedded engines build HNSW on request only
        if optimize is not None and report.chunks:
            with err.status("building the vector index", spinner="dots") if progress else _nullcontext():
                optimize()
    return report
