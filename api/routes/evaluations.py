"""Evaluations of one knowledge base, kept in the metadata DB to compare runs.

`beir`: queries and qrels of a BEIR folder (its corpus ids are the KB's document filenames; a corpus
sent along is ingested first) give Hit@K, MRR, nDCG and latency percentiles for each recall path alone
and fused, under the KB's profile (`sieve eval retrieval`). `refusal`: answer-or-refuse rows give the
grade node's accuracy and confusion matrix, fitted on one half and reported on the other
(`sieve eval refusal`), with relevance from the profile's reranker (the embedding cosine without one).

The data is checked before the 202; the run continues in the server (retrieval is async, the blocking
parts in threads, a corpus ingest in the job worker) and `GET .../evaluations/{id}` follows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from sieve.api.deps import KnowledgeBaseDep, StateDep, WriterDep
from sieve.api.schemas import EvaluationPublic, EvaluationsPublic
from sieve.api.state import AppState
from sieve.errors import InvalidInput, SieveError
from sieve.evals.beir import BeirSplit, load_split
from sieve.evals.refusal import Row, evaluate_refusal, gather, held_out
from sieve.evals.retrieval import configurations, evaluate_retrieval
from sieve.graphs.shared.context import Thresholds
from sieve.prompts.language import detect
from sieve.retrievers.profile import PathName, RetrievalProfile
from sieve.retrievers.rerank import RerankerKind, build_reranker
from sieve.stores import crud
from sieve.stores.crud import KbId, KnowledgeBaseRef
from sieve.stores.metadata import Evaluation
from sieve.stores.types import SearchFilter

router = APIRouter(prefix="/v1/knowledge-bases/{kb}/evaluations", tags=["evaluations"])
log = logging.getLogger(__name__)
_TEXT = 20_000_000  # characters per uploaded file: a BEIR split's queries and qrels fit many times over
# evaluations this process runs, with the app state each runs in (a reference keeps each task alive)
_running: dict[str, tuple[AppState, asyncio.Task[None]]] = {}
INTERRUPTED = "the server stopped before the evaluation finished; run it again"


class EvaluationRequest(BaseModel):
    kind: Literal["beir", "refusal"]
    name: str = Field("", max_length=200, description="What is evaluated, e.g. the data set's folder name.")
    queries: str | None = Field(None, max_length=_TEXT, description="beir: queries.jsonl's text.")
    qrels: str | None = Field(None, max_length=_TEXT, description="beir: a qrels/<split>.tsv's text.")
    corpus: str | None = Field(None, max_length=_TEXT, description="beir: corpus.jsonl's text, ingested first.")
    rows: str | None = Field(None, max_length=_TEXT, description="refusal: answer-or-refuse rows (JSON lines: "
                             "id, query, docs, answerable).")
    paths: list[PathName] | None = Field(None, min_length=1, description="beir: recall paths (default: the profile's).")


def _public(row: Evaluation) -> EvaluationPublic:
    return EvaluationPublic.of(row, interrupted=None if row.id in _running else INTERRUPTED)


def _beir(body: EvaluationRequest, folder: Path) -> BeirSplit:
    if not body.queries or not body.qrels:
        raise HTTPException(422, "queries: a BEIR evaluation needs queries.jsonl and a qrels/<split>.tsv")
    (folder / "qrels").mkdir()
    (folder / "queries.jsonl").write_text(body.queries, encoding="utf-8")
    (folder / "qrels" / "eval.tsv").write_text(body.qrels, encoding="utf-8")
    (folder / "corpus.jsonl").write_text(body.corpus or "", encoding="utf-8")
    try:
        split = load_split(folder, "eval")
    except (ValueError, KeyError, TypeError) as exc:  # a line that is not JSON, or a query without _id/text
        raise HTTPException(422, f"queries: not BEIR queries.jsonl/qrels ({type(exc).__name__}: {exc})") from None
    if not split.queries:
        raise HTTPException(422, "qrels: no query of queries.jsonl has a label in the qrels (query-id, corpus-id, "
                                 "score, tab-separated)")
    return split


def _rows(body: EvaluationRequest) -> list[Row]:
    try:
        rows = [Row(str(r["id"]), r["query"], list(r["docs"]), bool(r["answerable"]))
                for r in map(json.loads, (body.rows or "").splitlines()) if r]
    except (ValueError, KeyError, TypeError) as exc:
        raise HTTPException(422, f"rows: each line a JSON object with id, query, docs, answerable ({exc})") from None
    halves = {held_out(r) for r in rows}
    if halves != {True, False}:  # one half fits the threshold, the other is scored
        raise HTTPException(422, "rows: too few questions to fit on one half and score on the other; send more")
    return rows


def _labelled_documents(state: AppState, kb_id: KbId, split: BeirSplit) -> int:
    labelled = {d for rel in split.qrels.values() for d in rel}
    with state.stack.sessions() as session:
        return crud.count_named_documents(session, kb_id, labelled)


async def _run_beir(state: AppState, tenant: str, kb: KnowledgeBaseRef, split: BeirSplit,
                    paths: list[PathName] | None) -> dict[str, Any]:
    if split.corpus.stat().st_size:
        report = await state.jobs.write(state.ingestor.ingest_beir, split.corpus, kb.name, tenant)
        if report.failed:
            raise InvalidInput(f"{len(report.failed)} corpus documents failed to ingest: {report.failed[0][1]}")
    if not await asyncio.to_thread(_labelled_documents, state, kb.id, split):
        raise InvalidInput(f"no document of knowledge base {kb.name!r} is named by the qrels (corpus ids are matched to "
                         "filenames): send the folder's corpus.jsonl too, or ingest it first")
    profile = await asyncio.to_thread(state.retriever.load_profile, kb.id)
    runs = configurations(list(paths or profile.paths), profile, profile.reranker)
    reports = await evaluate_retrieval(state.retriever, SearchFilter(tenant, kb.id), split, runs)
    return {"queries": len(split.queries), "runs": [dataclasses.asdict(r) for r in reports]}


def _run_refusal(state: AppState, profile: RetrievalProfile, rows: list[Row]) -> dict[str, Any]:
    kind = profile.reranker if profile.reranker is not RerankerKind.NONE else RerankerKind.EMBEDDING
    provider = build_reranker(kind, state.settings, state.stack.embedder, state.stack.embedding_cache)
    assert provider is not None
    try:
        evidence = gather(rows, provider.score, vectors=state.stack.embedder.embed_passages)
    finally:
        provider.close()
    # the shipped relevance floor is calibrated for the embedding cosine; a reranker has its calibrated one
    fixed = Thresholds().relevance(detect(rows[0].query)) if kind is RerankerKind.EMBEDDING \
        else profile.relevance_threshold
    reports = evaluate_refusal(rows, evidence, fixed=fixed)
    return {"rows": len(rows), "relevance": kind.value, "reports": [dataclasses.asdict(r) for r in reports]}


def _finish(state: AppState, evaluation_id: str, status: str, *, error: str | None = None,
            result: dict[str, Any] | None = None) -> None:
    with state.stack.sessions.begin() as session:
        crud.finish_evaluation(session, evaluation_id, status, datetime.now(UTC), error=error, result=result)


async def _run(state: AppState, evaluation_id: str, work: Any, cleanup: tempfile.TemporaryDirectory | None) -> None:
    try:
        result = await work
    except Exception as exc:
        if isinstance(exc, SieveError):  # what is wrong with the data: the user can act on it
            error = exc.message
        else:  # a bug, whose text can name server paths: the log has it
            log.exception("evaluation %s failed", evaluation_id)
            error = f"internal error ({type(exc).__name__}); the server log has the details"
        await asyncio.to_thread(_finish, state, evaluation_id, "failed", error=error)
    else:
        await asyncio.to_thread(_finish, state, evaluation_id, "succeeded", result=result)
    finally:
        _running.pop(evaluation_id, None)
        if cleanup is not None:
            await asyncio.to_thread(cleanup.cleanup)


async def stop_evaluations(state: AppState) -> None:
    """Cancels the server's running evaluations before its stores close; they read as interrupted."""
    tasks = [task for owner, task in list(_running.values()) if owner is state]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@router.post("", status_code=202)
