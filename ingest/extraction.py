"""Knowledge-graph extraction at ingest: chunks -> (head, relation, tail) triples -> the graph store.

Two extractors behind `TripleExtractor`:
- `RuleExtractor` (offline, deterministic). Chinese: rjieba POS tags nr/ns/nt/nz name people, places,
  organisations and other proper nouns; adjacent name tokens are joined (欧阳|娜娜), and a name-like token
  followed by an organisation word becomes one organisation (星河|科技 -> 星河科技). English: runs of
  capitalised words and technical tokens (BRCA1, mRNA, IL-6). Relations come from co-occurrence in a
  sentence, weighted 1/(1 + entities in between), labelled with the verb between the two when there is one.
- `LlmExtractor`: the configured chat model with structured output; any failure on a chunk falls back
  to the rules for that chunk, so an ingest never fails because the LLM did.
The query side of the graph path finds a question's entities with the same rules (`find_entities`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import rjieba
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from sieve.errors import InvalidInput
from sieve.ingest.report import Failure, Failures, Report
from sieve.models.chat import build_chat_model, structured
from sieve.prompts import extraction as prompts
from sieve.prompts.language import Lang, detect
from sieve.retrievers.profile import RetrievalProfile
from sieve.settings import Settings
from sieve.stores.crud import KbId, document_chunks, ready_documents
from sieve.stores.graph import ChunkTriples, EntityType, Triple, normalise_name
from sieve.stores.metadata import Chunk, Document, KnowledgeBase
from sieve.stores.stack import Stack
from sieve.stores.types import IndexedChunk, SearchFilter

log = logging.getLogger(__name__)

NO_VERB = "related"
MAX_GAP = 3  # entities further apart in a sentence than this are not related (long lists stay linear)

_SENTENCES = re.compile(r"(?<=[。！？!?；;])|\n+|(?<=[.])\s+(?=[A-Z0-9\"'(])")

# ---- Chinese ------------------------------------------------------------------------------

_ZH_TYPES: dict[str, EntityType] = {
    "nr": "person", "nrt": "person", "nrfg": "person", "ns": "place", "nt": "organization", "nz": "other",
}
# words that turn the name before them into an organisation (星河|科技, 云帆|网络, 杭州|银行)
_ZH_ORG_WORDS = frozenset(
    "公司 有限公司 股份有限公司 集团 科技 控股 银行 大学 学院 研究院 研究所 医院 实验室 基金会 协会 委员会 工作室 "
    "出版社 电视台 网络 传媒 证券 保险 航空 汽车 电子 生物 医药 能源 地产 资本 基金 中学 小学".split()
)
_ZH_NAME_LIKE = frozenset({"n", "nz", "ns", "nr", "nrt", "nt", "j", "eng"})
# common nouns that can stand before an organisation word without naming one (一家科技公司, 互联网公司)
_ZH_GENERIC = frozenset(
    "科技 信息 网络 互联网 技术 上市 国有 民营 外资 合资 私营 跨国 母 子 分 总 这家 该 本 大型 小型 新兴 "
    "城市 国家 地区 全国 海外 当地 各地 本地 全球".split()
)
_ZH_LEGAL_ENDINGS = ("有限公司", "公司")


@dataclass(frozen=True)
class Mention:
    name: str
    type: EntityType
    start: int  # token span in the sentence
    end: int


def _zh_mentions(tokens: list[tuple[str, str]]) -> list[Mention]:
    mentions: list[Mention] = []
    i = 0
    while i < len(tokens):
        word, tag = tokens[i]
        kind = _ZH_TYPES.get(tag)
        start, j = i, i + 1
        if kind is not None:  # join split names: 欧阳(ns)|娜娜(nrt), 库比|蒂诺
            while j < len(tokens) and tokens[j][1] in _ZH_TYPES:
                kind = "organization" if "organization" in (kind, _ZH_TYPES[tokens[j][1]]) else _ZH_TYPES[tokens[j][1]]
                j += 1
        name_like = kind is not None or (tag in _ZH_NAME_LIKE and len(word) >= 2 and word not in _ZH_GENERIC
                                         and word not in _ZH_ORG_WORDS)
        if name_like and j < len(tokens) and tokens[j][0] in _ZH_ORG_WORDS:
            while j < len(tokens) and tokens[j][0] in _ZH_ORG_WORDS:
                j += 1
            kind = "organization"
        elif kind is None and tag == "n" and word.endswith(_ZH_LEGAL_ENDINGS) and len(word) > 3:
            kind = "organization"  # one token that is already a company name: 苹果公司
        if kind is not None:
            name = "".join(w for w, _ in tokens[start:j])
            if len(name) >= 2 and name not in _ZH_GENERIC:
                mentions.append(Mention(name, kind, start, j))
            i = j
        else:
            i += 1
    return mentions


def _zh_label(tokens: list[tuple[str, str]], left: Mention, right: Mention, next_start: int) -> str:
    """The first verb between the two; after `在X工作`-style prepositions, the verb right after X."""
    between = tokens[left.end : right.start]
    for word, tag in between:
        if tag.startswith("v"):
            return word
    if any(tag == "p" for _, tag in between):
        for word, tag in tokens[right.end : next_start]:
            if tag.startswith("v"):
                return word
    return NO_VERB


# ---- English ------------------------------------------------------------------------------

# punctuation is kept as tokens so that a run of capitalised words stops at it ("Cupertino, California")
_EN_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-+'.&]*[A-Za-z0-9+]|[A-Za-z0-9]|[,;:()\[\]\"]")
_EN_CONNECTORS = frozenset({"of", "for", "and", "de", "la", "van", "von", "the"})
_EN_STOP = frozenset(
    "a an the this that these those it its we our they their he she his her i you in on at of for to from by "
    "with as and or but if when while after before however although though because since during between "
    "among about into over under also both each all any some many most more such no not there here what "
    "which who whom whose why how where then thus therefore moreover furthermore finally first second one "
    "two three is are was were be been being has have had do does did can could may might will would should "
    "must shall".split()
)
_EN_ORG_WORDS = frozenset(
    "inc corp corporation company co ltd llc plc group university institute college school hospital bank "
    "foundation association agency ministry department council committee laboratory laboratories".split()
)
_EN_PLACE_CUES = frozenset({"in", "at", "from", "near", "to"})
_EN_PERSON_CUES = frozenset({"mr", "mrs", "ms", "dr", "prof", "professor", "president", "ceo", "minister"})
_EN_AUX = frozenset({"is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "will", "would",
                     "can", "could", "may", "might", "also", "not", "does", "did", "do"})


def _technical(word: str) -> bool:
    """Gene, protein and product names: BRCA1, p53, IL-6, mRNA, iPhone, DNA."""
    letters = sum(ch.isalpha() for ch in word)
    if letters == 0:
        return False
    has_digit = any(ch.isdigit() for ch in word)
    inner_upper = any(ch.isupper() for ch in word[1:])
    return (has_digit and letters >= 1 and len(word) >= 2) or (inner_upper and len(word) >= 2)


def _en_mentions(words: list[str]) -> list[Mention]:
    mentions: list[Mention] = []
    i = 0
    while i < len(words):
        word = words[i]
        capitalised = word[0].isupper() and word.lower() not in _EN_STOP
        if not (capitalised or _technical(word)):
            i += 1
            continue
        j = i + 1
        while j < len(words):
            if words[j][0].isupper() and words[j].lower() not in _EN_STOP:
                j += 1
            elif (words[j].lower() in _EN_CONNECTORS and j + 1 < len(words) and words[j + 1][0].isupper()
                  and words[j + 1].lower() not in _EN_STOP):
                j += 2
            else:
                break
        # a lone capitalised first word of a sentence is usually just a capitalised word
        if i == 0 and j == 1 and not _technical(word):
            i = 1
            continue
        before = words[i - 1].lower().rstrip(".") if i else ""
        kind: EntityType = (
            "organization" if any(w.lower().rstrip(".") in _EN_ORG_WORDS for w in words[i:j])
            else "person" if before in _EN_PERSON_CUES
            else "place" if before in _EN_PLACE_CUES and not _technical(word)
            else "other"
        )
        mentions.append(Mention(" ".join(words[i:j]).strip(".,"), kind, i, j))
        i = j
    return mentions


def _en_label(words: list[str], left: Mention, right: Mention) -> str:
    for word in words[left.end : right.start]:
        low = word.lower()
        if low in _EN_AUX or low in _EN_STOP:
            continue
        if low.endswith("ed") or (low.endswith("s") and not low.endswith(("ss", "us", "is", "ics"))):
            return low
    return NO_VERB


# ---- sentences to mentions and triples ----------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.split(text) if s and s.strip()]


def _analyse(sentence: str, lang: Lang) -> tuple[list, list[Mention]]:
    if lang == "zh":
        tokens = [(w, t) for w, t in rjieba.tag(sentence) if w.strip()]
        return tokens, _zh_mentions(tokens)
    words = _EN_WORD.findall(sentence)
    return words, _en_mentions(words)


def find_entities(text: str, lang: Lang | None = None) -> list[tuple[str, EntityType]]:
    """Distinct (name, type) pairs the rules find in `text`, in order of first mention."""
    lang = lang or detect(text)
    seen: dict[str, tuple[str, EntityType]] = {}
    for sentence in _sentences(text):
        for m in _analyse(sentence, lang)[1]:
            key = normalise_name(m.name)
            if key and key not in seen:
                seen[key] = (m.name, m.type)
    return list(seen.values())


class TripleExtractor(Protocol):
    """Turns one chunk's text into triples. `concurrency`: chunks it may work on at once."""

    concurrency: int

    def extract(self, chunk_text: str, lang: Lang) -> list[Triple]: ...


