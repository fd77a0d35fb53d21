"""Route: small talk, the web, or the knowledge base. LLM prompt and the deterministic exemplars."""

from __future__ import annotations

from sieve.prompts.language import Lang

SYSTEM: dict[Lang, str] = {
    "zh": (
        "你是问答系统的路由器。根据对话判断用户最新一句话应该交给谁处理：\n"
        "- kb：由知识库「{kb}」回答的问题（包括指代上文的追问）；\n"
        "- web：明确需要实时或最新的公开信息（今天的新闻、天气、股价、最新动态）；\n"
        "- chat：问候、感谢、告别、闲聊，或询问你是谁。\n"
        "例如：“你好” → chat；“北京明天天气怎么样” → web；“这家公司的主要业务是什么” → kb；“它成立于哪一年” → kb。\n"
        "拿不准时选 kb。只输出路由。"
    ),
    "en": (
        "You route messages in a question-answering system. Decide who handles the user's latest message:\n"
        "- kb: questions answered from the knowledge base '{kb}', including follow-ups to earlier turns;\n"
        "- web: explicitly needs live or latest public information (today's news, weather, stock prices);\n"
        "- chat: greetings, thanks, goodbyes, small talk, or questions about who you are.\n"
        "Examples: 'hello there' -> chat; 'weather forecast for tomorrow' -> web; 'what does the company do' -> kb; "
        "'when was it founded' -> kb.\n"
        "When unsure, choose kb. Return the route only."
    ),
}

# Deterministic mode compares the question's embedding with these; a few per route and language.
EXEMPLARS: dict[str, list[str]] = {
    "chat": [
        "你好", "早上好，最近怎么样", "谢谢你的帮助", "你是谁", "再见", "哈哈，挺有意思的", "给我讲个笑话吧",
        "hello there", "good morning, how are you", "thanks for your help", "who are you", "goodbye",
        "tell me a joke",
    ],
    "web": [
        "今天有什么新闻", "北京明天天气怎么样", "最新的股市行情", "今天比赛的比分是多少", "帮我上网搜一下最近的消息",
        "what's the latest news today", "weather forecast for tomorrow", "current stock price right now",
        "search the web for recent updates", "today's football scores",
    ],
    "kb": [
        "这家公司的主要业务是什么", "这个产品有哪些功能", "文档里是怎么规定的", "它成立于哪一年", "总部在哪里",
        "什么是光合作用",
        "what does the company do", "what features does the product have", "what does the policy say",
        "when was it founded", "where is the headquarters", "what is photosynthesis",
    ],
}
