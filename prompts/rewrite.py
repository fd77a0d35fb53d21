"""Rewrite: turn the latest message into a self-contained search query."""

from __future__ import annotations

from sieve.prompts.language import Lang

SYSTEM: dict[Lang, str] = {
    "zh": (
        "把用户最新的问题改写成一个不依赖上下文、可以直接用于检索的完整问题："
        "把代词（它、他、她、其、这家公司……）和省略（“那总部呢”）替换成对话中指代的具体对象。"
        "问题本身已经完整时原样返回。不要回答问题，不要添加对话中没有的信息。"
    ),
    "en": (
        "Rewrite the user's latest question into a self-contained search query: replace pronouns "
        "(it, its, they, this company ...) and ellipsis ('what about its revenue') with what they refer to "
        "in the dialogue. Return the question unchanged when it already stands alone. Do not answer it and "
        "add nothing the dialogue does not say."
    ),
}

# The corrective retry: the first query found nothing the grader kept.
RETRY: dict[Lang, str] = {
    "zh": "上一个检索词“{query}”没有找到相关内容。请用同义词或更通用的关键词换一种说法，仍然只针对原问题。",
    "en": "The query '{query}' found nothing relevant. Rephrase it with synonyms or more general keywords, for the same "
    "question.",
}

DIALOGUE: dict[Lang, str] = {
    "zh": "对话：\n{history}\n\n最新的问题：{question}",
    "en": "Dialogue:\n{history}\n\nLatest question: {question}",
}
