"""Triple extraction at ingest: entities and the relations a passage states between them."""

from __future__ import annotations

from sieve.prompts.language import Lang

SYSTEM: dict[Lang, str] = {
    "zh": (
        "从文本中抽取实体和实体之间的关系，返回三元组（头实体，关系，尾实体）。"
        "实体是具体的人名、地名、机构名或专有名词，用文本中的原始写法；实体类型为 person、place、organization 或 other。"
        "关系用文本中的动词或短语（如“任职于”“位于”“收购”）。weight 表示文本陈述这条关系的明确程度（0 到 1）。"
        "只抽取文本明确写出的关系，不要推测；没有关系时返回空列表。"
    ),
    "en": (
        "Extract entities and the relations the text states between them, as (head, relation, tail) triples. "
        "Entities are specific people, places, organisations or proper nouns, written as in the text; entity types "
        "are person, place, organization or other. The relation is the text's own verb or phrase ('works at', "
        "'is headquartered in', 'acquired'). weight says how explicitly the text states the relation (0 to 1). "
        "Extract only what the text states, never guesses; return an empty list when there is none."
    ),
}

PASSAGE: dict[Lang, str] = {
    "zh": "文本：\n{text}",
    "en": "Text:\n{text}",
}
