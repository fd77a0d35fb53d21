"""Synthesise: the report, one section per sub-question, every claim cited [n] to a chunk; unsupported parts refused.

Each section is answered from its own sub-question's kept passages only: by the LLM when one is
configured and time is left, else extractively (the query graph's `extractive_answer`). Sections
number their sources locally; the report renumbers them into one citation list, a chunk cited by two
sections keeping one number.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from sieve.degraded import Degraded
from sieve.graphs.deep_research.executor import kept_by_sub_question
from sieve.graphs.deep_research.planner import bridge_entities
from sieve.graphs.deep_research.state import ResearchState, Section
from sieve.graphs.shared.context import GraphContext, resolve
from sieve.graphs.shared.extractive import best_quote, cite, extractive_answer
from sieve.graphs.shared.history import question
from sieve.graphs.shared.llm import LLMFailed, generate, llm_for
from sieve.graphs.shared.nodes.narrow import SQL_ROWS
from sieve.graphs.shared.state import Citation, Passage
from sieve.graphs.shared.text import split_sentences
from sieve.prompts import answer as answer_prompts
from sieve.prompts import research as prompts
from sieve.prompts.language import Lang, detect

_MARKER = re.compile(r"\[(\d+)\]")


async def synthesise(state: ResearchState, runtime: Runtime[GraphContext]) -> ResearchState:
    ctx = await resolve(runtime.context)
    lang = detect(question(state))
    kept = kept_by_sub_question(state.get("steps", []))
    degraded: list[Degraded] = []
    citations: list[Citation] = []
    numbers: dict[str, int] = {}  # chunk id -> its number in the report
    sections: list[Section] = []
    refused_parts: list[str] = []
    for sub in state.get("plan", []):
        passages = kept.get(sub["id"], [])[: ctx.thresholds.max_kept]
        if not passages:
            refused_parts.append(sub["question"])
            text = prompts.REFUSED_SECTION[lang].format(kb=state.get("kb", ""))
            sections.append(Section(sub_question=sub["id"], question=sub["question"], text=text, refused=True))
            continue
        asked = sub["question"]
        naming: tuple[str, str] | None = None
        if sub["kind"] == "bridge":
            # a bridge is answered by the sentence naming the entity it found, not one merely sharing its words
            named = await asyncio.to_thread(bridge_entities, passages, asked, sub.get("entity_type", ""), 1,
                                            sub.get("subject", ""))
            asked = " ".join([asked, *named])
            naming = (sub.get("subject", ""), named[0]) if named else None
        text, local = await _section(asked, lang, passages, state, ctx, degraded, naming)
        sections.append(Section(sub_question=sub["id"], question=sub["question"], text=_renumber(text, local, citations,
                                                                                                   numbers), refused=False))
    report = _report(sections, refused_parts, state.get("stop_reason", ""), lang)
    return {
        "sections": sections, "citations": citations, "answer": report, "refused_parts": refused_parts,
        "refused": all(section["refused"] for section in sections), "degraded": degraded,
        "messages": [AIMessage(content=report, id=str(uuid.uuid4()))],
    }


async def _section(asked: str, lang: Lang, passages: list[Passage], state: ResearchState, ctx: GraphContext,
                   degraded: list[Degraded], naming: tuple[str, str] | None = None) -> tuple[str, list[Citation]]:
    """One sub-question's answer with its own [n] numbering, and the citations those numbers mean;
    `naming` (subject, entity): a bridge's, answered without an LLM by the sentence naming both.

    `lang` is the research question's: a sub-question asks in its words, even once a hop fills in a name
    in the other script ("Where is the headquarters of 星河科技?" would read as Chinese)."""
    if all(p["chunk_id"] == SQL_ROWS for p in passages):  # metadata rows answer it: list them
        return passages[0]["text"] + " [1]", [cite(passages[0], passages[0]["text"])]
    remaining = state.get("deadline", 0.0) - time.time()
    flags = [*state.get("degraded", []), *degraded]
    if (llm := llm_for({"degraded": flags}, ctx)) is not None and remaining > 0:
        sources = "\n\n".join(f"[{i}] ({p['filename']}) {p['text']}" for i, p in enumerate(passages, 1))
        messages = [SystemMessage(answer_prompts.SYSTEM[lang].format(passages=sources)),
                    HumanMessage(answer_prompts.QUESTION[lang].format(question=asked))]
        try:
            # the report is due by the deadline, whatever the LLM's own timeout
            reply = await asyncio.wait_for(generate(llm, messages, ctx.llm_timeout_s), remaining)
            return reply.text, [cite(p, best_quote(asked, p, lang)) for p in passages]
        except LLMFailed as failure:
            degraded.append(failure.kind)
        except TimeoutError:
            degraded.append(Degraded.LLM_TIMEOUT)
    if naming is not None and (quoted := _naming(passages, *naming)) is not None:
        return quoted
    return extractive_answer(asked, passages, lang, ctx.thresholds.answer_sentences)


def _naming(passages: list[Passage], subject: str, entity: str) -> tuple[str, list[Citation]] | None:
    """The sentence of a passage about the subject that names its entity (周敏 … 青禾科技), quoted and
    cited: one naming the subject too if there is one ("She joined Northwind Labs" says it of Alice Chen).

    The question's wording cannot choose it: "在哪里工作" reads as asking for a place, and once the
    entity is added to the question, the sentence stating it states nothing the question does not."""
    for passage in passages:
        if subject not in passage["text"]:
            continue
        naming = [s for s in split_sentences(passage["text"]) if entity in s]
        if naming:
            sentence = next((s for s in naming if subject in s), naming[0])
            space = " " if sentence[-1:].isascii() else ""
            return f"{sentence}{space}[1]", [cite(passage, sentence)]
    return None


def _renumber(text: str, local: list[Citation], citations: list[Citation], numbers: dict[str, int]) -> str:
    """`text` with its local [n] replaced by report-wide numbers, adding new sources to `citations`."""

    def number(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 1 <= n <= len(local):
            return ""  # a marker naming no source (an LLM's slip) cites nothing
        source = local[n - 1]
        if source["chunk_id"] not in numbers:
            citations.append(source)
            numbers[source["chunk_id"]] = len(citations)
        return f"[{numbers[source['chunk_id']]}]"

    return _MARKER.sub(number, text)


def _report(sections: list[Section], refused_parts: list[str], stop_reason: str, lang: Lang) -> str:
    blocks = [
        f"{prompts.HEADING[lang].format(n=i, question=section['question'])}\n{section['text']}"
        for i, section in enumerate(sections, 1)
    ]
    separator = "；" if lang == "zh" else "; "
    if refused_parts:
        blocks.append(prompts.REFUSED_PARTS[lang].format(parts=separator.join(refused_parts)))
    if note := prompts.STOPPED.get(stop_reason, {}).get(lang):
        blocks.append(note)
    return "\n\n".join(blocks)
