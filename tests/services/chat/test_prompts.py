"""Prompt building: simple and advanced templates, variables, history within the context window in tokens."""

from __future__ import annotations

from typing import Any

import yaml

from openify.providers.base import ImagePart
from openify.services.chat.config import AppConfig, parse
from openify.services.chat.messages import Turn
from openify.services.chat.prompts import build_messages, render
from openify.services.dsl import parse_dsl
from openify.storage.tables import App
from openify.tokens import count_tokens


def config(mode: str = "chat", **model_config: Any) -> AppConfig:
    mc: dict[str, Any] = {
        "model": {
            "provider": "openai",
            "name": "gpt-4o-mini",
            "mode": "chat",
            "completion_params": {"max_tokens": 100},
        },
        "pre_prompt": "You help {{name}}.",
        "prompt_type": "simple",
        **model_config,
    }
    dsl = yaml.safe_dump({"version": "0.3.1", "kind": "app", "app": {"mode": mode, "name": "t"}, "model_config": mc})
    d = parse_dsl(dsl, lambda _t: True)
    return parse(App(id="a", mode=d.mode, model_config_=d.model_config))


def roles(messages: list[Any]) -> list[tuple[str, Any]]:
    return [(m.role, m.content) for m in messages]


def test_render_fills_known_names_and_keeps_unknown_ones() -> None:
    assert render("Hi {{name}}, {{missing}}!", {"name": "Ann"}) == "Hi Ann, {{missing}}!"
    # a value cannot smuggle in another variable
    assert render("{{a}} {{b}}", {"a": "{{b}}", "b": "x"}) == "{b} x"


def test_simple_chat_prompt() -> None:
    cfg = config()
    history = [Turn("q1", "a1")]
    got = build_messages(cfg, {"name": "Ann"}, "q2", history, context="FACTS", images=[ImagePart("https://i/x.png")])
    system = got[0].content
    assert got[0].role == "system" and isinstance(system, str) and system.endswith("You help Ann.")
    assert "<context>\nFACTS\n</context>" in system
    assert roles(got[1:3]) == [("user", "q1"), ("assistant", "a1")]
    assert got[3].role == "user" and list(got[3].content) == ["q2", ImagePart("https://i/x.png")]


def test_history_keeps_the_newest_turns_that_fit_in_the_context_window() -> None:
    cfg = config()
    turns = [Turn(f"question {i} " + "word " * 50, f"answer {i} " + "word " * 50) for i in range(10)]
    per_turn = count_tokens(turns[0].query) + count_tokens(turns[0].answer) + 8
    fixed = count_tokens("You help Ann.") + count_tokens("now")
    size = 100 + fixed + per_turn * 3 + 5  # max_tokens + prompt + three turns
    got = build_messages(cfg, {"name": "Ann"}, "now", turns, context_size=size)
    kept = [m.content for m in got if m.role == "user"][:-1]
    assert kept == [t.query for t in turns[-3:]]  # oldest dropped first
    everything = build_messages(cfg, {"name": "Ann"}, "now", turns, context_size=100_000)
    assert len(everything) == 1 + 20 + 1


def test_advanced_chat_prompt() -> None:
    prompt = {
        "prompt": [{"role": "system", "text": "Sys {{name}} {{#context#}}"}, {"role": "user", "text": "Q: {{#query#}}"}]
    }
    cfg = config(prompt_type="advanced", chat_prompt_config=prompt)
    got = build_messages(cfg, {"name": "Ann"}, "why?", [Turn("q1", "a1")], context="C")
    assert roles(got) == [
        ("system", "Sys Ann C"),
        ("user", "Q: why?"),
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "why?"),
    ]


def test_completion_app_without_query_sends_the_rendered_prompt() -> None:
    cfg = config("completion", pre_prompt="Translate {{text}}")
    assert roles(build_messages(cfg, {"text": "hola"}, "")) == [("user", "Translate hola")]


def test_completion_model_gets_one_prompt_with_histories() -> None:
    cfg = config(
        model={"provider": "openai", "name": "davinci", "mode": "completion", "completion_params": {}},
        pre_prompt="Be nice.",
    )
    (msg,) = build_messages(cfg, {}, "q2", [Turn("q1", "a1")])
    text = msg.content
    assert isinstance(text, str) and text.startswith("Be nice.")
    assert "Human: q1\nAssistant: a1" in text and text.endswith("Human: q2\n\nAssistant: ")


def test_inputs_are_checked_against_the_form() -> None:
    form = [
        {"select": {"variable": "lang", "label": "L", "options": ["en", "zh"], "required": False, "default": "en"}},
        {"number": {"variable": "n", "label": "N", "required": False}},
        {"checkbox": {"variable": "ok", "label": "OK", "required": False}},
    ]
    cfg = config(user_input_form=form)
    assert cfg.check_inputs({"n": "2", "ok": "yes", "junk": 1}) == {"lang": "en", "n": 2, "ok": True}
