"""Refuse: say plainly why there is no answer; never invent one."""

from __future__ import annotations

from sieve.prompts.language import Lang

MESSAGE: dict[Lang, str] = {
    "zh": "抱歉，我无法回答这个问题：{reason}",
    "en": "Sorry, I can't answer that: {reason}",
}

REASONS: dict[str, dict[Lang, str]] = {
    "no_passages": {
        "zh": "知识库「{kb}」中没有检索到任何相关内容。",
        "en": "nothing in the knowledge base '{kb}' matched the question.",
    },
    "below_threshold": {
        "zh": "知识库「{kb}」中找到的内容都不足以回答（最高相关度 {best:.2f}，低于 {threshold:.2f}）。",
        "en": "nothing found in the knowledge base '{kb}' is relevant enough to answer it "
              "(best relevance {best:.2f}, below {threshold:.2f}).",
    },
    "no_evidence": {
        "zh": "知识库「{kb}」中有相关内容，但没有一处明确给出这个问题的答案。",
        "en": "the knowledge base '{kb}' has related passages, but none of them states the answer.",
    },
    "not_relevant": {
        "zh": "知识库「{kb}」中检索到的内容经判断都不包含答案。",
        "en": "the passages retrieved from the knowledge base '{kb}' were judged not to contain the answer.",
    },
    "filter_empty": {
        "zh": "没有文档符合问题中的条件（{detail}）。",
        "en": "no document matches the conditions in the question ({detail}).",
    },
    "unknown_kb": {
        "zh": "知识库「{kb}」不存在。",
        "en": "the knowledge base '{kb}' does not exist.",
    },
    "retrieval_failed": {
        "zh": "检索服务暂时不可用，请稍后再试。",
        "en": "retrieval is unavailable at the moment; please try again shortly.",
    },
    "web_not_configured": {
        "zh": "这个问题需要联网搜索，但本服务没有配置网络搜索。",
        "en": "this question needs a web search, and no web search is configured on this service.",
    },
    "web_failed": {
        "zh": "网络搜索暂时不可用。",
        "en": "web search is unavailable at the moment.",
    },
    "web_empty": {
        "zh": "网络搜索没有找到相关结果。",
        "en": "the web search found nothing relevant.",
    },
}

# Appended when the web route could not help: the knowledge base still can.
OFFER_KB: dict[Lang, str] = {
    "zh": "我可以在知识库「{kb}」中为你查找，请直接提问。",
    "en": "I can look it up in the knowledge base '{kb}' instead; just ask.",
}
