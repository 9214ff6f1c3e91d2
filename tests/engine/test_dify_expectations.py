"""The real exports whose expected output Dify's own tests state (INVENTORY.md): Openify gives exactly that."""

from __future__ import annotations

import pytest

from openify.engine.events import LoopCompleted, LoopNext, TextChunk
from openify.engine.ports import Ports
from openify.engine.runner import SystemInputs
from tests.engine.conftest import SANDBOX, MemoryConversationVariables, load_dsl, run_dsl


async def test_08_loop_increment_break() -> None:
    out = await run_dsl(load_dsl("08-"))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs == {"num": 5}
    assert len(out.of(LoopNext)) == 4
    assert out.of(LoopCompleted)[0].outputs["num"] == 5


@pytest.mark.parametrize(
    ("s1", "s2", "expected"),
    [
        (1, 0, {"group1": "switch 1 on", "group2": "switch 2 off"}),
        (0, 1, {"group1": "switch 1 off", "group2": "switch 2 on"}),
        (1, 1, {"group1": "switch 1 on", "group2": "switch 2 on"}),
        ("0", "0", {"group1": "switch 1 off", "group2": "switch 2 off"}),
    ],
)
async def test_09_dual_switch_group_aggregator(s1: object, s2: object, expected: dict[str, str]) -> None:
    out = await run_dsl(load_dsl("09-"), {"switch1": s1, "switch2": s2})
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs == expected
    assert out.text == expected["group1"] + "\n" + expected["group2"]  # End outputs stream, newline-joined


async def test_10_iteration_flatten_disabled() -> None:
    out = await run_dsl(load_dsl("10-"))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.outputs == {"output": [[1, 2], [2, 4], [3, 6]]}


async def test_17_answer_inside_loop_streams_per_round() -> None:
    out = await run_dsl(load_dsl("17-"), system=SystemInputs(query="1", conversation_id="c"))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.text == "1\n2\n1 + 2"
    assert out.finished.answer == "1\n2\n1 + 2"


async def test_19_conversation_variable_written_inside_iteration() -> None:
    store = MemoryConversationVariables()
    ports = Ports(sandbox=SANDBOX, conversation_variables=store)
    out = await run_dsl(load_dsl("19-"), ports=ports, system=SystemInputs(query="hello there", conversation_id="c9"))
    assert out.finished.status == "succeeded", out.finished.error
    assert out.finished.answer == "hello there"
    assert store.stored == {"c9": {"answer": "hello there"}}


async def test_20_assigner_v1_overwrite_then_answer() -> None:
    store = MemoryConversationVariables()
    ports = Ports(conversation_variables=store)
    out = await run_dsl(load_dsl("20-"), ports=ports, system=SystemInputs(query="abc", conversation_id="c20"))
    assert out.finished.answer == "Current Value Of `conv_var` is:abc"
    chunks = [e for e in out.events if isinstance(e, TextChunk)]
    assert chunks[-1].from_variable_selector == ("conversation", "conv_var")
    assert store.stored["c20"] == {"conv_var": "abc"}
    # next turn starts from the stored value, not the DSL default
    out2 = await run_dsl(load_dsl("20-"), ports=ports, system=SystemInputs(query="xyz", conversation_id="c20"))
    assert out2.finished.conversation_variables["conv_var"] == "xyz"
