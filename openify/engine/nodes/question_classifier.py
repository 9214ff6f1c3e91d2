"""`question-classifier`: the model picks a class; its id is the branch handle (first class when unsure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openify.engine.model_calls import ModelSpec, clean_prompt, history, invoke, resolve, vision_parts, with_parts
from openify.engine.node import Node, NodeContext, NodeError, NodeResult, selector, usage_dict, usage_metadata
from openify.engine.nodes.llm import parse_json_reply
from openify.providers.base import ChatMessage, LLMRequest

SYSTEM = (
    "### Job Description\nYou are a text classification engine that analyzes text data and assigns categories "
    "based on user input or automatically determined categories.\n### Task\nYour task is to assign one category "
    "ONLY to the input text and only one category may be assigned returned in the output. Additionally, you need "
    "to extract the key words from the text that are related to the classification.\n### Format\nThe input text "
    "is in the variable input_text. Categories are specified as a category list with two filed category_id and "
    "category_name in the variable categories. Classification instructions may be included to improve the "
    "classification accuracy.\n### Constraint\nDO NOT include anything other than the JSON array in your "
    'response.\n### Output\nAnswer with a JSON object: {"keywords": [...], "category_id": "...", '
    '"category_name": "..."}'
)


def _s(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class QuestionClassifierNode(Node):
    type = "question-classifier"
    is_branch = True

    async def run(self, ctx: NodeContext) -> NodeResult:
        d = self.data
        classes = [
            (_s(c.get("id")), ctx.pool.render(str(c.get("name") or "")))
            for c in d.get("classes") or []
            if isinstance(c, Mapping)
        ]
        if not classes:
            raise NodeError("The classifier has no classes.", "QuestionClassifierNodeError")
        query = ctx.pool.get(selector(d.get("query_variable_selector")))
        query = "" if query is None else str(query)
        spec = ModelSpec.of(d)
        llm = resolve(ctx, spec)
        instruction = clean_prompt(ctx.pool.render(str(d.get("instruction") or d.get("instructions") or "")))
        cats = [{"category_id": cid, "category_name": name} for cid, name in classes]
        user = json.dumps(
            {"input_text": [query], "categories": cats, "classification_instructions": [instruction]},
            ensure_ascii=False,
        )
        messages = [ChatMessage("system", SYSTEM), *await history(ctx, d.get("memory"), spec)]
        messages.append(with_parts(ChatMessage("user", user), await vision_parts(ctx, d.get("vision"))))
        result = await invoke(
            llm, LLMRequest(model=spec.name, messages=messages, params=spec.params, stop=list(spec.stop))
        )
        reply = parse_json_reply(result.text)
        chosen = classes[0]  # Dify: an unknown id or unparsable reply selects the first class
        if isinstance(reply, Mapping):
            for cid, name in classes:
                if _s(reply.get("category_id")) == cid:
                    chosen = (cid, name)
                    break
        outputs = {"class_name": chosen[1], "class_id": chosen[0], "usage": usage_dict(result.usage)}
        return NodeResult(
            outputs=outputs,
            inputs={"query": query},
            handle=chosen[0],
            metadata=usage_metadata(result.usage),
            process_data={
                "model_mode": spec.mode,
                "prompts": [{"role": m.role, "text": m.content} for m in messages if isinstance(m.content, str)],
            },
        )


def register(r: Any) -> None:
    r.nodes.register(QuestionClassifierNode.type, QuestionClassifierNode)
