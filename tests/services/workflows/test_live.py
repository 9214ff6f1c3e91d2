"""A live run's relay: every subscriber sees every event once, in order, and fast events gather into batches."""

from __future__ import annotations

import asyncio
import contextlib

from openify.engine.events import TextChunk, WorkflowEvent
from openify.engine.graph import parse_graph
from openify.engine.runner import WorkflowRunner
from openify.plugins import build_registries
from openify.services.workflows.live import LiveRun

GRAPH = {
    "nodes": [
        {"id": "s", "data": {"type": "start", "title": "S", "variables": []}},
        {"id": "e", "data": {"type": "end", "title": "E", "outputs": []}},
    ],
    "edges": [{"source": "s", "target": "e"}],
}


def live_run() -> LiveRun:
    """A LiveRun whose events the test publishes itself (its engine run is never driven)."""
    run = WorkflowRunner(parse_graph({"workflow": {"graph": GRAPH}}), build_registries()).start({})
    return LiveRun(run_id="r", task_id="t", app_id="a", workflow_id="w", end_user_id="u", session_id="s", run=run)


def chunk(n: int) -> TextChunk:
    return TextChunk(text=str(n), from_variable_selector=["e", "o"])


async def collect(live: LiveRun, replay: bool = True, coalesce_s: float = 0.0) -> list[list[WorkflowEvent]]:
    return [batch async for batch in live.batches(replay, coalesce_s)]


async def timed_batches(live: LiveRun, got: list[tuple[float, list[str]]], coalesce_s: float = 0.3) -> None:
    """Records when each batch arrives, and its texts."""
    loop = asyncio.get_running_loop()
    async for batch in live.batches(replay=True, coalesce_s=coalesce_s):
        got.append((loop.time(), [ev.text for ev in batch]))  # type: ignore[union-attr]


async def test_every_subscriber_sees_every_event_once_in_order() -> None:
    live = live_run()
    live.publish(chunk(0))
    early = asyncio.create_task(collect(live))  # replays what came before it
    gone = asyncio.create_task(collect(live))
    await asyncio.sleep(0.01)
    late = asyncio.create_task(collect(live, replay=False))  # from now on
    await asyncio.sleep(0.01)
    gone.cancel()  # one subscriber leaving must not cancel the others' wake-up
    with contextlib.suppress(asyncio.CancelledError):
        await gone
    for n in range(1, 6):
        live.publish(chunk(n))
        await asyncio.sleep(0.005)
    live.close()
    flat = [[ev.text for batch in await t for ev in batch] for t in (early, late)]  # type: ignore[union-attr]
    assert flat == [["0", "1", "2", "3", "4", "5"], ["1", "2", "3", "4", "5"]]
    # After the end, a replaying subscriber gets the whole log; one asking for news gets nothing more.
    assert [ev.text for batch in await collect(live) for ev in batch] == ["0", "1", "2", "3", "4", "5"]  # type: ignore[union-attr]
    assert await collect(live, replay=False) == []


async def test_an_event_after_a_quiet_spell_goes_at_once_and_fast_ones_gather() -> None:
    live = live_run()
    loop = asyncio.get_running_loop()
    got: list[tuple[float, list[str]]] = []
    task = asyncio.create_task(timed_batches(live, got))
    await asyncio.sleep(0.35)
    t0 = loop.time()
    live.publish(chunk(1))  # after a quiet spell longer than coalesce_s: no waiting
    await asyncio.sleep(0.05)
    assert [texts for _, texts in got] == [["1"]]
    assert got[0][0] - t0 < 0.1
    for n in range(2, 7):  # faster than coalesce_s: gathered into the next batch
        live.publish(chunk(n))
        await asyncio.sleep(0.01)
    while len(got) < 2:
        await asyncio.sleep(0.005)
    assert [texts for _, texts in got] == [["1"], ["2", "3", "4", "5", "6"]]
    assert got[1][0] - got[0][0] >= 0.29  # at most one batch per coalesce_s
    live.publish(chunk(7))  # within coalesce_s of the last batch, but the run ends: no waiting for the rest
    t1 = loop.time()
    live.close()
    await task
    assert [texts for _, texts in got][2:] == [["7"]]
    assert got[2][0] - t1 < 0.1


async def test_a_runs_first_events_gather_and_its_end_cuts_the_wait_short() -> None:
    live = live_run()
    loop = asyncio.get_running_loop()
    got: list[tuple[float, list[str]]] = []
    t0 = loop.time()
    task = asyncio.create_task(timed_batches(live, got))
    for n in range(1, 4):  # a run's start is a burst: one batch, not three writes
        live.publish(chunk(n))
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.4)
    assert [texts for _, texts in got] == [["1", "2", "3"]]
    assert got[0][0] - t0 >= 0.29
    task2 = asyncio.create_task(collect(live, replay=False, coalesce_s=0.3))
    await asyncio.sleep(0.01)
    live.publish(chunk(4))
    t1 = loop.time()
    live.close()  # a short run ends well within coalesce_s: its events go at once
    await task
    assert [texts for _, texts in got] == [["1", "2", "3"], ["4"]]
    assert got[1][0] - t1 < 0.1
    assert [[ev.text for ev in batch] for batch in await task2] == [["4"]]  # type: ignore[union-attr]


async def test_a_subscriber_leaving_mid_window_leaves_nothing_behind() -> None:
    live = live_run()
    task = asyncio.create_task(collect(live, coalesce_s=10.0))
    await asyncio.sleep(0.01)
    live.publish(chunk(1))
    assert len(live._wakers) == 1  # its window's wait, which the run's end would cut short
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not live._wakers  # no timer or waiter of a gone stream stays with the run
    live.close()
    assert [[ev.text for ev in batch] for batch in await collect(live, coalesce_s=10.0)] == [["1"]]  # type: ignore[union-attr]
