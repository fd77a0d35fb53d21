"""Production graph backend: NebulaGraph through nebula3-python (the `nebula` extra).

One space holds every tenant; each vertex and edge carries `tenant` and `kb`, and every traversal
filters on them inside graphd (`WHERE properties(edge).tenant == ...`). Vertex ids are our entity ids
(32 hex, `FIXED_STRING(32)`); chunks are vertices too, linked to their entities by `mentions` edges.
A relation found in several chunks is several `relation` edges between the same two entities, told
apart by their rank (a hash of chunk and label).

Walks are one `GO 1 STEP ... BIDIRECT` per hop over the whole frontier; the per-entity fan-out cap is
applied to each hop's rows before the next hop, so hubs never widen the walk (a hub's edges still
cross the wire once per hop that reaches it). Scoring matches the SQL backend.

The statement builders are pure functions (unit-tested); `NebulaGraphStore` only runs them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from more_itertools import chunked

from sieve.errors import ConfigurationError, Unavailable
from sieve.settings import Settings
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
from sieve.stores.graph_sql import HOP_DECAY
from sieve.stores.types import ScoredChunk, SearchFilter

log = logging.getLogger(__name__)

_BATCH = 500


def quote(value: str) -> str:
    """An nGQL string literal: every backslash, quote and line break escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def rank(*parts: str) -> int:
    """A signed 64-bit edge rank derived from `parts`."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:8], "big", signed=True)


def _ids(ids: Iterable[str]) -> str:
    return ", ".join(quote(i) for i in ids)


def schema_statements(space: str) -> list[str]:
    """Space, tags, edge types and the indexes deletes and counts look up by."""
    return [
        f"CREATE SPACE IF NOT EXISTS `{space}` (partition_num = 10, replica_factor = 1, vid_type = FIXED_STRING(32))",
        f"USE `{space}`; CREATE TAG IF NOT EXISTS entity(tenant string, kb string, name string, type string, norm string)",
        f"USE `{space}`; CREATE TAG IF NOT EXISTS chunk(tenant string, kb string, doc_id string)",
        f"USE `{space}`; CREATE EDGE IF NOT EXISTS relation(tenant string, kb string, relation string, weight double, "
        "chunk_id string, doc_id string)",
        f"USE `{space}`; CREATE EDGE IF NOT EXISTS mentions(tenant string, kb string, doc_id string, weight double)",
        f"USE `{space}`; CREATE TAG INDEX IF NOT EXISTS entity_scope ON entity(tenant(64), kb(32))",
        f"USE `{space}`; CREATE EDGE INDEX IF NOT EXISTS relation_doc ON relation(tenant(64), kb(32), doc_id(32))",
        f"USE `{space}`; CREATE EDGE INDEX IF NOT EXISTS mentions_doc ON mentions(tenant(64), kb(32), doc_id(32))",
    ]


def _scope(alias: str, tenant: str, kb: str, doc_ids: frozenset[str] | None = None) -> str:
    where = f"{alias}.tenant == {quote(tenant)} AND {alias}.kb == {quote(kb)}"
    if doc_ids is not None:
        where += f" AND {alias}.doc_id IN [{_ids(sorted(doc_ids))}]"
    return where


def upsert_statements(tenant: str, kb: str, extracted: Sequence[ChunkTriples]) -> list[str]:
    """INSERTs for the batch's entities (only if new: the first name wins), chunks, relations and mentions."""
    entities = entities_of(tenant, kb, extracted)
    vertices = [
        f"{quote(e.id)}:({quote(tenant)}, {quote(kb)}, {quote(e.name)}, {quote(e.type)}, {quote(normalise_name(e.name))})"
        for e in entities.values()
    ]
    chunks, relations, mentions = [], [], {}
    for c in extracted:
        linked: dict[str, float] = {}
        for t in c.triples:
            head, tail = entity_id(tenant, kb, t.head), entity_id(tenant, kb, t.tail)
            if head == tail:
                continue
            relations.append(
                f"{quote(head)}->{quote(tail)}@{rank(c.chunk_id, t.relation)}:({quote(tenant)}, {quote(kb)}, "
                f"{quote(t.relation)}, {float(t.weight)!r}, {quote(c.chunk_id)}, {quote(c.doc_id)})"
            )
            for eid in (head, tail):
                linked[eid] = max(linked.get(eid, 0.0), float(t.weight))
        if linked:
            chunks.append(f"{quote(c.chunk_id)}:({quote(tenant)}, {quote(kb)}, {quote(c.doc_id)})")
        for eid, weight in linked.items():
            mentions[(eid, c.chunk_id)] = (
                f"{quote(eid)}->{quote(c.chunk_id)}@0:({quote(tenant)}, {quote(kb)}, {quote(c.doc_id)}, {weight!r})"
            )
    statements = []
    for rows, head in (
        (vertices, "INSERT VERTEX IF NOT EXISTS entity(tenant, kb, name, type, norm) VALUES "),
        (chunks, "INSERT VERTEX chunk(tenant, kb, doc_id) VALUES "),
        (relations, "INSERT EDGE relation(tenant, kb, relation, weight, chunk_id, doc_id) VALUES "),
        (list(mentions.values()), "INSERT EDGE mentions(tenant, kb, doc_id, weight) VALUES "),
    ):
        statements += [head + ", ".join(batch) for batch in chunked(rows, _BATCH)]
    return statements


