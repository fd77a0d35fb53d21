"""The `image` recall path: pictures embedded by a CLIP-style model from a local folder (a tiny random
CLIP built here, as the FlagEmbedding tests build a tiny BERT), searched by text, fused with the
other paths, switchable per knowledge base; without a model it reports that it is not configured."""

from __future__ import annotations

import pytest
from retrieval_support import picture, search

from sieve.ingest.pipeline import Ingestor
from sieve.settings import Settings, get_settings
from sieve.stores.catalog import get_kb
from sieve.stores.stack import Stack
from sieve.stores.types import SearchFilter

pytestmark = pytest.mark.integration
WORDS = ["a", "red", "circle", "blue", "square", "photo", "of"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A randomly initialised CLIP (32 px images, a word-level tokenizer) saved as a model folder."""
    import torch  # the `flag` extra, which `make install-test` installs
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder = tmp_path_factory.mktemp("tiny-clip")
    vocab = {word: i for i, word in enumerate(["[PAD]", "[UNK]", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]",
                                         unk_token="[UNK]").save_pretrained(folder)
    processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(folder)
    config = transformers.CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "pad_token_id": 0, "bos_token_id": 1,
                     "eos_token_id": 1},
        vision_config={"image_size": 32, "patch_size": 16, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=16,
    )
    torch.manual_seed(0)  # the same random weights every run
    transformers.CLIPModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def image_stack(tmp_path, tiny_clip, embedder, monkeypatch):
    # the loaders read the process's settings (whether to keep pictures): the same variable configures both
    monkeypatch.setenv("SIEVE_IMAGE_EMBEDDER_MODEL_PATH", str(tiny_clip))
    get_settings.cache_clear()
    try:
        with Stack(Settings(home=tmp_path / "home"), embedder=embedder) as stack:
            yield stack
    finally:
        get_settings.cache_clear()




def test_pictures_without_text_are_found_through_the_image_path_and_deleted_with_their_document(image_stack, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    picture("circle", "red").save(folder / "red-circle.png")
    picture("square", "blue").save(folder / "blue-square.jpg")
    ingestor = Ingestor(image_stack)
    report = ingestor.ingest_paths([folder], "pics", "t1")
    assert report.added == 2 and not report.failed  # no OCR text: each picture is a chunk named by its file

    with image_stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "pics").id)
    assert image_stack.image_vectors.count(flt) == 2
    result = search(image_stack, "a photo of a red circle", flt, ["image"])
    assert result.degraded == []
    assert {h.filename for h in result.hits} == {"red-circle.png", "blue-square.jpg"}
    assert all(set(h.ranks) == {"image"} and h.location["page"] == 1 for h in result.hits)
    # fused with BM25: a picture without text is indexed under its file name's words
    fused = search(image_stack, "square", flt, ["bm25", "image"])
    square = next(h for h in fused.hits if h.filename == "blue-square.jpg")
    assert set(square.ranks) == {"bm25", "image"} and square.text == "blue square"

    doc_id = next(h.doc_id for h in result.hits if h.filename == "red-circle.png")
    assert ingestor.delete_documents("t1", flt.kb, [doc_id]) == 1
    assert image_stack.image_vectors.count(flt) == 1
    assert [h.filename for h in search(image_stack, "a red circle", flt, ["image"]).hits] == ["blue-square.jpg"]


def test_without_an_image_model_the_path_says_it_is_not_configured(stack, sample_kb):
    Ingestor(stack).ingest_paths([sample_kb], "demo", "t1")
    with stack.sessions() as session:
        flt = SearchFilter("t1", get_kb(session, "t1", "demo").id)
    result = search(stack, "Apple Inc. headquarters", flt, ["bm25", "image"])
    assert result.degraded == ["image_not_configured"]
    assert result.hits and all(set(h.ranks) == {"bm25"} for h in result.hits)  # the other paths still answer