class RuleExtractor:
    """Offline extraction by POS tags (zh) and capitalisation (en); deterministic."""

    concurrency = 1

    def extract(self, chunk_text: str, lang: Lang) -> list[Triple]:
        triples: list[Triple] = []
        for sentence in _sentences(chunk_text):
            tokens, mentions = _analyse(sentence, lang)
            for a, left in enumerate(mentions):
                for b in range(a + 1, min(a + 2 + MAX_GAP, len(mentions))):
                    right = mentions[b]
                    if normalise_name(left.name) == normalise_name(right.name):
                        continue
                    if lang == "zh":  # after a preposition the verb follows the tail, up to the next mention
                        next_start = mentions[b + 1].start if b + 1 < len(mentions) else len(tokens)
                        relation = _zh_label(tokens, left, right, next_start)
                    else:
                        relation = _en_label(tokens, left, right)
                    triples.append(Triple(left.name, left.type, relation, right.name, right.type,
                                          round(1.0 / (b - a), 4)))
        return triples


class ExtractedTriple(BaseModel):
    head: str = Field(description="head entity, as written in the text")
    head_type: EntityType
    relation: str = Field(description="the text's verb or phrase for the relation")
    tail: str = Field(description="tail entity, as written in the text")
    tail_type: EntityType
    weight: float = Field(1.0, ge=0.0, le=1.0, description="how explicitly the text states it")


