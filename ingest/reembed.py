"""`sieve kb reembed`: a knowledge base's chunks embedded again with another embedder, then switched over.

The new vectors go into the new model's own vector space while the KB's profile still names the old
model, so every query keeps searching the old vectors until the new ones are complete; one
transaction then names the new model in the profile, and only after that are the old vectors
deleted. Vectors come through the embedding cache (keyed by the model's name, which carries its
hash), so an interrupted run started again embeds only what it had not reached.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from more_itertools import chunked
from sqlalchemy import select
from tqdm import tqdm

from sieve.errors import InvalidInput
from sieve.stores.acl import acls_of
from sieve.stores.catalog import get_kb
from sieve.stores.crud import KbId, ready_document_ids
from sieve.stores.embedding_cache import embed_passages_cached
from sieve.stores.metadata import Chunk, KnowledgeBase
from sieve.stores.stack import Space, Stack
from sieve.stores.types import IndexedChunk

_DOCS_PER_BATCH = 100
log = logging.getLogger(__name__)


@dataclass
class ReembedReport:
    kb: str
    model: str  # the vector space's name now serving the KB
    model_path: str | None  # its folder; None = the deployment's embedder
    documents: int
    chunks: int
    embedded: int  # chunks not found in the embedding cache
    seconds: float


def _ready_docs(stack: Stack, kb_id: str) -> list[str]:
    with stack.sessions() as session:
        return ready_document_ids(session, KbId(kb_id))


def _embed_into(stack: Stack, space: Space, tenant: str, kb_id: str, doc_ids: list[str], bar: tqdm) -> tuple[int, int]:
    """(chunks, newly embedded) after writing the documents' chunks into `space`."""
    chunks = embedded = 0
    for batch in chunked(doc_ids, _DOCS_PER_BATCH):
        with stack.sessions() as session:
            acls = acls_of(session, batch)
            rows = session.execute(select(Chunk.id, Chunk.doc_id, Chunk.text).where(Chunk.doc_id.in_(batch))
                                   .order_by(Chunk.doc_id, Chunk.ordinal)).all()
        indexed = [IndexedChunk(cid, did, tenant, kb_id, text, acls.get(did, ())) for cid, did, text in rows]
        vectors, fresh = embed_passages_cached(space.embedder, space.cache, [c.text for c in indexed],
                                               batch_size=stack.settings.embedder_batch_size, on_progress=bar.update)
        if indexed:
            space.vectors.add(indexed, vectors)
        chunks, embedded = chunks + len(indexed), embedded + fresh
    return chunks, embedded


def reembed(stack: Stack, tenant: str, kb: str, model: Path | None, progress: bool = False) -> ReembedReport:
    """Embed every ready chunk of `kb` with `model` (a `sieve finetune embedder` folder; None: the deployment's
    embedder), then switch the KB to it and drop its vectors from the old space."""
    from sieve.models.tuned_embedder import read_model_folder

    t0 = time.perf_counter()
    folder = None if model is None else str(Path(model).resolve())
    if folder is not None:
        read_model_folder(Path(folder))  # a clear refusal before anything is written
    with stack.sessions() as session:
        row = get_kb(session, tenant, kb)
        kb_id, old_folder = row.id, (row.profile or {}).get("embedding_model")
    target = stack.model_space(folder)
    try:
        old = stack.model_space(old_folder)
    except InvalidInput:  # the old model's folder is gone or broken: switching away from it is the way out
        log.warning("the previous embedder %s of %s does not load; its vectors stay where they are", old_folder, kb)
        old = None
    doc_ids = _ready_docs(stack, kb_id)
    with tqdm(desc=f"reembed {kb}", unit="chunk", disable=not progress) as bar:
        chunks, embedded = _embed_into(stack, target, tenant, kb_id, doc_ids, bar)
        with stack.sessions.begin() as session:  # the switch: queries search the new vectors from here on
            row = session.get_one(KnowledgeBase, kb_id)
            profile = {k: v for k, v in (row.profile or {}).items() if k != "embedding_model"}
            row.profile = profile if folder is None else {**profile, "embedding_model": folder}
        # documents that became ready while this ran were written to the old space: bring them over too
        late = sorted(set(_ready_docs(stack, kb_id)) - set(doc_ids))
        more, more_embedded = _embed_into(stack, target, tenant, kb_id, late, bar)
    if old is not None and target.embedder.name != old.embedder.name:
        old.vectors.delete_documents(tenant, kb_id, doc_ids + late)
    return ReembedReport(kb, target.embedder.name, folder, len(doc_ids) + len(late), chunks + more,
                         embedded + more_embedded, round(time.perf_counter() - t0, 1))