async def start_evaluation(body: EvaluationRequest, response: Response, state: StateDep, tenant: WriterDep,
                           kb: KnowledgeBaseDep) -> EvaluationPublic:
    def prepare() -> tuple[RetrievalProfile, Any, tempfile.TemporaryDirectory | None]:
        with state.stack.sessions() as session:
            profile = RetrievalProfile.from_stored(crud.knowledge_base(session, tenant, kb).profile)
        if body.kind == "refusal":
            return profile, _rows(body), None
        folder = tempfile.TemporaryDirectory(prefix="sieve-eval-")
        try:
            return profile, _beir(body, Path(folder.name)), folder
        except BaseException:
            folder.cleanup()
            raise

    profile, data, folder = await asyncio.to_thread(prepare)

    def create() -> Evaluation:
        with state.stack.sessions.begin() as session:
            row = crud.add_evaluation(session, tenant, kb.id, body.kind, body.name)
            session.expunge(row)  # read after the session ends
            return row

    row = await asyncio.to_thread(create)
    if body.kind == "beir":
        work = _run_beir(state, tenant, kb, data, body.paths)
    else:
        work = asyncio.to_thread(_run_refusal, state, profile, data)
    _running[row.id] = (state, asyncio.create_task(_run(state, row.id, work, folder), name=f"sieve-eval-{row.id}"))
    response.headers["Location"] = f"/v1/knowledge-bases/{kb.name}/evaluations/{row.id}"
    return _public(row)


@router.get("")
async def list_evaluations(state: StateDep, tenant: WriterDep, kb: KnowledgeBaseDep) -> EvaluationsPublic:
    """The KB's evaluations, newest first, with their results (to compare runs)."""
    def rows() -> list[EvaluationPublic]:
        with state.stack.sessions() as session:
            return [_public(r) for r in crud.list_evaluations(session, tenant, kb.id)]

    return EvaluationsPublic(data=await asyncio.to_thread(rows))


@router.get("/{evaluation_id}")
async def get_evaluation(evaluation_id: str, state: StateDep, tenant: WriterDep,
                         kb: KnowledgeBaseDep) -> EvaluationPublic:
    def load() -> EvaluationPublic:
        with state.stack.sessions() as session:
            row = crud.get_evaluation(session, tenant, kb.id, evaluation_id)
            if row is None:
                raise HTTPException(404, f"evaluation {evaluation_id!r} does not exist in knowledge base {kb.name!r}")
            return _public(row)

    return await asyncio.to_thread(load)
