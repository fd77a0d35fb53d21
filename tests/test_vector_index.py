"""The embedded Qdrant Edge vector index: filters inside the engine, durability, threads, HNSW recall."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from sieve.stores.protocols import VectorIndex
from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex, point_id
from sieve.stores.types import IndexedChunk, ScoredChunk, SearchFilter

DIM = 32
KB = SearchFilter("acme", "handbook")


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunks(
    n: int, tenant: str = "acme", kb: str = "handbook", per_doc: int = 1, prefix: str = "c"
) -> list[IndexedChunk]:
    return [IndexedChunk(f"{prefix}{i}", f"d{i // per_doc}", tenant, kb, f"text {i}") for i in range(n)]


def ids(hits: list[ScoredChunk]) -> list[str]:
    return [h.chunk_id for h in hits]


@pytest.fixture
def index(tmp_path: Path):
    ix = QdrantEdgeVectorIndex(tmp_path / "vectors", DIM)
    yield ix
    ix.close()


def test_implements_the_vector_index_protocol(index):
    assert isinstance(index, VectorIndex)


def test_nearest_neighbour_of_a_stored_vector_is_its_chunk(index):
    vectors = unit_vectors(50)
    index.add(chunks(50), vectors)
    hits = index.search(vectors[7], KB, 5)
    assert hits[0] == ScoredChunk("c7", "d7", pytest.approx(1.0, abs=1e-5))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # cosine: scale does not matter
    assert ids(index.search(vectors[7] * 3.5, KB, 1)) == ["c7"]


def test_point_ids_are_stable_and_reuse_uuid_hex_chunk_ids():
    hex_id = uuid.uuid4().hex
    assert point_id(hex_id) == uuid.UUID(hex_id)
    assert point_id("chunk-1") == point_id("chunk-1") != point_id("chunk-2")


def test_tenants_sharing_a_kb_name_never_see_each_other(index):
    vectors = unit_vectors(2)
    index.add(
        [IndexedChunk("a1", "d1", "a", "handbook", "x"), IndexedChunk("b1", "d1", "b", "handbook", "x")],
        np.stack([vectors[0], vectors[0]]),
    )
    a, b = SearchFilter("a", "handbook"), SearchFilter("b", "handbook")
    assert ids(index.search(vectors[0], a, 10)) == ["a1"]
    assert ids(index.search(vectors[0], b, 10)) == ["b1"]
    assert index.count(a) == index.count(b) == 1
    index.delete_documents("a", "handbook", ["d1"])
    assert index.search(vectors[0], a, 10) == []
    assert ids(index.search(vectors[0], b, 10)) == ["b1"]


def test_knowledge_bases_of_one_tenant_are_separate(index):
    vectors = unit_vectors(20)
    index.add(chunks(10), vectors[:10])
    index.add(chunks(10, kb="wiki", prefix="w"), vectors[10:])
    assert set(ids(index.search(vectors[0], KB, 20))) == {f"c{i}" for i in range(10)}
    assert set(ids(index.search(vectors[0], SearchFilter("acme", "wiki"), 20))) == {f"w{i}" for i in range(10)}


def test_allow_list_limits_results_and_an_empty_one_allows_nothing(index):
    vectors = unit_vectors(30)
    index.add(chunks(30, per_doc=3), vectors)
    allowed = SearchFilter("acme", "handbook", frozenset({"d2", "d5"}))
    hits = index.search(vectors[0], allowed, 10)
    assert sorted(ids(hits)) == ["c15", "c16", "c17", "c6", "c7", "c8"]
    assert {h.doc_id for h in hits} == {"d2", "d5"}
    assert index.count(allowed) == 6
    nothing = SearchFilter("acme", "handbook", frozenset())
    assert index.search(vectors[0], nothing, 10) == []
    assert index.count(nothing) == 0


def test_delete_documents_removes_them_from_results_and_count(index):
    vectors = unit_vectors(30)
    index.add(chunks(30, per_doc=3), vectors)
    index.delete_documents("acme", "handbook", ["d0", "d9", "d-missing"])
    assert index.count(KB) == 24
    hits = index.search(vectors[0], KB, 30)
    assert len(hits) == 24
    assert not {"d0", "d9"} & {h.doc_id for h in hits}


def test_adding_a_chunk_again_replaces_its_vector(index):
    vectors = unit_vectors(3)
    index.add(chunks(1), vectors[:1])
    index.add(chunks(1), vectors[1:2])
    assert index.count(KB) == 1
    assert index.search(vectors[1], KB, 1)[0].score == pytest.approx(1.0, abs=1e-5)


def test_vectors_must_match_the_chunks_and_the_dimension(index):
    with pytest.raises(ValueError):
        index.add(chunks(2), unit_vectors(3))
    with pytest.raises(ValueError):
        index.add(chunks(2), unit_vectors(2, dim=DIM + 1))
    with pytest.raises(ValueError):
        index.search(unit_vectors(1, dim=DIM + 1)[0], KB, 3)
    assert index.count(KB) == 0


def test_points_survive_close_and_reopen(tmp_path):
    vectors = unit_vectors(40)
    first = QdrantEdgeVectorIndex(tmp_path / "vectors", DIM)
    first.add(chunks(40, per_doc=4), vectors)
    first.delete_documents("acme", "handbook", ["d1"])
    first.close()
    first.close()  # closing twice is harmless
    assert not first.health()
    with pytest.raises(RuntimeError):
        first.search(vectors[0], KB, 3)

    reopened = QdrantEdgeVectorIndex(tmp_path / "vectors", DIM)
    try:
        assert reopened.health()
        assert reopened.count(KB) == 36
        assert ids(reopened.search(vectors[20], KB, 1)) == ["c20"]
        assert reopened.search(vectors[5], KB, 1)[0].chunk_id != "c5"
    finally:
        reopened.close()


def test_a_second_opener_of_the_same_folder_is_refused(index, tmp_path):
    with pytest.raises(RuntimeError, match="already open"):
        QdrantEdgeVectorIndex(tmp_path / "vectors", DIM)


def test_reopening_with_another_dimension_fails(tmp_path):
    QdrantEdgeVectorIndex(tmp_path / "vectors", DIM).close()
    with pytest.raises(Exception, match="vector size"):
        QdrantEdgeVectorIndex(tmp_path / "vectors", DIM * 2)


def test_searches_from_threads_during_an_add_see_consistent_results(index):
    base = unit_vectors(100)
    index.add(chunks(100), base)
    extra = unit_vectors(2000, seed=1)
    errors: list[BaseException] = []
    seen_counts: list[int] = []
    done = threading.Event()

    def searcher(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not done.is_set():
                hits = index.search(base[rng.integers(100)], KB, 10)
                assert len(hits) == 10 and all(h.chunk_id[0] in "cx" for h in hits)
                seen_counts.append(index.count(KB))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        for n in range(20):
            batch = chunks(100, prefix=f"x{n}-")
            index.add(batch, extra[n * 100 : (n + 1) * 100])
    finally:
        done.set()
        for t in threads:
            t.join()

    assert errors == []
    assert seen_counts and all(100 <= c <= 2100 for c in seen_counts)
    assert index.count(KB) == 2100


def clustered_unit_vectors(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    v = centres[rng.integers(clusters, size=n)] + 0.7 * rng.standard_normal((n, dim))
    v = v.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_hnsw_top10_agrees_with_exact_search(tmp_path):
    n, dim = 5000, 64
    data = clustered_unit_vectors(n, dim, clusters=40, seed=3)
    queries = clustered_unit_vectors(100, dim, clusters=40, seed=3)  # same centres, fresh noise
    # a big tenant and a small one: filtered graph search must hold up for both
    tenants = np.where(np.arange(n) % 4 == 0, "globex", "acme")
    items = [IndexedChunk(f"c{i}", f"d{i // 5}", tenants[i], "handbook", "") for i in range(n)]

    # low thresholds so that 5,000 small vectors get a graph and searches walk it instead of scanning
    ix = QdrantEdgeVectorIndex(tmp_path / "vectors", dim, indexing_threshold_kb=100, full_scan_threshold_kb=10)
    try:
        ix.add(items, data)
        assert ix.optimize()  # the graph was built
        for tenant in ("acme", "globex"):
            rows = np.flatnonzero(tenants == tenant)
            recalls = []
            for q in queries:
                exact = {f"c{i}" for i in rows[np.argsort(-(data[rows] @ q))[:10]]}
                found = set(ids(ix.search(q, SearchFilter(tenant, "handbook"), 10)))
                recalls.append(len(exact & found) / 10)
            assert np.mean(recalls) >= 0.95, (tenant, np.mean(recalls))
    finally:
        ix.close()


def test_hnsw_with_a_callers_access_list_agrees_with_exact_search(tmp_path):
    n, dim = 5000, 64
    data = clustered_unit_vectors(n, dim, clusters=40, seed=5)
    queries = clustered_unit_vectors(100, dim, clusters=40, seed=5)
    # 30% of the chunks readable by the whole tenant, the rest by one of 50 groups
    acls = [("*",) if i % 10 < 3 else (f"group:g{i % 50}",) for i in range(n)]
    items = [IndexedChunk(f"c{i}", f"d{i}", "acme", "handbook", "", acls[i]) for i in range(n)]
    ix = QdrantEdgeVectorIndex(tmp_path / "vectors", dim, indexing_threshold_kb=100, full_scan_threshold_kb=10)
    try:
        ix.add(items, data)
        assert ix.optimize()
        # a third of the points (the whole tenant's and two groups'), and a small share (two groups alone)
        for readers in (frozenset({"*", "group:g5", "group:g6"}), frozenset({"group:g5", "group:g6"})):
            rows = np.flatnonzero([bool(readers & set(acl)) for acl in acls])
            recalls = []
            for q in queries:
                exact = {f"c{i}" for i in rows[np.argsort(-(data[rows] @ q))[:10]]}
                found = set(ids(ix.search(q, SearchFilter("acme", "handbook", readers=readers), 10)))
                assert found <= {f"c{i}" for i in rows}
                recalls.append(len(exact & found) / 10)
            assert np.mean(recalls) >= 0.95, (sorted(readers), np.mean(recalls))
    finally:
        ix.close()


def exact_top(data: np.ndarray, rows: np.ndarray, q: np.ndarray, k: int = 10) -> list[str]:
    return [f"c{i}" for i in rows[np.argsort(-(data[rows] @ q))[:k]]]


def test_a_build_aside_never_stops_searches_and_keeps_the_writes_made_meanwhile(tmp_path):
    """The serving path: the graph is built on a copy by another process; searches meanwhile are exact,
    and what was written or deleted during the build is there (or gone) once the copy is swapped in."""
    n, dim = 3000, 64
    data = clustered_unit_vectors(n + 500, dim, clusters=30, seed=7)
    queries = clustered_unit_vectors(30, dim, clusters=30, seed=7)
    items = chunks(n + 500)
    path = tmp_path / "vectors"
    ix = QdrantEdgeVectorIndex(path, dim, indexing_threshold_kb=100, full_scan_threshold_kb=10)
    try:
        ix.add(items[:n], data[:n])
        assert ix.needs_build() and ix.index_state() == {"points": n, "indexed": 0, "building": False}
        copy = ix.begin_build()
        assert ix.index_state()["building"]
        ix.add(items[n:], data[n:])  # uploads go on during the build ...
        ix.delete_documents("acme", "handbook", ["d0", "d1"])  # ... and so do deletes
        subprocess.run([sys.executable, "-m", "sieve.stores.qdrant_edge_optimize", str(copy)], check=True)
        live = np.arange(2, n + 500)
        for q in queries:  # the copy is built, not yet swapped in: the live shard answers, exactly
            assert ids(ix.search(q, KB, 10)) == exact_top(data, live, q)
        assert ix.finish_build(copy)
        state = ix.index_state()
        assert state["points"] == n + 498 and state["indexed"] >= n - 2 and not state["building"]
        assert not ix.needs_build()
        found = [len(set(ids(ix.search(q, KB, 10))) & set(exact_top(data, live, q))) / 10 for q in queries]
        assert np.mean(found) >= 0.95
        assert not set(ids(ix.search(data[0], KB, 50))) & {"c0", "c1"}
    finally:
        ix.close()
    reopened = QdrantEdgeVectorIndex(path, dim, indexing_threshold_kb=100, full_scan_threshold_kb=10)
    try:  # a restart opens the swapped-in copy, graphs and late writes included
        assert reopened.index_state() == state
        assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.b", "vectors.live"]
    finally:
        reopened.close()


def test_build_aside_twice_alternates_folders_and_a_closed_index_drops_its_build(tmp_path):
    dim = 64
    data = clustered_unit_vectors(2000, dim, clusters=20, seed=9)
    path = tmp_path / "vectors"
    ix = QdrantEdgeVectorIndex(path, dim, indexing_threshold_kb=100, full_scan_threshold_kb=10)
    ix.add(chunks(1000), data[:1000])
    assert ix.build_aside()
    ix.add(chunks(1000, prefix="x"), data[1000:])
    assert ix.needs_build() and ix.build_aside()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors"]  # back in the first folder, no marker
    assert ix.index_state()["indexed"] == 2000
    copy = ix.begin_build()
    ix.close()
    assert not ix.finish_build(copy)
