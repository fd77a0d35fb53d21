"""Embedded graph backend: tables in the metadata DB, N-hop walks by one recursive CTE.

Works on SQLite and PostgreSQL alike. Every statement carries the tenant and KB predicates (and the
document allow-list when there is one), so isolation holds inside the engine. The fan-out cap sits in
the CTE's recursive step as a correlated `IN (... ORDER BY weight DESC LIMIT :fanout)`: both engines
accept it there, whereas window functions and LATERAL are not allowed (SQLite) in a recursive step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from more_itertools import chunked
from sqlalchemy import TextClause, bindparam, delete, exists, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from sieve.stores.graph import (
    ChunkTriples,
    Edge,
    Entity,
    EntityNames,
    Neighbourhood,
    entities_of,
    entity_id,
    normalise_name,
    seed_scores,
)
from sieve.stores.metadata import GraphEntity, GraphLink, GraphRelation
from sieve.stores.types import ScoredChunk, SearchFilter

log = logging.getLogger(__name__)

HOP_DECAY = 0.5
_BATCH = 500  # ids per IN list: far below SQLite's and PostgreSQL's bound-parameter limits
# both dialects' inserts have on_conflict_do_nothing; the generic Insert type does not
_INSERT: dict[str, Callable[..., Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def walk_sql(n_seeds: int, with_doc_ids: bool) -> str:
    """The recursive CTE `walk(entity_id, hop, score, relation_id, chunk_id, doc_id)` from the seeds.

    Each row is one relation followed; `relation_id` is -1 on the seed rows. A walk never goes straight
    back over the relation it came by. Parameters: :tenant, :kb, :hops, :fanout, :i<n>/:s<n> per seed,
    and :doc_ids (expanding) when `with_doc_ids`.
    """
    seeds = ", ".join(f"(:i{n}, CAST(:s{n} AS FLOAT))" for n in range(n_seeds))
    docs = " AND x.doc_id IN :doc_ids" if with_doc_ids else ""

    def strongest(end: str) -> str:
        # one end at a time, so the (end, weight) index yields the strongest first and a hub costs
        # `fanout` rows, not its degree; the outer query keeps the strongest of both ends
        return (f"SELECT x.id FROM graph_relations x WHERE x.{end} = w.entity_id AND x.tenant_id = :tenant "
                f"AND x.kb_id = :kb AND x.id <> w.relation_id{docs} ORDER BY x.weight DESC, x.id DESC LIMIT :fanout")

    return f"""
WITH RECURSIVE
seed(id, score) AS (VALUES {seeds}),
start(id, score) AS (
    SELECT e.id, MAX(seed.score) FROM seed JOIN graph_entities e ON e.id = seed.id
    WHERE e.tenant_id = :tenant AND e.kb_id = :kb
    GROUP BY e.id
),
walk(entity_id, hop, score, relation_id, chunk_id, doc_id) AS (
    SELECT id, 0, score, -1, CAST(NULL AS VARCHAR(32)), CAST(NULL AS VARCHAR(32)) FROM start
    UNION ALL
    SELECT CASE WHEN r.head_id = w.entity_id THEN r.tail_id ELSE r.head_id END,
           w.hop + 1, w.score * r.weight * {HOP_DECAY}, r.id, r.chunk_id, r.doc_id
    FROM walk w JOIN graph_relations r ON r.id IN (
        SELECT y.id FROM graph_relations y
        WHERE y.id IN ({strongest("head_id")}) OR y.id IN ({strongest("tail_id")})
        ORDER BY y.weight DESC, y.id DESC LIMIT :fanout
    )
    WHERE w.hop < :hops
)"""


def expand_sql(n_seeds: int, with_doc_ids: bool) -> str:
    """Chunks of the walk (one vote per relation followed) plus each seed's `fanout` strongest links.

    Both take an entity's strongest rows straight from an (entity, weight) index, ties broken by id
    in index order, so a hub costs `fanout` rows, not its degree.
    """
    docs = " AND m.doc_id IN :doc_ids" if with_doc_ids else ""
    return walk_sql(n_seeds, with_doc_ids) + f""",