def hop_query(frontier: Iterable[str], flt: SearchFilter) -> str:
    """One hop from the frontier over relations in both directions, inside the filter's scope."""
    return (
        f"GO 1 STEP FROM {_ids(frontier)} OVER relation BIDIRECT "
        f"WHERE {_scope('properties(edge)', flt.tenant, flt.kb, flt.doc_ids)} "
        "YIELD id($^) AS origin, src(edge) AS head, dst(edge) AS tail, rank(edge) AS rank, "
        "properties(edge).relation AS relation, properties(edge).weight AS weight, "
        "properties(edge).chunk_id AS chunk_id, properties(edge).doc_id AS doc_id"
    )


def links_query(entity_ids: Iterable[str], flt: SearchFilter) -> str:
    """The chunks the entities are mentioned in."""
    return (
        f"GO FROM {_ids(entity_ids)} OVER mentions WHERE {_scope('properties(edge)', flt.tenant, flt.kb, flt.doc_ids)} "
        "YIELD src(edge) AS entity, dst(edge) AS chunk_id, properties(edge).doc_id AS doc_id, "
        "properties(edge).weight AS weight"
    )


def entities_query(entity_ids: Iterable[str], flt: SearchFilter) -> str:
    """Which of these ids are stored entities of the filter's KB (with their names)."""
    return (
        f"FETCH PROP ON entity {_ids(entity_ids)} YIELD id(vertex) AS id, properties(vertex).name AS name, "
        "properties(vertex).type AS type, properties(vertex).tenant AS tenant, properties(vertex).kb AS kb "
        f"| YIELD $-.id AS id, $-.name AS name, $-.type AS type WHERE $-.tenant == {quote(flt.tenant)} "
        f"AND $-.kb == {quote(flt.kb)}"
    )


def doc_edges_query(edge: str, tenant: str, kb: str, doc_ids: Sequence[str]) -> str:
    """The `relation` or `mentions` edges of some documents (by the edge index)."""
    docs = " OR ".join(f"{edge}.doc_id == {quote(d)}" for d in doc_ids)
    return (
        f"LOOKUP ON {edge} WHERE {edge}.tenant == {quote(tenant)} AND {edge}.kb == {quote(kb)} AND ({docs}) "
        "YIELD src(edge) AS src, dst(edge) AS dst, rank(edge) AS rank"
    )


def linked_docs_query(tenant: str, kb: str, doc_ids: Sequence[str]) -> str:
    """Which of these documents have `mentions` edges (by the edge index)."""
    docs = " OR ".join(f"mentions.doc_id == {quote(d)}" for d in doc_ids)
    return (
        f"LOOKUP ON mentions WHERE mentions.tenant == {quote(tenant)} AND mentions.kb == {quote(kb)} AND ({docs}) "
        "YIELD properties(edge).doc_id AS doc_id | YIELD DISTINCT $-.doc_id AS doc_id"
    )


def delete_edges_statement(edge: str, rows: Sequence[tuple[str, str, int]]) -> str:
    return f"DELETE EDGE {edge} " + ", ".join(f"{quote(s)}->{quote(d)}@{r}" for s, d, r in rows)


def count_query(kind: str, tenant: str, kb: str) -> str:
    """Entities (`entity`) or relations (`relation`) of one KB."""
    target = "TAG" if kind == "entity" else "EDGE"
    what = "id(vertex)" if target == "TAG" else "src(edge)"
    return (f"LOOKUP ON {kind} WHERE {kind}.tenant == {quote(tenant)} AND {kind}.kb == {quote(kb)} "
            f"YIELD {what} AS x | YIELD COUNT(*) AS n")


