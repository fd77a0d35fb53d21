"""Execute: one round of sub-queries in parallel under what is left of the budget, then what next.

Each sub-query runs the query graph's own nodes on a state of its own: narrow (NL2SQL) → retrieve →
grade. A round waits at most until the research's deadline; a sub-query still running then (a stuck
recall path, a slow LLM) is cancelled and the research stops with `budget_spent`. After a round, what
is still missing gets follow-ups: a hop asks about the bridge entity its parent's kept passages name,
an unanswered part is retried with a looser query, then with entities the kept passages name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from sieve.degraded import Degraded
from sieve.graphs.deep_research.planner import ENTITY, about, bridge_entities, hop_of, new_entities
from sieve.graphs.deep_research.state import ResearchState, Step, StopReason, SubQuestion
from sieve.graphs.shared.context import GraphContext
from sieve.graphs.shared.grading import gather_evidence, ranked_by_relevance
from sieve.graphs.shared.history import question
from sieve.graphs.shared.nodes.grade import grade
from sieve.graphs.shared.nodes.narrow import narrow
from sieve.graphs.shared.nodes.retrieve import retrieve
from sieve.graphs.shared.state import Passage, State, add_flags
from sieve.graphs.shared.text import keywords
from sieve.prompts.language import detect

logger = logging.getLogger(__name__)
# cancelled sub-queries get this long to unwind (a cancelled executor future returns at once)
_UNWIND_S = 0.05
# retrieved passages a bridge looks through for its entity (a hop for its answer) when grading kept none
_BRIDGE_CANDIDATES = 3


async def search(sub: SubQuestion, query: dict[str, Any], round_: int, state: ResearchState,
                 runtime: Runtime[GraphContext]) -> tuple[Step, list[str]]:
    """One sub-query through narrow → retrieve → grade: its step and the flags it raised.

    A bridge asks for an entity, not for an answer to quote: when grading keeps nothing, the best
    retrieved passage that names the bridge's subject together with an entity of the kind it asks
    for (张伟 with a company) is what the bridge found."""
    sub_state: State = {
        "messages": [HumanMessage(sub["question"])], "tenant": state.get("tenant", ""), "kb": state.get("kb", ""),
        "readers": state.get("readers"),
        "rewritten_query": query["query"], "degraded": list(state.get("degraded", [])), "route": "kb",
    }
    flags: list[str] = []

    def merge(update: State) -> None:
        nonlocal sub_state
        new = [str(flag) for flag in update.get("degraded", [])]
        flags.extend(new)
        sub_state = {**sub_state, **update, "degraded": add_flags(sub_state["degraded"], new)}

    merge(await narrow(sub_state, runtime))
    if not sub_state.get("kept") and sub_state.get("allowed_doc_ids") != []:
        merge(await retrieve(sub_state, runtime))
        merge(await grade(sub_state, runtime))
    kept = list(sub_state.get("kept", []))
    if sub["kind"] == "bridge" and (subject := sub.get("subject")):
        # only a passage tying the subject to an entity of the asked kind answers a bridge (grading lets a
        # Chinese question's words go unmatched in an English passage: David Wu's profile would say
        # where 李娜 works, or where 远山网络 is)
        kept = [p for p in kept if bridge_entities([p], sub["question"], sub["entity_type"], subject=subject)]
    if not kept and sub["kind"] == "bridge":
        kept = await asyncio.to_thread(_naming_the_bridge, sub, sub_state.get("passages", []))
    if "entity" in query:
        # a question about a bridge entity is answered only by passages naming it, and by the entity's own
        # pages where there are some (星河科技's page, not a profile of someone who works there)
        kept = [p for p in kept if query["entity"] in p["text"]]
        kept = [p for p in kept if about(p, query["entity"])] or kept
        if not kept:
            kept = await asyncio.to_thread(_stating_about, query, sub_state.get("passages", []))
    return _step(query, round_, kept=kept, sql=sub_state.get("sql")), flags


def _step(query: dict[str, Any], round_: int, *, kept: list[Passage], sql: str | None = None, timed_out: bool = False) -> Step:
    step = Step(step=round_, sub_question=query["sub_question"], query=query["query"], sql=sql, kept=kept,
                timed_out=timed_out)
    if "entity" in query:
        step["entity"] = query["entity"]
    return step


def _naming_the_bridge(sub: SubQuestion, passages: list[Passage]) -> list[Passage]:
    subject = sub.get("subject", "")
    for passage in passages[:_BRIDGE_CANDIDATES]:
        if subject and bridge_entities([passage], sub["question"], sub["entity_type"], subject=subject):
            return [passage]
    return []


def _stating_about(query: dict[str, Any], passages: list[Passage]) -> list[Passage]:
    """A hop's query is the research's own, about an entity it found: when grading keeps nothing, one of
    the best retrieved passages with a sentence that names the entity and holds every word of the query
    answers it. (Grading's Chinese model keeps no open question, "苏州以什么著称？", however fully a
    sentence repeats it: an open question from a user may ask for more than one sentence says.)"""
    entity = query["entity"]
    ranked = ranked_by_relevance(passages)[:_BRIDGE_CANDIDATES]
    # the query is in its template's language, whatever script the entity is written in ("What is 武汉 known for?")
    lang = detect(query["query"].replace(entity, " "))
    evidence = gather_evidence(query["query"], ranked, lang)
    for passage, found in zip(ranked, evidence):
        if any(entity in sentence.text and sentence.coverage == 1.0 for sentence in found.sentences):
            return [passage]
    return []


def kept_by_sub_question(steps: list[Step]) -> dict[int, list[Passage]]:
    """Every sub-question's kept passages over all rounds, each chunk once, most relevant first."""
    found: dict[int, dict[str, Passage]] = {}
    for step in steps:
        for passage in step["kept"]:
            found.setdefault(step["sub_question"], {}).setdefault(passage["chunk_id"], passage)
    return {
        sub: sorted(passages.values(), key=lambda p: -(p["relevance"] if p["relevance"] is not None else p["score"]))
        for sub, passages in found.items()
    }


