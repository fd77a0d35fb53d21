"""The SQL guard: every statement, whoever wrote it, is parsed, checked and rewritten here before it runs.

What comes out is a single read-only SELECT over allow-listed tables and columns, in which every physical
table reference has been replaced by a subquery that applies the tenant predicate (and any fixed filters
such as status = 'ready') and exposes only the allow-listed columns. Because the filter lives inside the
replacement, nothing the statement does around it (OR 1=1, UNION, correlation, CTEs) can reach rows of
another tenant. Comments are dropped because the SQL is regenerated from the syntax tree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope, walk_in_scope

from sieve.errors import InvalidInput, SieveError

Dialect = Literal["sqlite", "postgres"]

DEFAULT_MAX_ROWS = 200
DEFAULT_MAX_CHARS = 4000


class SQLRefused(SieveError):
    """A statement that does not run: refused by the guard, or failed in the database; `reason` says
    why in words a user can act on."""

    @property
    def reason(self) -> str:
        return self.message


class SQLRejected(SQLRefused, InvalidInput):
    """The guard refused the statement."""


@dataclass(frozen=True)
class TableRule:
    """What a statement may see of one table.

    `columns` are the only columns exposed (in this order for `SELECT *`); `tenant_column` names the
    column compared with the caller's tenant (None: the table is not tenant-scoped); `filters` are
    further fixed equality predicates (e.g. status = 'ready') applied the same way; `acl_column` names
    the document id whose access list must admit the caller's readers (None: no document rows).
    """

    columns: tuple[str, ...]
    tenant_column: str | None = None
    filters: Mapping[str, str] = field(default_factory=dict)
    acl_column: str | None = None


Allowlist = Mapping[str, TableRule]

# Syntax a read-only question may use. Anything else (DML, DDL, PRAGMA, ATTACH, SELECT INTO, FOR UPDATE,
# FETCH, VALUES, table functions, parameters, unparsed commands ...) is refused by not being listed here.
_ALLOWED_NODES: frozenset[type[exp.Expression]] = frozenset({
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.With, exp.CTE, exp.Subquery, exp.From, exp.Join,
    exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Distinct,
    exp.Alias, exp.TableAlias, exp.Table, exp.Column, exp.Identifier, exp.Star, exp.Literal, exp.Null,
    exp.Boolean, exp.Paren, exp.Tuple, exp.Not, exp.And, exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE,
    exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Glob, exp.Escape, exp.Exists,
    exp.Any, exp.All, exp.Case, exp.If, exp.Cast, exp.DataType, exp.DataTypeParam, exp.Neg, exp.Add,
    exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe, exp.Collate, exp.Window, exp.WindowSpec, exp.Interval,
    exp.Var, exp.JSONPath, exp.JSONPathKey, exp.JSONPathRoot, exp.JSONPathSubscript,
})

# Functions by their parsed type (sqlglot maps known SQL functions to classes across dialects) ...
_ALLOWED_FUNCTIONS: frozenset[type[exp.Func]] = frozenset({
    exp.Count, exp.Min, exp.Max, exp.Sum, exp.Avg, exp.GroupConcat, exp.Lower, exp.Upper, exp.Length,
    exp.Substring, exp.Coalesce, exp.Nullif, exp.Trim, exp.Replace, exp.StrPosition, exp.Concat, exp.Abs,
    exp.Round, exp.Greatest, exp.Least, exp.Date, exp.TimeToStr, exp.TsOrDsToTimestamp, exp.StrToTime,
    exp.CurrentDate, exp.CurrentTimestamp, exp.CurrentTime, exp.Extract, exp.DateTrunc, exp.TimestampTrunc,
    exp.RowNumber, exp.Rank, exp.DenseRank, exp.JSONExtract, exp.JSONExtractScalar,
})
# ... and the few that sqlglot leaves anonymous, by lower-case name.
_ALLOWED_ANONYMOUS: frozenset[str] = frozenset({"date", "datetime", "time", "julianday", "total", "json_array_length"})


def guard(
    sql: str,
    allowlist: Allowlist,
    *,
    tenant: str | None,
    readers: Collection[str] | None = None,
    dialect: Dialect = "sqlite",
    max_rows: int = DEFAULT_MAX_ROWS,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """Check `sql` and return it rewritten as it will run, or raise `SQLRejected` with the reason.

    `readers` are the caller's access-list entries: rows of documents none of them may read are
    removed next to the tenant predicate (None: a tenant-wide caller)."""
    try:
        return _guard(sql, allowlist, tenant, readers, dialect, max_rows, max_chars)
    except RecursionError:  # sqlglot is recursive; deep nesting must be a refusal, not a crash
        raise SQLRejected("statement is nested too deeply") from None


def _guard(
    sql: str, allowlist: Allowlist, tenant: str | None, readers: Collection[str] | None, dialect: Dialect,
    max_rows: int, max_chars: int,
) -> str:
    tree = _parse_single(sql, dialect, max_chars)
    _check_syntax(tree)
    rules = {name.lower(): rule for name, rule in allowlist.items()}
    if dialect == "sqlite":
        _double_quoted_strings_to_literals(tree, rules)
    tree = normalize_identifiers(tree, dialect=dialect)
    cte_names = _check_ctes(tree, rules)
    physical, cte_refs = _resolve(tree, rules)
    for table in physical:
        table.replace(_filtered_source(table, rules[table.name], tenant, readers))
    for table, cte in cte_refs:
        if not table.args.get("alias"):  # keep the name the query uses for it
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
        table.set("this", exp.to_identifier(cte_names[id(cte)]))
    for cte in tree.find_all(exp.CTE):
        cte.args["alias"].set("this", exp.to_identifier(cte_names[id(cte)]))
    _enforce_limit(tree, max_rows)
    if dialect == "sqlite":
        _commas_for_cross_joins(tree)
    return tree.sql(dialect=dialect, comments=False)


def _parse_single(sql: str, dialect: Dialect, max_chars: int) -> exp.Expression:
    if not isinstance(sql, str) or not sql.strip():
        raise SQLRejected("empty statement")
    if len(sql) > max_chars:
        raise SQLRejected(f"statement too long ({len(sql)} characters, at most {max_chars})")
    if "\x00" in sql:
        raise SQLRejected("statement contains a NUL character")
    try:
        parsed = sqlglot.parse(sql, read=dialect)
    except SqlglotError as err:
        raise SQLRejected(f"could not parse the statement: {_first_line(err)}") from None
    # A trailing ';' or a lone comment parses as an empty statement; it runs nothing.
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if len(statements) != 1:
        raise SQLRejected(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise SQLRejected(f"only SELECT statements are allowed, got {tree.key.upper()}")
    return tree


def _check_syntax(tree: exp.Expression) -> None:
    for node in tree.walk():
        kind = type(node)
        if kind in _ALLOWED_NODES:
            continue
        if isinstance(node, exp.Anonymous):
            if node.name.lower() not in _ALLOWED_ANONYMOUS:
                raise SQLRejected(f"function {node.name}() is not allowed")
        elif isinstance(node, exp.Func):
            if kind not in _ALLOWED_FUNCTIONS:
                raise SQLRejected(f"function {node.sql_name()}() is not allowed")
        else:
            raise SQLRejected(f"{kind.key.upper()} is not allowed in a read-only question")
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise SQLRejected("table-valued functions are not allowed")
        if table.args.get("db") or table.args.get("catalog"):
            raise SQLRejected(f"schema-qualified table names are not allowed ({table.sql()})")
        extra = [k for k, v in table.args.items() if v and k not in ("this", "alias")]
        if extra:
            raise SQLRejected(f"unsupported clause on table {table.name}: {', '.join(extra)}")
    for column in tree.find_all(exp.Column):
        if column.args.get("db") or column.args.get("catalog"):
            raise SQLRejected(f"schema-qualified column names are not allowed ({column.sql()})")


def _double_quoted_strings_to_literals(tree: exp.Expression, rules: Mapping[str, TableRule]) -> None:
    """SQLite reads a double-quoted word that names no column as a string; make that explicit.

    Doing it before the column check keeps honest legacy SQL (WHERE city = "san francisco") working,
    and a string literal can never read data.
    """
    known = {c.lower() for rule in rules.values() for c in rule.columns}
    known |= {a.alias.lower() for a in tree.find_all(exp.Alias)}
    known |= {i.name.lower() for ta in tree.find_all(exp.TableAlias) for i in ta.columns}
    for column in list(tree.find_all(exp.Column)):
        ident = column.this
        if not column.table and isinstance(ident, exp.Identifier) and ident.quoted and ident.name.lower() not in known:
            column.replace(exp.Literal.string(ident.name))


def _check_ctes(tree: exp.Expression, rules: Mapping[str, TableRule]) -> dict[int, str]:
    """Refuse recursive or table-shadowing CTEs; give every CTE a fresh internal name (by node id)."""
    names: dict[int, str] = {}
    for with_ in tree.find_all(exp.With):
        if with_.args.get("recursive"):
            raise SQLRejected("recursive CTEs are not allowed")
    for cte in tree.find_all(exp.CTE):
        name = cte.alias
        if name in rules:
            raise SQLRejected(f"a CTE may not be named like the table {name}")
        if any(t.name == name for t in cte.this.find_all(exp.Table)):
            raise SQLRejected(f"recursive CTEs are not allowed ({name} refers to itself)")
        names[id(cte)] = f"sieve_cte_{len(names)}"
    return names


def _resolve(
    tree: exp.Expression, rules: Mapping[str, TableRule]
) -> tuple[list[exp.Table], list[tuple[exp.Table, exp.CTE]]]:
    """Sort table references into physical tables and CTE references; check every column on the way.

    Every table and column node must belong to exactly one scope and resolve there; anything sqlglot
    cannot place is refused rather than guessed.
    """
    try:
        scopes = traverse_scope(tree)
    except SqlglotError as err:
        raise SQLRejected(f"could not resolve the statement: {_first_line(err)}") from None
    physical: list[exp.Table] = []
    cte_refs: list[tuple[exp.Table, exp.CTE]] = []
    columns: list[tuple[exp.Column, Scope]] = []
    resolved = 0
    for scope in scopes:
        for node in walk_in_scope(scope.expression):
            if isinstance(node, exp.Table):
                target = scope.sources.get(node.alias_or_name)
                if target is node:
                    if node.name not in rules:
                        raise SQLRejected(f"table {node.name} is not allowed")
                    if node.args.get("alias") and node.args["alias"].columns:
                        raise SQLRejected(f"column aliases on table {node.name} are not allowed")
                    physical.append(node)
                elif (isinstance(target, Scope) and isinstance(cte := target.expression.parent, exp.CTE)
                      and cte.alias == node.name):
                    cte_refs.append((node, cte))
                else:
                    raise SQLRejected(f"could not resolve table {node.name}")
            elif isinstance(node, exp.Column):
                columns.append((node, scope))
            else:
                continue
            resolved += 1
    for column, scope in columns:  # after the tables, so an unknown table is reported as such
        _check_column(column, scope, rules)
    if resolved != sum(1 for _ in tree.find_all(exp.Table, exp.Column)):
        raise SQLRejected("could not resolve every table and column of the statement")
    return physical, cte_refs


def _check_column(column: exp.Column, scope: Scope, rules: Mapping[str, TableRule]) -> None:
    name = column.name
    if column.table:
        for visible in _visible_scopes(scope):
            source = visible.sources.get(column.table)
            if source is not None:
                if isinstance(column.this, exp.Star) or name in _source_columns(source, rules):
                    return
                raise SQLRejected(f"column {column.table}.{name} is not allowed")
        raise SQLRejected(f"unknown table or alias {column.table}")
    if isinstance(scope.expression, exp.Expression) and _is_alias_reference(column, scope.expression):
        return
    for visible in _visible_scopes(scope):
        if any(name in _source_columns(source, rules) for source in _selected(visible)):
            return
    raise SQLRejected(f"column {name} is not allowed")


def _is_alias_reference(column: exp.Column, query: exp.Expression) -> bool:
    """ORDER BY n / HAVING n where n is an output alias (not a column named in the select list itself)."""
    clause: exp.Expr = column
    while clause.parent is not None and clause.parent is not query:
        clause = clause.parent
    if clause.arg_key == "expressions":
        return False
    if isinstance(query, exp.Select):
        return column.name in {e.alias for e in query.expressions if isinstance(e, exp.Alias)}
    return isinstance(query, exp.SetOperation) and column.name in query.named_selects


def _visible_scopes(scope: Scope) -> Iterator[Scope]:
    """The scope, then the ones a correlated subquery can see; a derived table or CTE sees only itself."""
    current: Scope | None = scope
    while current is not None:
        yield current
        if current.scope_type not in (ScopeType.SUBQUERY, ScopeType.SET_OPERATION):
            return
        current = current.parent


def _source_columns(source: exp.Table | Scope, rules: Mapping[str, TableRule]) -> set[str]:
    """The column names a FROM source exposes: allowed columns of a table, or a subquery's outputs."""
    if isinstance(source, exp.Table):
        rule = rules.get(source.name)
        return {c.lower() for c in rule.columns} if rule else set()
    alias = source.expression.parent.args.get("alias") if source.expression.parent else None
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return {c.name for c in alias.columns}
    return _outputs(source, rules)


