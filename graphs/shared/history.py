"""Reading the dialogue out of `State.messages`: the new question and the turns before it."""

from __future__ import annotations

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage

from sieve.graphs.shared.state import InputState, State


def text_of(message: AnyMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def question(state: InputState) -> str:
    """The user's newest message."""
    for message in reversed(state.get("messages", [])):
        if isinstance(message, HumanMessage):
            return text_of(message).strip()
    return ""


def earlier_turns(state: State, limit: int = 3) -> list[tuple[str, str]]:
    """Up to `limit` (question, answer) pairs before the newest question, oldest first."""
    messages = state.get("messages", [])
    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    turns: list[tuple[str, str]] = []
    for message in messages[: max(last_human, 0)]:
        if isinstance(message, HumanMessage):
            turns.append((text_of(message), ""))
        elif isinstance(message, AIMessage) and turns and not turns[-1][1]:
            turns[-1] = (turns[-1][0], text_of(message))
    return turns[-limit:]


def transcript(turns: list[tuple[str, str]]) -> str:
    return "\n".join(f"user: {q}\nassistant: {a}" for q, a in turns)
