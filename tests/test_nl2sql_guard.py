"""The SQL guard against hostile statements, and a property test over honest ones.

A hostile statement must be refused (SQLRejected with a reason) or neutralised: rewritten so that, run on
a real two-tenant SQLite DB, it returns nothing of tenant t2 and nothing of documents that are not ready.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nl2sql_fixtures import MARKER, leaked, make_metadata_db

from sieve.nl2sql.executor import SQLExecutionError, execute_sqlite
from sieve.nl2sql.guard import SQLRejected, TableRule, guard
from sieve.nl2sql.schema import metadata_allowlist

TENANT_PREDICATE = "\"tenant_id\" = 't1'"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return make_metadata_db(tmp_path_factory.mktemp("nl2sql-guard"))


def check(sql: str, *, dialect: str = "sqlite", max_rows: int = 100, kb_id: str | None = None) -> str:
    return guard(sql, metadata_allowlist(kb_id), tenant="t1", dialect=dialect, max_rows=max_rows)  # type: ignore[arg-type]


REFUSED = [
    # stacked statements
    "SELECT id FROM documents; DELETE FROM documents",
    "SELECT id FROM documents; DROP TABLE documents",
    "SELECT 1; SELECT * FROM chunks",
    "SELECT id FROM documents;; UPDATE documents SET owner = 'x'",
    "SELECT id FROM documents\n;\nINSERT INTO tenants (id) VALUES ('x')",
    "BEGIN; SELECT 1",
    # comments that hide nothing: the second statement is still a second statement
    "SELECT id FROM documents /* */; DELETE FROM documents",
    "SELECT id FROM documents --\n; DELETE FROM documents",
    "/* just a select */ DELETE FROM documents",
    # other tables, by UNION or otherwise
    "SELECT id FROM documents UNION SELECT text FROM chunks",
    "SELECT id FROM documents UNION ALL SELECT id FROM tenants",
    "SELECT name FROM knowledge_bases UNION SELECT sql FROM sqlite_master",
    "SELECT id FROM documents UNION SELECT name FROM sqlite_schema",
    "SELECT title FROM documents UNION SELECT vector FROM embedding_cache",
    "SELECT id FROM documents UNION SELECT detail FROM ingest_journal",
    "SELECT id FROM documents UNION SELECT tbl_name FROM sqlite_temp_master",
    "SELECT id FROM documents NATURAL JOIN chunks",
    "SELECT id FROM documents WHERE id IN (SELECT doc_id FROM chunks)",
    # reaching for the tenant or internal columns
    "SELECT id, title FROM documents UNION SELECT id, title FROM documents WHERE tenant_id = 't2'",
    "SELECT id FROM documents WHERE tenant_id = 't2'",
    "SELECT id FROM documents WHERE tenant_id <> 't1' OR 1 = 1",
    "SELECT id FROM documents d WHERE d.\"tenant_id\" = 't2'",
    "SELECT ID, TiTlE FROM DOCUMENTS WHERE TENANT_ID = 't2'",
    "SELECT id FROM documents WHERE status = 'indexing'",
    "SELECT id, content_hash FROM documents",
    "SELECT * FROM knowledge_bases WHERE profile IS NOT NULL",
    "SELECT rowid, id FROM documents",
    "SELECT id FROM documents WHERE id = (SELECT id FROM documents WHERE tenant_id = 't2' LIMIT 1)",
    "SELECT id FROM (SELECT id, tenant_id FROM documents) WHERE tenant_id = 't2'",
    # CTE and subquery tricks
    "WITH documents AS (SELECT * FROM chunks) SELECT * FROM documents",
    "WITH documents AS (SELECT 1 AS id) SELECT id FROM documents",
    "WITH x AS (SELECT id FROM tenants) SELECT * FROM x",
    "SELECT * FROM (SELECT * FROM chunks) AS documents",
    "SELECT * FROM (WITH chunks AS (SELECT id FROM documents) SELECT * FROM chunks) AS a, chunks",
    "WITH a AS (SELECT id FROM documents), b AS (SELECT * FROM a UNION SELECT id FROM tenants) SELECT * FROM b",
    "SELECT id FROM documents AS d(tenant)",
    # writes hidden in CTEs or in a SELECT
    "WITH x AS (DELETE FROM documents RETURNING id) SELECT * FROM x",
    "WITH x AS (UPDATE documents SET tenant_id = 't1' RETURNING id) SELECT * FROM x",
    "WITH x AS (INSERT INTO tenants (id) VALUES ('z') RETURNING id) SELECT * FROM x",
    "SELECT * INTO stolen FROM documents",
    "CREATE TABLE stolen AS SELECT * FROM documents",
    "INSERT INTO documents SELECT * FROM documents",
    "UPDATE documents SET tenant_id = 't1'",
    "DELETE FROM documents",
    "DROP TABLE documents",
    "ALTER TABLE documents ADD COLUMN x TEXT",
    "REPLACE INTO tenants VALUES ('x', 'y', '2024-01-01')",
    "CREATE TRIGGER t AFTER INSERT ON documents BEGIN DELETE FROM documents; END",
    # database-level commands
    "ATTACH DATABASE '/tmp/other.db' AS other",
    "DETACH DATABASE main",
    "PRAGMA table_info(documents)",
    "PRAGMA writable_schema = ON",
    "VACUUM",
    "VACUUM INTO '/tmp/copy.db'",
    "SELECT * FROM pragma_table_info('documents')",
    "SELECT value FROM json_each('[1, 2]')",
    # functions outside the allow-list
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT readfile('/etc/passwd')",
    "SELECT writefile('/tmp/x', 'y')",
    "SELECT sqlite_version()",
    "SELECT randomblob(1000000000)",
    "SELECT zeroblob(1000000000)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT fts3_tokenizer('simple')",
    "SELECT printf('%.*c', 1000000000, 'x') FROM documents",
    # case, quoting and schema tricks
    "SELECT id FROM main.documents",
    "SELECT id FROM \"main\".\"documents\"",
    "SELECT id FROM temp.documents",
    "SELECT id FROM \"CHUNKS\"",
    "SELECT main.documents.id FROM documents",
    "SELECT id FROM [chunks]",
    # recursion bombs
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "WITH r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
    "WITH RECURSIVE a(x) AS (SELECT 1 UNION ALL SELECT x FROM a, documents) SELECT count(*) FROM a",
    # limits that are not numbers, parameters, malformed input
    "SELECT id FROM documents LIMIT (SELECT count(*) FROM chunks)",
    "SELECT id FROM documents LIMIT 1 OFFSET (SELECT 1)",
    "SELECT ? FROM documents",
    "SELECT id FROM documents WHERE owner = :owner",
    "SELECT id FROM documents\x00; DROP TABLE documents",
    "",
    "   ",
    "SELECT id FROM documents WHERE title = '" + "a" * 5000 + "'",
    "SELECT id FROM",
    "SELECT " + "(" * 1900 + "1" + ")" * 1900,
]

NEUTRALISED = [
    "SELECT id FROM documents -- ; DROP TABLE documents",
    "SELECT id FROM documents /* ; DELETE FROM documents */",
    "SELECT id, title FROM documents WHERE owner = '张伟' -- AND tenant_id = 't2'",
    "SELECT id FROM documents WHERE 1 = 1 /* OR tenant_id = 't2' */",
    "SELECT id, title FROM documents WHERE 1 = 1 OR 1 = 1",
    "SELECT id, title, owner FROM documents WHERE owner = '' OR '1' = '1'",
    "SELECT * FROM documents",
    "SELECT d.* FROM documents d",
    "SELECT * FROM knowledge_bases",
    "SELECT id FROM documents WHERE \"tenant_id\" = 't2'",
    "SELECT id FROM documents WHERE id IN (SELECT id FROM documents WHERE 1 = 1)",
    "WITH d AS (SELECT * FROM documents) SELECT * FROM d",
    "WITH d AS (SELECT * FROM documents WHERE 1 = 1 OR owner IS NULL) "
    "SELECT d.title FROM d UNION SELECT name FROM knowledge_bases",
    "SELECT (SELECT group_concat(title) FROM documents d2) FROM knowledge_bases",
    "SELECT id FROM documents d WHERE EXISTS (SELECT 1 FROM documents o WHERE o.owner = d.owner OR 1 = 1)",
    "SELECT k.name, (SELECT o.title FROM documents o WHERE o.kb_id = k.id OR 1 = 1 LIMIT 1) FROM knowledge_bases k",
    "SELECT d.title, k.name FROM documents d LEFT JOIN knowledge_bases k ON 1 = 1",
    "SELECT a.title FROM documents a CROSS JOIN documents b WHERE a.id <> b.id OR 1 = 1",
    "SELECT id FROM DoCuMeNtS",
    "SELECT id FROM \"documents\"",
    "SELECT id FROM [documents]",
    "SELECT id FROM `documents`",
    "SELECT title FROM documents UNION SELECT title FROM documents WHERE 1 = 1",
    "SELECT owner, count(*) AS n FROM documents GROUP BY owner HAVING count(*) > 0 ORDER BY n DESC",
    "SELECT id FROM documents LIMIT 1000000",
    "SELECT id FROM documents LIMIT -1",
    "SELECT id FROM documents ORDER BY created_at DESC LIMIT 3 OFFSET 1",
    "SELECT count(*) FROM documents a, documents b, documents c",
    "SELECT json_extract(meta, '$.department'), title FROM documents",
    "SELECT id FROM documents WHERE created_at >= '2023-01-01' AND created_at < '2024-01-01'",
]


@pytest.mark.parametrize("sql", REFUSED, ids=lambda s: s[:60])
def test_hostile_statement_is_refused_with_a_reason(sql):
    with pytest.raises(SQLRejected) as refused:
        check(sql)
    assert refused.value.reason.strip()


@pytest.mark.parametrize("sql", NEUTRALISED, ids=lambda s: s[:60])
def test_hostile_statement_is_neutralised(db, sql):
    guarded = check(sql)
    assert TENANT_PREDICATE in guarded
    limit = re.search(r"LIMIT (\d+)( OFFSET \d+)?$", guarded)
    assert limit and int(limit[1]) <= 100
    assert "--" not in guarded and "/*" not in guarded
    result = execute_sqlite(db.path, guarded, max_rows=1000)
    assert leaked(result.rows) == []
    assert "tenant_id" not in result.columns and "status" not in result.columns


def test_hostile_corpus_is_large_enough():
    assert len(REFUSED) + len(NEUTRALISED) >= 60


def test_or_true_still_sees_only_own_ready_documents(db):
    result = execute_sqlite(db.path, check("SELECT id FROM documents WHERE 1 = 1 OR 1 = 1"), max_rows=1000)
    assert {r[0] for r in result.rows} == db.t1_doc_ids


def test_huge_limit_is_clamped():
    assert check("SELECT id FROM documents LIMIT 99999", max_rows=50).endswith("LIMIT 50")
    assert check("SELECT id FROM documents", max_rows=50).endswith("LIMIT 50")
    assert check("SELECT id FROM documents LIMIT 7", max_rows=50).endswith("LIMIT 7")


def test_rejections_say_what_was_wrong():
    cases = {
        "SELECT id FROM documents; DROP TABLE documents": "one statement",
        "SELECT text FROM chunks": "chunks",
        "SELECT load_extension('x')": "load_extension",
        "SELECT tenant_id FROM documents": "tenant_id",
        "PRAGMA table_info(documents)": "SELECT",
        "SELECT id FROM main.documents": "schema-qualified",
    }
    for sql, words in cases.items():
        with pytest.raises(SQLRejected, match=re.escape(words)):
            check(sql)


def test_kb_scope_is_enforced_like_the_tenant(db):
    result = execute_sqlite(db.path, check("SELECT id FROM documents WHERE 1 = 1 OR 1 = 1", kb_id="kb-hr"), max_rows=100)
    assert {r[0] for r in result.rows} == {"ann-2024-hr"}


def test_missing_tenant_fails_closed():
    with pytest.raises(SQLRejected, match="tenant"):
        guard("SELECT id FROM documents", metadata_allowlist(), tenant=None)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_sleep(10)",
        "SELECT current_setting('is_superuser')",
        "COPY documents TO '/tmp/x'",
        "SELECT * FROM pg_catalog.pg_tables",
        "SELECT id FROM documents; SET ROLE postgres",
        "SELECT lo_import('/etc/passwd')",
        "SELECT id FROM documents FOR UPDATE",
        "SELECT id FROM documents FETCH FIRST 1000000 ROWS ONLY",
        "SELECT id FROM \"Documents\"",
        "SELECT * FROM dblink('host=x', 'select 1') AS t(a int)",
    ],
)
def test_postgres_hostile_statements_are_refused(sql):
    with pytest.raises(SQLRejected):
        check(sql, dialect="postgres")


def test_postgres_output_carries_the_predicates():
    guarded = check("SELECT meta ->> 'department', id FROM documents WHERE created_at > now() - interval '30 days'",
                    dialect="postgres")
    assert TENANT_PREDICATE in guarded and "\"status\" = 'ready'" in guarded and guarded.endswith("LIMIT 100")


def test_sqlite_double_quoted_strings_stay_strings_and_never_read_data(db):
    guarded = check("SELECT id FROM documents WHERE owner = \"张伟\"")
    rows = execute_sqlite(db.path, guarded, max_rows=100).rows
    assert {r[0] for r in rows} == {"zw-2023-train", "zw-2023-q4", "zw-2024-train"}


def test_timeout_stops_a_runaway_query(db):
    bomb = "SELECT count(*) FROM " + ", ".join(f"documents d{i}" for i in range(12))
    with pytest.raises(SQLExecutionError, match="timed out"):
        execute_sqlite(db.path, check(bomb), max_rows=10, timeout_s=0.2)


def test_connection_refuses_writes_even_without_the_guard(db):
    for sql in ("DELETE FROM documents", "PRAGMA query_only = OFF", "ATTACH DATABASE ':memory:' AS x",
                "SELECT * FROM sqlite_master"):
        with pytest.raises(SQLExecutionError):
            execute_sqlite(db.path, sql, max_rows=10)
    assert len(execute_sqlite(db.path, "SELECT id FROM documents", max_rows=100).rows) == 9


def test_allowlist_is_a_parameter_and_tenant_is_optional(tmp_path):
    import sqlite3

    path = tmp_path / "plain.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE city (name TEXT, pop INT, secret TEXT); "
                           "INSERT INTO city VALUES ('a', 1, 'x'), ('b', 2, 'y');")
    rules = {"city": TableRule(("name", "pop"))}
    guarded = guard("SELECT * FROM city ORDER BY pop", rules, tenant=None)
    assert execute_sqlite(path, guarded, max_rows=10).rows == [("a", 1), ("b", 2)]
    with pytest.raises(SQLRejected, match="secret"):
        guard("SELECT secret FROM city", rules, tenant=None)


# ---- property: honest SELECTs always carry the tenant predicate and never see another tenant ------------

COLUMNS = {"documents": ["id", "kb_id", "title", "owner", "filename", "created_at"],
           "knowledge_bases": ["id", "name", "description"]}
VALUES = ["张伟", "李娜", "t2", "kb-t2", f"{MARKER} Owner", "研发部", "x' OR '1'='1", "%", "2023-01-01"]


@st.composite
def predicates(draw, table: str, ref: str, depth: int) -> tuple[str, int]:
    """A WHERE condition on `ref`, and how many table references it adds."""
    column = f"{ref}.{draw(st.sampled_from(COLUMNS[table]))}"
    value = "'" + draw(st.sampled_from(VALUES)).replace("'", "''") + "'"
    kind = draw(st.sampled_from(["eq", "like", "true", "or", "not", "in", "exists"] if depth < 2 else ["eq", "like", "true"]))
    if kind == "eq":
        return f"{column} = {value}", 0
    if kind == "like":
        return f"{column} LIKE {value}", 0
    if kind == "true":
        return "1 = 1", 0
    if kind in ("or", "not"):
        left, n1 = draw(predicates(table, ref, depth + 1))
        right, n2 = draw(predicates(table, ref, depth + 1))
        return (f"({left} OR {right})" if kind == "or" else f"NOT ({left}) OR {right}"), n1 + n2
    sub, n = draw(selects(depth + 1, id_only=True))
    if kind == "in":
        return f"{ref}.id IN ({sub})", n
    return f"EXISTS ({sub})", n


@st.composite
def selects(draw, depth: int = 0, id_only: bool = False) -> tuple[str, int]:
    """An honest SELECT whose first column is an id of the table read; and its table-reference count."""
    table = draw(st.sampled_from(sorted(COLUMNS)))
    alias = draw(st.sampled_from(["", "t", "x1"]))
    ref = alias or table
    extra = [] if id_only else draw(st.lists(st.sampled_from(COLUMNS[table][1:]), max_size=2, unique=True))
    columns = ", ".join([f"{ref}.id"] + [f"{ref}.{c}" for c in extra])
    source = f"{table} AS {alias}" if alias else table
    refs = 1
    join = ""
    if table == "documents" and draw(st.booleans()):
        join = " JOIN knowledge_bases k ON k.id = " + ref + ".kb_id"
        refs += 1
    where, n = draw(predicates(table, ref, depth))
    sql = f"SELECT {columns} FROM {source}{join} WHERE {where}"
    refs += n
    shape = draw(st.sampled_from(["plain", "union", "cte", "derived"] if depth == 0 else ["plain"]))
    if shape == "union":
        other, m = draw(selects(depth + 1, id_only=True))
        return f"SELECT {ref}.id FROM {source}{join} WHERE {where} UNION {other}", refs + m
    if shape == "cte":
        return f"WITH c AS ({sql}) SELECT * FROM c", refs
    if shape == "derived":
        return f"SELECT s.* FROM ({sql}) AS s", refs
    return sql, refs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(selects())
def test_honest_selects_carry_the_tenant_predicate_and_see_only_the_tenant(db, generated):
    sql, table_refs = generated
    guarded = check(sql, max_rows=1000)
    assert guarded.count(TENANT_PREDICATE) == table_refs
    rows = execute_sqlite(db.path, guarded, max_rows=1000).rows
    assert {r[0] for r in rows} <= db.t1_doc_ids | db.t1_kb_ids
    assert leaked(rows) == []