class ExtractedTriples(BaseModel):
    """Entities and relations stated in a passage."""

    triples: list[ExtractedTriple] = Field(default_factory=list)


class LlmExtractor:
    """Structured output from the chat model; the rules answer for any chunk the model fails on.

    Triples naming something the passage does not contain are dropped: the model may only restate.
    """

    def __init__(self, llm: BaseChatModel, fallback: TripleExtractor, concurrency: int = 4):
        self.runnable = structured(llm, ExtractedTriples).with_config(run_name="extract_triples")
        self.fallback = fallback
        self.concurrency = concurrency

    def extract(self, chunk_text: str, lang: Lang) -> list[Triple]:
        messages = [SystemMessage(prompts.SYSTEM[lang]), HumanMessage(prompts.PASSAGE[lang].format(text=chunk_text))]
        try:
            result = self.runnable.invoke(messages)
        except Exception as exc:  # timeouts, refusals, malformed output: the rules still give a graph
            log.warning("triple extraction by LLM failed (%s); using the rules for this chunk", type(exc).__name__,
                        exc_info=True)
            return self.fallback.extract(chunk_text, lang)
        if not isinstance(result, ExtractedTriples):
            return self.fallback.extract(chunk_text, lang)
        text = chunk_text.lower()
        return [
            Triple(t.head.strip(), t.head_type, t.relation.strip() or NO_VERB, t.tail.strip(), t.tail_type,
                   t.weight or 0.1)
            for t in result.triples
            if t.head.strip() and t.tail.strip() and t.head.strip().lower() in text and t.tail.strip().lower() in text
            and normalise_name(t.head) != normalise_name(t.tail)
        ]


def build_extractor(settings: Settings) -> TripleExtractor:
    rules = RuleExtractor()
    llm = build_chat_model(settings) if settings.graph_llm_extraction else None
    return LlmExtractor(llm, rules, settings.graph_llm_concurrency) if llm is not None else rules


