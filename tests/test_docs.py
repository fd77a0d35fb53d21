"""The documentation stays true to the code: the architecture page's flag list is the `Degraded` enum,
its diagrams have the compiled graphs' edges, its folder table names what exists, the defaults it
states are the code's, and every relative link in README.md and docs/*.md opens a file (and heading)
of the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sieve.graphs.agentic_rag.graph import graph as agentic_rag
from sieve.graphs.deep_research.graph import graph as deep_research

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def section(text: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, start)
    return text[start:end.start() if end else len(text)]


def enum_flags() -> list[str]:
    """`degraded.py`'s members as the page lists them: value and the docstring under it."""
    cls = next(node for node in ast.parse((ROOT / "degraded.py").read_text(encoding="utf-8")).body
               if isinstance(node, ast.ClassDef) and node.name == "Degraded")
    return [f"- `{node.value.value}`: {doc.value.value}" for node, doc in zip(cls.body, cls.body[1:])
            if isinstance(node, ast.Assign) and isinstance(doc, ast.Expr)]


def test_the_architecture_page_lists_every_degraded_flag_as_the_enum_documents_it():
    from sieve.degraded import Degraded

    text = ARCHITECTURE.read_text(encoding="utf-8")
    listed = text.split("<!-- degraded-flags:start -->\n")[1].split("<!-- degraded-flags:end -->")[0].splitlines()
    expected = enum_flags()
    assert [line.split("`")[1] for line in expected] == [flag.value for flag in Degraded]
    assert listed == expected, "regenerate the list between the degraded-flags markers:\n" + "\n".join(expected)


def mermaid_edges(block: str) -> set[tuple[str, str, bool]]:
    """(source, target, conditional) of each `a --> b` / `a -.->|label| b` line of a mermaid flowchart."""
    edge = re.compile(r"^\s*(\w+)(?:\(\[[^\]]*\]\))?\s*(-->|-\.->)(?:\|[^|]*\|)?\s*(\w+)")
    return {(m[1], m[3], m[2] == "-.->") for line in block.splitlines() if (m := edge.match(line))}


@pytest.mark.parametrize(("heading", "graph"), [
    ("## The query graph (`graphs/agentic_rag/graph.py`)", agentic_rag),
    ("## The deep-research graph (`graphs/deep_research/`)", deep_research),
], ids=["agentic_rag", "deep_research"])
def test_the_architecture_diagrams_have_exactly_the_compiled_graphs_edges(heading, graph):
    block = section(ARCHITECTURE.read_text(encoding="utf-8"), heading).split("```mermaid\n")[1].split("```")[0]
    compiled = {(e.source, e.target, e.conditional) for e in graph.get_graph().edges}
    assert mermaid_edges(block) == compiled


def test_the_folder_table_names_every_package_and_module_and_nothing_that_is_gone():
    rows = section(ARCHITECTURE.read_text(encoding="utf-8"), "## Folders")
    named = {m[1].rstrip("/") for m in re.finditer(r"^\| `([^`]+)` \|", rows, re.M)}
    assert named, "the Folders table is missing"
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []
    inits = [*ROOT.glob("*/__init__.py"), *ROOT.glob("*/*/__init__.py")]
    packages = {str(init.parent.relative_to(ROOT)) for init in inits if init.relative_to(ROOT).parts[0] != "tests"}
    modules = {path.name for path in ROOT.glob("*.py") if path.name != "__init__.py"}
    missing = (packages | modules) - named
    assert missing == set()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m[1]) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_opens_a_file_and_heading_of_the_repository(page):
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if (not file.is_relative_to(ROOT) or not file.exists()
                or (anchor and file.suffix == ".md" and anchor not in anchors(file))):
            broken.append(target)
    assert broken == []


def test_the_defaults_the_architecture_page_states_are_the_codes():
    from sieve.graphs.shared.context import GraphContext, Thresholds
    from sieve.retrievers.profile import RetrievalProfile
    from sieve.settings import Settings

    text = section(ARCHITECTURE.read_text(encoding="utf-8"), "## Degradation")
    budgets = {m[1]: float(m[2]) for m in re.finditer(r"^\| `(\w+_budget_ms)` \| (\d+) \|", text, re.M)}
    assert budgets == {name: field.default for name, field in RetrievalProfile.model_fields.items()
                       if name.endswith("_budget_ms")}
    stated = {m[1].lower(): float(m[2]) for m in re.finditer(r"`SIEVE_(\w+)` \((\d+)\)", text)}
    assert stated and stated == {name: Settings.model_fields[name].default for name in stated}
    assert f"web_timeout_s` ({GraphContext.model_fields['web_timeout_s'].default:g})" in text
    assert f"max_corrective` ({Thresholds().max_corrective})" in section(
        ARCHITECTURE.read_text(encoding="utf-8"), "## The query graph (`graphs/agentic_rag/graph.py`)")
