"""Triple extraction: the offline rules (zh, en) and the LLM extractor's control flow with fake chat models."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from sieve.ingest.extraction import LlmExtractor, RuleExtractor, build_extractor, find_entities
from sieve.settings import Settings
from sieve.stores.graph import Triple, entity_id, normalise_name


def relations(triples: list[Triple]) -> set[tuple[str, str, str]]:
    return {(t.head, t.relation, t.tail) for t in triples}


def test_chinese_names_places_and_organisations_with_the_verb_between_them():
    rules = RuleExtractor()
    assert relations(rules.extract("星河科技的总部位于杭州。", "zh")) == {("星河科技", "位于", "杭州")}
    # a split organisation name is joined, and `在X工作` takes the verb after the preposition's object
    [works] = rules.extract("张伟在星河科技工作。", "zh")
    assert (works.head, works.head_type, works.relation, works.tail, works.tail_type) == (
        "张伟", "person", "工作", "星河科技", "organization")
    # split person names are joined; a generic "科技公司" names no organisation
    assert find_entities("一家科技公司聘请了欧阳娜娜。", "zh") == [("欧阳娜娜", "person")]


def test_cooccurrence_is_weighted_by_distance_and_stays_inside_a_sentence():
    triples = RuleExtractor().extract("李明、王芳和赵磊去了北京。张伟留在杭州。", "zh")
    by_pair = {(t.head, t.tail): t.weight for t in triples}
    assert by_pair[("李明", "王芳")] == 1.0 and by_pair[("李明", "赵磊")] == 0.5
    assert by_pair[("李明", "北京")] < by_pair[("赵磊", "北京")]
    assert not {("北京", "张伟"), ("赵磊", "杭州")} & set(by_pair)


def test_english_proper_nouns_and_technical_terms():
    text = "Apple Inc. is headquartered in Cupertino, California. The University of Oxford studied IL-6 and mRNA."
    names = dict(find_entities(text, "en"))
    assert names == {"Apple Inc": "organization", "Cupertino": "place", "California": "other",
                     "University of Oxford": "organization", "IL-6": "other", "mRNA": "other"}
    assert ("Apple Inc", "headquartered", "Cupertino") in relations(RuleExtractor().extract(text, "en"))
    # a capitalised first word alone is not a name
    assert find_entities("However the results were mixed.", "en") == []


def test_names_normalise_to_one_entity():
    assert normalise_name("星河科技有限公司") == normalise_name("星河科技") == "星河科技"
    assert normalise_name(" Apple  Inc. ") == normalise_name("apple") == "apple"
    assert entity_id("t1", "kb", "Apple Inc.") == entity_id("t1", "kb", "APPLE")
    assert entity_id("t1", "kb", "Apple") != entity_id("t2", "kb", "Apple")


class ToolCallingFake(FakeMessagesListChatModel):
    """langchain-core's scripted fake, able to stand behind `with_structured_output`."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFake:
        return self


def triples_call(*triples: dict[str, Any]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "ExtractedTriples", "args": {"triples": list(triples)}, "id": "c1"}])


PASSAGE = "张伟在星河科技工作。星河科技的总部位于杭州。"


def test_the_llm_extractor_returns_the_models_triples_and_drops_names_the_passage_lacks():
    llm = ToolCallingFake(responses=[triples_call(
        {"head": "张伟", "head_type": "person", "relation": "任职于", "tail": "星河科技", "tail_type": "organization",
         "weight": 0.9},
        {"head": "星河科技", "head_type": "organization", "relation": "总部位于", "tail": "杭州", "tail_type": "place"},
        {"head": "张伟", "head_type": "person", "relation": "毕业于", "tail": "清华大学", "tail_type": "organization"},
    )])
    triples = LlmExtractor(llm, RuleExtractor()).extract(PASSAGE, "zh")
    assert triples == [
        Triple("张伟", "person", "任职于", "星河科技", "organization", 0.9),
        Triple("星河科技", "organization", "总部位于", "杭州", "place", 1.0),
    ]


def test_the_llm_extractor_falls_back_to_the_rules_when_the_model_fails():
    rules = RuleExtractor().extract(PASSAGE, "zh")
    malformed = triples_call({"head": "张伟"})  # fails validation
    no_call = AIMessage(content="sorry, I cannot help with that")
    llm = ToolCallingFake(responses=[malformed, no_call])
    extractor = LlmExtractor(llm, RuleExtractor())
    assert extractor.extract(PASSAGE, "zh") == rules
    assert extractor.extract(PASSAGE, "zh") == rules


def test_the_llm_is_used_only_when_configured_and_asked_for(tmp_path):
    assert isinstance(build_extractor(Settings(home=tmp_path)), RuleExtractor)
    configured = Settings(home=tmp_path, llm_base_url="http://127.0.0.1:9/v1")
    assert isinstance(build_extractor(configured), RuleExtractor)
    chosen = configured.model_copy(update={"graph_llm_extraction": True})
    assert isinstance(build_extractor(chosen), LlmExtractor)