def any_entity_query(tenant: str, kb: str) -> str:
    """One entity of a KB, if it has any."""
    return (f"LOOKUP ON entity WHERE entity.tenant == {quote(tenant)} AND entity.kb == {quote(kb)} "
            "YIELD id(vertex) AS x | LIMIT 1")


def follow(rows: Iterable[Mapping[str, Any]], scores: Mapping[str, float], fanout: int,
           came_by: Mapping[str, tuple[str, str, int]]) -> list[dict[str, Any]]:
    """One hop's steps: each origin's `fanout` strongest relations, never straight back the way it came."""
    by_origin: dict[str, dict[tuple[str, str, int], Mapping[str, Any]]] = defaultdict(dict)
    for row in rows:
        key = (row["head"], row["tail"], row["rank"])
        if key != came_by.get(row["origin"]):
            by_origin[row["origin"]][key] = row
    steps = []
    for origin, candidates in by_origin.items():
        strongest = sorted(candidates.values(), key=lambda r: (-r["weight"], r["chunk_id"], r["rank"]))[:fanout]
        for row in strongest:
            to = row["tail"] if row["head"] == origin else row["head"]
            steps.append({**row, "to": to, "score": scores[origin] * row["weight"] * HOP_DECAY})
    return steps


class NebulaGraphStore:
    """`GraphStore` on NebulaGraph; entity-name vectors stay in the configured vector index."""

    def __init__(self, pool: Any, user: str, password: str, space: str, names: EntityNames):
        self.pool, self.user, self.password, self.space, self.names = pool, user, password, space, names

    @classmethod
    def from_settings(cls, settings: Settings, names: EntityNames) -> NebulaGraphStore:
        from nebula3.Config import Config
        from nebula3.gclient.net import ConnectionPool

        if not settings.nebula_address:
            raise ConfigurationError("graph_backend=nebula needs SIEVE_NEBULA_ADDRESS (host:port of graphd)")
        host, _, port = settings.nebula_address.rpartition(":")
        pool = ConnectionPool()
        if not pool.init([(host, int(port))], Config()):
            raise Unavailable(f"cannot reach NebulaGraph at {settings.nebula_address}")
        store = cls(pool, settings.nebula_user, settings.nebula_password, settings.nebula_space, names)
        store.create_schema()
        return store

    def _run(self, statement: str, in_space: bool = True) -> list[dict[str, Any]]:
        with self.pool.session_context(self.user, self.password) as session:
            result = session.execute(f"USE `{self.space}`; {statement}" if in_space else statement)
        if not result.is_succeeded():
            raise RuntimeError(f"nGQL failed: {result.error_msg()} in {statement[:200]}")
        keys = result.keys()
        return [dict(zip(keys, (v.cast() for v in result.row_values(i)))) for i in range(result.row_size())]

    def create_schema(self, wait_s: float = 30.0) -> None:
        """Creates what is missing; schema changes reach graphd on the next heartbeat, so retry until then."""
        deadline = time.monotonic() + wait_s
        for statement in schema_statements(self.space):
            while True:
                try:
                    self._run(statement, in_space=False)
                    break
                except RuntimeError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)

    def add(self, tenant: str, kb: str, extracted: Sequence[ChunkTriples]) -> int:
        entities = entities_of(tenant, kb, extracted)
        if not entities:
            return 0
        known = {r["id"] for r in self._run(entities_query(entities, SearchFilter(tenant, kb)))}
        self.names.add(tenant, kb, [e for eid, e in entities.items() if eid not in known])
        for statement in upsert_statements(tenant, kb, extracted):
            self._run(statement)
        return sum(1 for c in extracted for t in c.triples
                   if entity_id(tenant, kb, t.head) != entity_id(tenant, kb, t.tail))

    def delete_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        touched: set[str] = set()
        for docs in chunked(doc_ids, 50):
            chunk_ids: list[str] = []
            for edge in ("relation", "mentions"):
                rows = [(r["src"], r["dst"], r["rank"]) for r in self._run(doc_edges_query(edge, tenant, kb, docs))]
                if edge == "mentions":
                    touched.update(s for s, _, _ in rows)
                    chunk_ids = sorted({d for _, d, _ in rows})
                for batch in chunked(rows, _BATCH):
                    self._run(delete_edges_statement(edge, batch))
            if chunk_ids:
                self._run(f"DELETE VERTEX {_ids(chunk_ids)}")
        scope = SearchFilter(tenant, kb)
        linked = {r["entity"] for r in self._run(links_query(touched, scope))} if touched else set()
        orphans = sorted(touched - linked)
        for names in chunked(orphans, _BATCH):
            self._run(f"DELETE VERTEX {_ids(names)} WITH EDGE")
        self.names.delete(tenant, kb, orphans)

    def linked_documents(self, tenant: str, kb: str, doc_ids: Sequence[str]) -> set[str]:
        return {r["doc_id"] for batch in chunked(doc_ids, 50) for r in self._run(linked_docs_query(tenant, kb, batch))}

    def match_entities(self, names: Sequence[str], flt: SearchFilter) -> dict[str, float]:
        seeds = seed_scores(names, flt, self.names)
        if not seeds:
            return {}
        stored = {r["id"] for r in self._run(entities_query(seeds, flt))}
        return {eid: score for eid, score in seeds.items() if eid in stored}

    def _walk(self, seeds: Mapping[str, float], flt: SearchFilter, hops: int, fanout: int) -> list[dict[str, Any]]:
        frontier: dict[str, float] = dict(seeds)
        came_by: dict[str, tuple[str, str, int]] = {}
        steps: list[dict[str, Any]] = []
        for hop in range(1, hops + 1):
            if not frontier:
                break
            taken = follow(self._run(hop_query(frontier, flt)), frontier, fanout, came_by)
            for step in taken:
                step["hop"] = hop
            steps += taken
            # walks meeting at an entity merge (their scores add up): the sums are the SQL walk's, as scoring
            # is linear, except that the merged walk avoids going back by only one of the relations
            frontier, came_by = defaultdict(float), {}
            for step in taken:
                frontier[step["to"]] += step["score"]
                came_by[step["to"]] = (step["head"], step["tail"], step["rank"])
        return steps

    def expand(self, seeds: Mapping[str, float], flt: SearchFilter, hops: int, fanout: int, k: int) -> list[ScoredChunk]:
        if not seeds or flt.allows_nothing() or k <= 0:
            return []
        votes: dict[tuple[str, str], float] = defaultdict(float)
        for step in self._walk(seeds, flt, hops, fanout):
            votes[(step["chunk_id"], step["doc_id"])] += step["score"]
        per_seed: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self._run(links_query(seeds, flt)):
            per_seed[row["entity"]].append(row)
        for seed, rows in per_seed.items():
            for row in sorted(rows, key=lambda r: (-r["weight"], r["chunk_id"]))[:fanout]:
                votes[(row["chunk_id"], row["doc_id"])] += seeds[seed] * row["weight"]
        ranked = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0][0]))[:k]
        return [ScoredChunk(chunk_id, doc_id, score) for (chunk_id, doc_id), score in ranked]

    def neighbourhood(self, name: str, flt: SearchFilter, hops: int, fanout: int) -> Neighbourhood | None:
        eid = entity_id(flt.tenant, flt.kb, name)
        found = self._run(entities_query([eid], flt))
        if not found:
            return None
        steps = self._walk({eid: 1.0}, flt, hops, fanout)
        ids = {s["head"] for s in steps} | {s["tail"] for s in steps}
        names = {r["id"]: r["name"] for r in self._run(entities_query(ids, flt))} if ids else {}
        edges: dict[tuple[str, str, str, str], Edge] = {}
        for s in steps:
            key = (s["head"], s["relation"], s["tail"], s["chunk_id"])
            if key not in edges:
                edges[key] = Edge(names.get(s["head"], s["head"]), s["relation"], names.get(s["tail"], s["tail"]),
                                  s["weight"], s["chunk_id"], s["doc_id"], s["hop"])
        links = sorted(self._run(links_query([eid], flt)), key=lambda r: (-r["weight"], r["chunk_id"]))
        ordered = sorted(edges.values(), key=lambda e: (e.hop, -e.weight, e.head, e.tail))
        return Neighbourhood(Entity(eid, found[0]["name"], found[0]["type"]), ordered, [r["chunk_id"] for r in links])

    def count(self, flt: SearchFilter) -> tuple[int, int]:
        counts = [self._run(count_query(kind, flt.tenant, flt.kb)) for kind in ("entity", "relation")]
        return tuple(int(rows[0]["n"]) if rows else 0 for rows in counts)  # type: ignore[return-value]

    def has_entities(self, tenant: str, kb: str) -> bool:
        return bool(self._run(any_entity_query(tenant, kb)))

    def health(self) -> bool:
        try:
            self._run("SHOW HOSTS")
        except Exception:
            log.warning("NebulaGraph health check failed", exc_info=True)
            return False
        return True

    def close(self) -> None:
        self.names.close()
        self.pool.close()
