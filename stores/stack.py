"""The set of stores and models one process works with, built from settings alone."""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sieve.errors import ConfigurationError
from sieve.models.embedding import Embedder
from sieve.settings import Settings
from sieve.stores.database import init_db, make_engine
from sieve.stores.embedding_cache import EmbeddingCache, embed_passages_cached
from sieve.stores.graph import EntityNames, GraphStore
from sieve.stores.metadata import KnowledgeBase
from sieve.stores.protocols import TextIndex, VectorIndex

if TYPE_CHECKING:
    import numpy as np

    from sieve.models.image_embedder import ImageEmbedder
    from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Space:
    """One embedder's vectors: what ingest writes and dense search reads for a knowledge base."""

    embedder: Embedder
    vectors: VectorIndex
    cache: EmbeddingCache


def _space(embedder: Embedder | ImageEmbedder) -> str:
    """Folder name of one vector space: switching embedders never mixes incompatible vectors."""
    return f"{_space_name(embedder.name)}-{embedder.dim}"


def _space_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class Stack:
    """Metadata DB, text index, vector index and embedder for one `SIEVE_HOME`.

    Each role's engine is chosen by settings alone: `database_url`, `text_backend`, `vector_backend`.
    The embedder and the vector index load on first use, so commands that only read metadata
    (`sieve docs list`) stay fast. Embedded engines (tantivy, Qdrant Edge) have one owner: on a home
    that `sieve serve` runs on, only the server's process opens them; anyone else gets `EngineBusy`
    with the way round it, while the metadata DB stays open to all.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = make_engine(settings.resolved_database_url)
        self.sessions: sessionmaker[Session] = init_db(self.engine)
        self._embedder = embedder
        self._lock = threading.Lock()
        self._owner_checked = False
        self._home_hold: int | None = None
        self._spaces_lock = threading.Lock()
        self._tuned: dict[str, Embedder] = {}  # fine-tuned embedder folder -> its embedder
        self._spaces: dict[str, Space] = {}  # vector spaces of fine-tuned embedders other than the stack's, by name

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from sieve.models.factory import build_embedder

                self._embedder = build_embedder(self.settings)
            return self._embedder

    def check_owner(self) -> None:
        """`EngineBusy` when another process serves this home; called before opening any embedded engine:
        a second opener fails on their locks at best, and at worst leaves the server's vector shard
        unreadable. Outside the server, the first call holds the home until `close` (see server_record)."""
        from sieve.api.server_record import hold_engines

        with self._lock:
            if not self._owner_checked:
                self._home_hold = hold_engines(self.settings.home)
                self._owner_checked = True

    @cached_property
    def text(self) -> TextIndex:
        if self.settings.text_backend == "opensearch":
            from sieve.stores.opensearch_text import OpenSearchTextIndex

            return OpenSearchTextIndex.from_settings(self.settings)
        from sieve.stores.tantivy_text import TantivyTextIndex, TextIndexOutdated

        self.check_owner()
        path = self.settings.home / "text"
        try:
            return TantivyTextIndex(path)
        except TextIndexOutdated:
            return self._rebuilt_text_index(path)

    def _rebuilt_text_index(self, path: Path) -> TextIndex:
        """A home written before access lists: its text index is rebuilt from the metadata DB's chunks
        (analysis only, nothing embedded), and the embedded vector shard gets the lists in its payload."""
        import shutil

        from sieve.stores.acl import write_acls_everywhere
        from sieve.stores.tantivy_text import TantivyTextIndex

        logger.warning("the text index %s predates access lists: rebuilding it from the metadata DB", path)
        shutil.rmtree(path)
        index = TantivyTextIndex(path)
        engines: list[Any] = [index]
        if self.settings.vector_backend == "qdrant_edge":
            engines.append(self.vectors)
        write_acls_everywhere(self.sessions, engines)
        return index

    @cached_property
    def vectors(self) -> VectorIndex:
        return self._open_vectors(self.embedder)

    def _open_vectors(self, embedder: Embedder) -> VectorIndex:
        # one folder or collection set per vector space: switching embedders never mixes incompatible vectors
        name, dim = embedder.name, embedder.dim
        if self.settings.vector_backend == "qdrant":
            from sieve.stores.qdrant_server_vectors import QdrantServerVectorIndex

            return QdrantServerVectorIndex.from_settings(self.settings, name, dim)
        from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex

        self.check_owner()
        return QdrantEdgeVectorIndex(self.settings.home / "vectors" / _space(embedder), dim,
                                     indexing_threshold_kb=self.settings.hnsw_indexing_threshold_kb)

    def space(self, kb_id: str) -> Space:
        """The vector space a knowledge base's chunks live in: its profile's `embedding_model` (a fine-tuned
        embedder folder), else the stack's embedder."""
        with self.sessions() as session:
            profile = session.scalar(select(KnowledgeBase.profile).where(KnowledgeBase.id == kb_id)) or {}
        return self.model_space(profile.get("embedding_model"))

    def model_space(self, folder: str | Path | None) -> Space:
        """The embedder, vector index and embedding cache of a fine-tuned embedder folder (None: the stack's
        own); each opens once per process, shared by every knowledge base that uses it."""
        if folder is None:
            return Space(self.embedder, self.vectors, self.embedding_cache)
        from sieve.models.tuned_embedder import load_tuned_embedder

        key = str(Path(folder).resolve())
        with self._spaces_lock:
            if key not in self._tuned:
                self._tuned[key] = load_tuned_embedder(Path(key), self.settings.embedder_threads,
                                                       self.settings.embedder_batch_size)
            embedder = self._tuned[key]
            if embedder.name == self.embedder.name:  # the stack already serves this model (SIEVE_EMBEDDER=tuned)
                return self.model_space(None)
            if embedder.name not in self._spaces:
                self._spaces[embedder.name] = Space(embedder, self._open_vectors(embedder),
                                                    EmbeddingCache(self.sessions, embedder.name))
            return self._spaces[embedder.name]

    @cached_property
    def image_embedder(self) -> ImageEmbedder | None:
        """The CLIP-style model of the `image` path (a local folder or a server); None when none is configured."""
        from sieve.models.image_embedder import load_image_embedder

        return load_image_embedder(self.settings)

    @cached_property
    def image_vectors(self) -> VectorIndex:
        """Image vectors (one point per chunk an image belongs to), in a Qdrant Edge shard of their own."""
        from sieve.models.image_embedder import OpenAIImageEmbedder
        from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex

        embedder = self.image_embedder
        if embedder is None:
            raise ConfigurationError("no image embedder is configured (SIEVE_IMAGE_EMBEDDER_MODEL_PATH, or "
                                     "SIEVE_IMAGE_EMBEDDER=openai with SIEVE_IMAGE_EMBEDDER_BASE_URL)")
        self.check_owner()
        # a server's width is known from the vectors it wrote before: opening them asks the server nothing,
        # and a server that now answers another width is refused instead of starting an empty space
        stored = self._stored_image_widths(embedder.name)
        if isinstance(embedder, OpenAIImageEmbedder) and len(stored) == 1:
            embedder.expect(stored[0])
        return QdrantEdgeVectorIndex(self.settings.home / "image-vectors" / _space(embedder), embedder.dim,
                                     indexing_threshold_kb=self.settings.hnsw_indexing_threshold_kb)

    def has_image_vectors(self) -> bool:
        """Whether image vectors may exist to delete or re-permission: an image model is configured and has
        written some (or the index is open). Removing documents from a home without pictures loads no model
        and asks no server."""
        if not self.settings.image_embedder_configured:
            return False
        if self.is_open("image_vectors"):
            return True
        root = self.settings.home / "image-vectors"
        if not root.is_dir() or not any(root.iterdir()):
            return False
        embedder = self.image_embedder
        return embedder is not None and bool(self._stored_image_widths(embedder.name))

    def _stored_image_widths(self, name: str) -> list[int]:
        prefix = f"{_space_name(name)}-"
        root = self.settings.home / "image-vectors"
        found = root.glob(f"{prefix}*") if root.is_dir() else []
        return sorted(int(path.name[len(prefix):]) for path in found if path.name[len(prefix):].isdigit())

    @cached_property
    def embedding_cache(self) -> EmbeddingCache:
        return EmbeddingCache(self.sessions, self.embedder.name)

    @cached_property
    def graph(self) -> GraphStore:
        """Entities and relations (`graph_backend`); entity-name vectors in their own Qdrant Edge shard."""
        from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex

        def open_names() -> VectorIndex:
            self.check_owner()
            return QdrantEdgeVectorIndex(self.settings.home / "graph-entities" / _space(self.embedder), self.embedder.dim)

        def embed(texts: list[str]) -> np.ndarray:
            return embed_passages_cached(self.embedder, self.embedding_cache, texts,
                                         batch_size=self.settings.embedder_batch_size)[0]

        names = EntityNames(open_names, embed, self.settings.graph_entity_similarity)
        if self.settings.graph_backend == "nebula":
            from sieve.stores.nebula_graph import NebulaGraphStore

            return NebulaGraphStore.from_settings(self.settings, names)
        from sieve.stores.graph_sql import SqlGraphStore

        return SqlGraphStore(self.sessions, names)

    def open_edge_vectors(self) -> list[QdrantEdgeVectorIndex]:
        """The embedded vector shards this process has opened (text, fine-tuned spaces, images)."""
        from sieve.stores.qdrant_edge_vectors import QdrantEdgeVectorIndex

        with self._spaces_lock:
            opened = [space.vectors for space in self._spaces.values()]
        opened += [self.__dict__[name] for name in ("vectors", "image_vectors") if name in self.__dict__]
        return [index for index in opened if isinstance(index, QdrantEdgeVectorIndex)]

    def is_open(self, role: str) -> bool:
        """Whether `text`, `vectors` or `graph` has been opened (each opens on first use)."""
        return role in self.__dict__

    def close(self) -> None:
        for name in ("text", "vectors", "graph", "image_vectors"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
        while self._spaces:
            self._spaces.popitem()[1].vectors.close()
        if self._home_hold is not None:
            os.close(self._home_hold)  # after the engines: a server may start on the home from now on
            self._home_hold, self._owner_checked = None, False
        self.engine.dispose()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