def _outputs(scope: Scope, rules: Mapping[str, TableRule]) -> set[str]:
    query = scope.expression
    if isinstance(query, exp.SetOperation):
        branches = scope.set_operation_scopes
        return _outputs(branches[0], rules) if branches else set()
    names: set[str] = set()
    for item in query.expressions:
        if isinstance(item, exp.Star):
            for source in _selected(scope):
                names |= _source_columns(source, rules)
        elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            if (named := scope.sources.get(item.table)) is not None:
                names |= _source_columns(named, rules)
        else:
            names.add(item.alias_or_name)
    return names


def _selected(scope: Scope) -> list[exp.Table | Scope]:
    """Sources in this scope's FROM/JOIN (scope.sources also lists every visible CTE)."""
    return [source for _node, source in scope.selected_sources.values()]


def _filtered_source(
    table: exp.Table, rule: TableRule, tenant: str | None, readers: Collection[str] | None
) -> exp.Subquery:
    """The replacement for one physical table: its allowed columns, only the tenant's (and filtered) rows."""
    predicates: list[exp.Expression] = []
    if rule.tenant_column is not None:
        if tenant is None:
            raise SQLRejected(f"table {table.name} needs a tenant and none was given")
        predicates.append(exp.column(rule.tenant_column, quoted=True).eq(exp.Literal.string(tenant)))
    predicates += [exp.column(col, quoted=True).eq(exp.Literal.string(val)) for col, val in rule.filters.items()]
    if readers is not None and rule.acl_column is not None:
        entries: list[exp.Expression] = [exp.Literal.string(r) for r in sorted(readers)] or [exp.null()]
        readable = exp.select(exp.column("doc_id", quoted=True)).from_(
            exp.Table(this=exp.to_identifier("document_acl", quoted=True))
        ).where(exp.column("entry", quoted=True).isin(*entries))
        predicates.append(exp.column(rule.acl_column, quoted=True).isin(query=readable))
    inner = exp.select(*(exp.column(c, quoted=True) for c in rule.columns)).from_(
        exp.Table(this=exp.to_identifier(table.name, quoted=True))
    )
    if predicates:
        inner = inner.where(exp.and_(*predicates))
    return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name, quoted=True)))


def _enforce_limit(tree: exp.Expression, max_rows: int) -> None:
    limit = tree.args.get("limit")
    value = limit.expression if isinstance(limit, exp.Limit) else None
    if not (isinstance(value, exp.Literal) and value.is_int and 0 <= int(value.this) <= max_rows):
        tree.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
    offset = tree.args.get("offset")
    if offset is not None and not (isinstance(offset.expression, exp.Literal) and offset.expression.is_int):
        raise SQLRejected("OFFSET must be a whole number")
    for inner in tree.find_all(exp.Limit, exp.Offset):
        if (inner is not tree.args.get("limit") and inner is not tree.args.get("offset")
                and not (isinstance(inner.expression, exp.Literal) and inner.expression.is_int)):
            raise SQLRejected("LIMIT and OFFSET must be whole numbers")


def _commas_for_cross_joins(tree: exp.Expression) -> None:
    """sqlglot reads `FROM a, b` as CROSS JOIN, which SQLite's planner may not reorder; write commas back."""
    for join in tree.find_all(exp.Join):
        if join.kind == "CROSS" and not join.args.get("on") and not join.args.get("using"):
            join.set("kind", None)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
