"""Deep research: planning the sub-questions, and the report's fixed wording."""

from __future__ import annotations

from sieve.prompts.language import Lang

PLAN: dict[Lang, str] = {
    "zh": (
        "把用户的问题拆成可以分别在知识库中检索的子问题（最多五个），每个子问题独立完整、点名它问的对象。"
        "比较或列举多个对象时，每个对象一个子问题；问题本身已经单一时，原样返回它一个。"
    ),
    "en": (
        "Split the user's question into sub-questions that can each be looked up in a knowledge base (at most "
        "five), each self-contained and naming what it asks about. A comparison or enumeration of several "
        "things gets one sub-question per thing; a question that is already single comes back as itself."
    ),
}

HEADING: dict[Lang, str] = {"zh": "{n}. {question}", "en": "{n}. {question}"}

REFUSED_SECTION: dict[Lang, str] = {
    "zh": "知识库「{kb}」中没有内容支持这一部分，不作回答。",
    "en": "Nothing in the knowledge base '{kb}' supports this part; it is not answered.",
}

REFUSED_PARTS: dict[Lang, str] = {"zh": "未能回答的部分：{parts}", "en": "Not answered: {parts}"}

STOPPED: dict[str, dict[Lang, str]] = {
    "budget_spent": {"zh": "（研究时间预算已用完，结果可能不完整。）",
                     "en": "(The research budget ran out; the report may be incomplete.)"},
    "step_limit": {"zh": "（已达到检索轮数上限。）", "en": "(The step limit was reached.)"},
    "no_progress": {"zh": "", "en": ""},
    "answered": {"zh": "", "en": ""},
}