seed_links(chunk_id, doc_id, score) AS (
    SELECT l.chunk_id, l.doc_id, s.score * l.weight
    FROM start s JOIN graph_links l ON l.entity_id = s.id AND l.chunk_id IN (
        SELECT m.chunk_id FROM graph_links m
        WHERE m.entity_id = s.id AND m.tenant_id = :tenant AND m.kb_id = :kb{docs}
        ORDER BY m.weight DESC, m.chunk_id DESC LIMIT :fanout
    )
)
SELECT chunk_id, doc_id, SUM(score) AS score FROM (
    SELECT chunk_id, doc_id, score FROM walk WHERE hop > 0
    UNION ALL
    SELECT chunk_id, doc_id, score FROM seed_links
) votes
GROUP BY chunk_id, doc_id
ORDER BY score DESC, chunk_id
LIMIT :k"""


def edges_sql(with_doc_ids: bool) -> str:
    """The relations a walk from one seed follows, with both ends named (for `graph show`)."""
    return walk_sql(1, with_doc_ids) + """
SELECT h.name, r.relation, t.name, r.weight, r.chunk_id, r.doc_id, MIN(w.hop) AS hop
FROM walk w
JOIN graph_relations r ON r.id = w.relation_id
JOIN graph_entities h ON h.id = r.head_id
JOIN graph_entities t ON t.id = r.tail_id
WHERE w.hop > 0
GROUP BY h.name, r.relation, t.name, r.weight, r.chunk_id, r.doc_id
ORDER BY hop, r.weight DESC, h.name, t.name"""


class SqlGraphStore:
    """`GraphStore` over the metadata DB's graph tables plus an entity-name vector index."""

    def __init__(self, sessions: sessionmaker[Session], names: EntityNames):
        self.sessions = sessions
        self.names = names

    def add(self, tenant: str, kb: str, extracted: Sequence[ChunkTriples]) -> int:
        entities = entities_of(tenant, kb, extracted)
        if not entities:
            return 0
        relations: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        links: dict[tuple[str, str], dict[str, Any]] = {}
        for chunk in extracted:
            for t in chunk.triples:
                head, tail = entity_id(tenant, kb, t.head), entity_id(tenant, kb, t.tail)
                if head == tail:
                    continue
                key = (chunk.chunk_id, head, tail, t.relation)
                row = relations.setdefault(key, {
                    "tenant_id": tenant, "kb_id": kb, "head_id": head, "tail_id": tail, "relation": t.relation,
                    "weight": 0.0, "chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id,
                })
                row["weight"] = max(row["weight"], t.weight)
                for eid in (head, tail):
                    link = links.setdefault((eid, chunk.chunk_id), {
                        "entity_id": eid, "chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id,
                        "tenant_id": tenant, "kb_id": kb, "weight": 0.0,
                    })
                    link["weight"] = max(link["weight"], t.weight)
        with self.sessions() as session:
            known = {i for batch in chunked(entities, _BATCH) for i in session.scalars(
                select(GraphEntity.id).where(GraphEntity.id.in_(batch)))}
        new = [e for eid, e in entities.items() if eid not in known]
        # vectors before rows: a vector without its row is never matched (seeds join the entity table)
        self.names.add(tenant, kb, new)
        with self.sessions.begin() as session:
            insert = _INSERT[session.get_bind().dialect.name]
            if new:
                session.execute(insert(GraphEntity).on_conflict_do_nothing(index_elements=["id"]), [
                    {"id": e.id, "tenant_id": tenant, "kb_id": kb, "name": e.name, "type": e.type,
                     "norm": normalise_name(e.name)} for e in new
                ])
            if relations:
                session.execute(insert(GraphRelation), list(relations.values()))
                session.execute(
                    insert(GraphLink).on_conflict_do_nothing(index_elements=["entity_id", "chunk_id"]),
                    list(links.values()),
                )
        return len(relations)

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        orphans: list[str] = []
        with self.sessions.begin() as session:
            scope = (GraphLink.tenant_id == tenant, GraphLink.kb_id == kb)
            touched: set[str] = set()
            for batch in chunked(doc_ids, _BATCH):
                touched.update(session.scalars(select(GraphLink.entity_id).where(*scope, GraphLink.doc_id.in_(batch))))
                session.execute(delete(GraphRelation).where(
                    GraphRelation.tenant_id == tenant, GraphRelation.kb_id == kb, GraphRelation.doc_id.in_(batch)))
                session.execute(delete(GraphLink).where(*scope, GraphLink.doc_id.in_(batch)))
            for batch in chunked(sorted(touched), _BATCH):
                linked = exists().where(GraphLink.entity_id == GraphEntity.id)
                gone = list(session.scalars(select(GraphEntity.id).where(GraphEntity.id.in_(batch), ~linked)))
                if gone:
                    session.execute(delete(GraphEntity).where(GraphEntity.id.in_(gone)))
                    orphans.extend(gone)
        # rows first: a crash here leaves vectors of gone entities, which never match and are overwritten
        # if the entity comes back under the same id
        self.names.delete(tenant, kb, orphans)

    def linked_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> set[str]:
        with self.sessions() as session:
            return {d for batch in chunked(doc_ids, _BATCH) for d in session.scalars(
                select(GraphLink.doc_id).distinct().where(
                    GraphLink.doc_id.in_(batch), GraphLink.tenant_id == tenant, GraphLink.kb_id == kb))}

    def match_entities(self, names: Sequence[str], flt: SearchFilter) -> dict[str, float]:
        seeds = seed_scores(names, flt, self.names)
        if not seeds:
            return {}
        with self.sessions() as session:
            stored = set(session.scalars(select(GraphEntity.id).where(
                GraphEntity.id.in_(list(seeds)), GraphEntity.tenant_id == flt.tenant, GraphEntity.kb_id == flt.kb)))
        return {eid: score for eid, score in seeds.items() if eid in stored}

    def expand(
        self, seeds: Mapping[str, float], flt: SearchFilter, hops: int, fanout: int, k: int
    ) -> list[ScoredChunk]:
        if not seeds or flt.allows_nothing() or k <= 0:
            return []
        params = self._params(seeds, flt, hops, fanout) | {"k": k}
        statement = self._statement(expand_sql(len(seeds), flt.doc_ids is not None), flt)
        with self.sessions() as session:
            rows = session.execute(statement, params).all()
        return [ScoredChunk(chunk_id, doc_id, float(score)) for chunk_id, doc_id, score in rows]

    def neighbourhood(self, name: str, flt: SearchFilter, hops: int, fanout: int) -> Neighbourhood | None:
        eid = entity_id(flt.tenant, flt.kb, name)
        with self.sessions() as session:
            row = session.scalar(select(GraphEntity).where(
                GraphEntity.id == eid, GraphEntity.tenant_id == flt.tenant, GraphEntity.kb_id == flt.kb))
            if row is None:
                return None
            links = select(GraphLink.chunk_id).where(
                GraphLink.entity_id == eid, GraphLink.tenant_id == flt.tenant, GraphLink.kb_id == flt.kb)
            if flt.doc_ids is not None:
                links = links.where(GraphLink.doc_id.in_(sorted(flt.doc_ids)))
            chunk_ids = list(session.scalars(links.order_by(GraphLink.weight.desc(), GraphLink.chunk_id)))
            statement = self._statement(edges_sql(flt.doc_ids is not None), flt)
            rows = session.execute(statement, self._params({eid: 1.0}, flt, hops, fanout)).all()
        return Neighbourhood(Entity(row.id, row.name, row.type), [Edge(*r) for r in rows], chunk_ids)

    def count(self, flt: SearchFilter) -> tuple[int, int]:
        with self.sessions() as session:
            entities = session.scalar(select(func.count()).select_from(GraphEntity).where(
                GraphEntity.tenant_id == flt.tenant, GraphEntity.kb_id == flt.kb))
            relations = session.scalar(select(func.count()).select_from(GraphRelation).where(
                GraphRelation.tenant_id == flt.tenant, GraphRelation.kb_id == flt.kb))
        return int(entities or 0), int(relations or 0)

    def has_entities(self, tenant: str, kb: str) -> bool:
        with self.sessions() as session:
            return session.scalar(select(GraphEntity.id).where(
                GraphEntity.tenant_id == tenant, GraphEntity.kb_id == kb).limit(1)) is not None

    def health(self) -> bool:
        try:
            with self.sessions() as session:
                session.execute(text("SELECT 1"))
        except Exception:
            log.warning("graph tables health check failed", exc_info=True)
            return False
        return True

    def close(self) -> None:
        self.names.close()

    @staticmethod
    def _statement(sql: str, flt: SearchFilter) -> TextClause:
        statement = text(sql)
        if flt.doc_ids is not None:
            statement = statement.bindparams(bindparam("doc_ids", expanding=True))
        return statement

    @staticmethod
    def _params(seeds: Mapping[str, float], flt: SearchFilter, hops: int, fanout: int) -> dict[str, Any]:
        params: dict[str, Any] = {"tenant": flt.tenant, "kb": flt.kb, "hops": hops, "fanout": fanout}
        for n, (eid, score) in enumerate(seeds.items()):
            params[f"i{n}"], params[f"s{n}"] = eid, float(score)
        if flt.doc_ids is not None:
            params["doc_ids"] = sorted(flt.doc_ids)
        return params