async def execute(state: ResearchState, runtime: Runtime[GraphContext]) -> ResearchState:
    round_ = state.get("rounds", 0) + 1
    plan = [dict(sub) for sub in state.get("plan", [])]
    by_id = {sub["id"]: sub for sub in plan}
    queries = state.get("pending", [])

    async def run(query: dict[str, Any]) -> tuple[Step, list[str]]:
        found = await search(by_id[query["sub_question"]], query, round_, state, runtime)  # type: ignore[arg-type]
        runtime.stream_writer({"step": found[0]})  # streamed as it finishes, before the round ends
        return found

    tasks = [asyncio.create_task(run(q)) for q in queries]
    remaining = state.get("deadline", 0.0) - time.time()
    done: set[asyncio.Task[Any]] = set()
    if tasks:
        done, running = await asyncio.wait(tasks, timeout=max(0.0, remaining))
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=_UNWIND_S)

    steps: list[Step] = []
    flags: list[str] = []
    for query, task in zip(queries, tasks):
        if task in done and task.exception() is None:
            step, new = task.result()
            flags.extend(new)
        else:
            if task in done:  # the nodes report their failures; this one escaped them
                logger.error("a research step failed", exc_info=task.exception())
                flags.append(Degraded.RETRIEVAL_ERROR)
            step = _step(query, round_, kept=[], timed_out=task not in done)
            runtime.stream_writer({"step": step})
        steps.append(step)

    all_steps = [*state.get("steps", []), *steps]
    kept = kept_by_sub_question(all_steps)
    _name_resolved_hops(plan, all_steps, kept)
    tried = [*state.get("tried", []), *(q["query"] for q in queries)]
    # naming the entities of the kept passages POS-tags them: CPU work, off the event loop
    pending = await asyncio.to_thread(_follow_ups, plan, kept, tried, question(state))

    missing = [sub for sub in plan if sub["id"] not in kept]
    if not missing:
        stop = StopReason.ANSWERED
    elif any(step["timed_out"] for step in steps) or time.time() >= state.get("deadline", 0.0):
        stop = StopReason.BUDGET_SPENT
    elif round_ >= state.get("max_steps", 1):
        stop = StopReason.STEP_LIMIT
    elif not pending:
        stop = StopReason.NO_PROGRESS
    else:
        stop = None
    return {
        "plan": plan, "steps": steps, "rounds": round_, "tried": tried, "degraded": flags,  # type: ignore[typeddict-item]
        "pending": [] if stop else pending, "stop_reason": str(stop) if stop else "",
    }


def _name_resolved_hops(plan: list[dict[str, Any]], steps: list[Step], kept: dict[int, list[Passage]]) -> None:
    """A hop whose query about a bridge entity kept passages is named after that entity."""
    for sub in plan:
        if sub["kind"] != "hop" or sub["id"] not in kept or ENTITY not in sub.get("template", ""):
            continue
        for step in steps:
            if step["sub_question"] == sub["id"] and step["kept"] and (entity := step.get("entity")):
                sub["question"] = sub["template"].replace(ENTITY, str(entity))
                break


def _follow_ups(plan: list[dict[str, Any]], kept: dict[int, list[Passage]], tried: list[str], original: str,
                ) -> list[dict[str, Any]]:
    """The next round's queries for what is still missing; none that was tried before."""
    pending: list[dict[str, Any]] = []
    seen = set(tried)

    def add(sub: dict[str, Any], query: str, **extra: str) -> bool:
        if query in seen or not query.strip():
            return False
        seen.add(query)
        pending.append({"sub_question": sub["id"], "query": query, **extra})
        return True

    everything = [p for passages in kept.values() for p in passages]
    for sub in list(plan):
        if sub["id"] in kept:
            continue
        if sub["kind"] == "hop":
            parent = kept.get(sub["parent"])
            if not parent:
                continue  # its bridge entity is not found yet
            bridge = next(s for s in plan if s["id"] == sub["parent"])
            entities = bridge_entities(parent, f"{original} {bridge['question']}", sub["entity_type"],
                                       subject=bridge.get("subject", ""))
            for entity in entities:
                filled = sub["template"].replace(ENTITY, entity)
                if (nested := hop_of(filled)) is not None:
                    # another hop inside (…所在城市的…): this part now finds that bridge, a new hop asks about it
                    if add(sub, nested.question):
                        sub.update(kind="bridge", question=nested.question, subject=nested.subject,
                                   entity_type=nested.entity_type)
                        sub.pop("template", None)
                        plan.append({"id": max(s["id"] for s in plan) + 1, "question": filled, "kind": "hop",
                                     "parent": sub["id"], "template": nested.template,
                                     "entity_type": nested.entity_type})
                    break  # one chain at a time: the best-supported entity
                if not add(sub, filled, entity=entity):  # asked already: a looser query about the same entity
                    add(sub, keywords(filled, detect(filled)), entity=entity)
            continue
        lang = detect(sub["question"])
        if add(sub, keywords(sub["question"], lang)):
            continue
        # entities the kept passages name that the question does not: the next step asks about them
        for entity in new_entities(everything, original):
            if add(sub, f"{entity} {keywords(sub['question'], lang)}"):
                break
    return pending