def graph_refusal(stack: Stack, kb_id: str) -> str | None:
    """Why the KB gets no graph triples (its profile does not ask for them, or it is above
    `graph_max_chunks`); None when it does."""
    with stack.sessions() as session:
        kb = session.get(KnowledgeBase, kb_id)
        name = kb.name if kb is not None else kb_id
        if kb is None or not RetrievalProfile.from_stored(kb.profile).graph_extraction:
            return (f"knowledge base {name!r} has graph_extraction off in its profile; turn it on first "
                    f"(sieve profile set --kb {name} graph_extraction=true)")
        size = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.kb_id == kb_id)) or 0
    if size > stack.settings.graph_max_chunks:
        refusal = (f"knowledge base {name!r} has {size} chunks, above graph_max_chunks="
                   f"{stack.settings.graph_max_chunks}: its chunks get no graph triples")
        log.warning("%s", refusal)  # asked for and not given: worth a line in the log
        return refusal
    return None


def graph_enabled(stack: Stack, kb_id: str) -> bool:
    """The KB's profile asks for extraction and the KB is within `graph_max_chunks`."""
    return graph_refusal(stack, kb_id) is None


def extract_triples(chunks: Sequence[IndexedChunk], extractor: TripleExtractor) -> list[ChunkTriples]:
    def one(chunk: IndexedChunk) -> ChunkTriples:
        return ChunkTriples(chunk.chunk_id, chunk.doc_id, extractor.extract(chunk.text, detect(chunk.text)))

    if extractor.concurrency > 1:
        with ThreadPoolExecutor(extractor.concurrency, thread_name_prefix="sieve-extract") as pool:
            return list(pool.map(one, chunks))
    return [one(c) for c in chunks]


def extract_into_graph(
    stack: Stack, tenant: str, kb_id: str, chunks: Sequence[IndexedChunk], extractor: TripleExtractor | None = None
) -> int:
    """Extracts the chunks' triples into `stack.graph` when the KB wants them; returns relations stored."""
    if not chunks or not graph_enabled(stack, kb_id):
        return 0
    return stack.graph.add(tenant, kb_id, extract_triples(chunks, extractor or build_extractor(stack.settings)))


@dataclass
class GraphBuildReport(Report):
    """What `build_graph` did; `failed` holds (file name, error) per document it could not extract."""

    extracted: int = 0  # documents extracted now
    skipped: int = 0  # documents that already had graph entries
    relations: int = 0  # relations stored now
    failed: Failures = field(default_factory=list)
    entities_total: int = 0  # the KB's graph afterwards
    relations_total: int = 0


def build_graph(
    stack: Stack,
    tenant: str,
    kb_id: str,
    *,
    rebuild: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    extractor: TripleExtractor | None = None,
) -> GraphBuildReport:
    """Extracts entities and relations of the KB's ready documents from their stored chunks (nothing is
    embedded again but entity names), one document at a time.

    Documents that already have graph entries are skipped, so running it again adds nothing twice;
    `rebuild` extracts every document again, replacing its entries (after an extractor change).
    `on_progress(done, total)` after each document. `ValueError` when the KB gets no graph triples.
    """
    if (refusal := graph_refusal(stack, kb_id)) is not None:
        raise InvalidInput(refusal)
    extractor = extractor or build_extractor(stack.settings)
    with stack.sessions() as session:
        docs = session.execute(ready_documents(tenant, KbId(kb_id)).with_only_columns(Document.id, Document.filename)
                               .order_by(Document.filename, Document.id)).all()
    done_before = set() if rebuild else stack.graph.linked_documents(tenant, kb_id, [d for d, _ in docs])
    report = GraphBuildReport()
    for done, (doc_id, filename) in enumerate(docs, start=1):
        if doc_id in done_before:
            report.skipped += 1
        else:
            try:
                report.relations += _extract_document(stack, tenant, kb_id, doc_id, extractor)
                report.extracted += 1
            except Exception as exc:  # one document's failure is reported; the others still get their graph
                log.exception("graph extraction of %s (%s) failed", filename, doc_id)
                # the exception's text can name server paths: the log has it, the report its kind
                report.failed.append(
                    Failure(filename, f"graph extraction failed ({type(exc).__name__}); the log has the details"))
        if on_progress is not None:
            on_progress(done, len(docs))
    report.entities_total, report.relations_total = stack.graph.count(SearchFilter(tenant, kb_id))
    return report


def _extract_document(stack: Stack, tenant: str, kb_id: str, doc_id: str, extractor: TripleExtractor) -> int:
    with stack.sessions() as session:
        chunks = [IndexedChunk(c.id, doc_id, tenant, kb_id, c.text) for c in document_chunks(session, tenant, doc_id)]
    extracted = extract_triples(chunks, extractor)
    # replaces whatever a rebuild or an interrupted run left of this document (upserts alone would
    # store its relations twice)
    stack.graph.delete_documents(tenant, kb_id, [doc_id])
    return stack.graph.add(tenant, kb_id, extracted)
