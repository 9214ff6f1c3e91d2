"""Dify plugin processes: started on first use, kept warm, multiplexed by session id, restarted when they die,
stopped when idle. What the Go daemon's local runtime does, inside the server's event loop.

The ~10 s stall of the protocol digest. A host that waits for the pipe to be readable (select/poll) and then
reads ONE line from a buffered reader stalls whenever the plugin wrote several lines at once (an `invoke` line
and what follows it): the rest sits in the host's own buffer, the pipe is no longer readable, and nothing
happens until the plugin's next heartbeat (`HEARTBEAT_INTERVAL`, 10 s) makes it readable again. Measured with
such a host on the `everything` test plugin: every round 10.0 s (20.0 s when two heartbeats passed). The
SDK's order (it writes `invoke` before registering its reader, `core/runtime.py`) is not what stalls: 160
backwards calls answered at once, 16 at a time, never lost one. The Go daemon reads stdout in a loop that
handles every buffered line (bufio.Scanner); so does `_read` here (asyncio's `readline` drains the buffer
line by line before waiting on the pipe again), and backwards calls are answered as soon as they are read,
with no fixed pause. tests/tools/dify_plugins/test_agent_strategy.py holds every warm round under 2 s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openify.errors import OpenifyError
from openify.tools.dify_plugins import protocol
from openify.tools.dify_plugins.installer import InstalledPlugin
from openify.tools.dify_plugins.spawn import Spawner, plugin_command

log = logging.getLogger("openify.dify_plugins")


_SILENT_S = 60.0  # six missed heartbeats


class PluginUnavailable(OpenifyError):
    """A Dify plugin process could not start, died during a call, or did not answer in time."""

    code, status, message = "plugin_unavailable", 502, "The plugin is not available."


class PluginInvokeError(OpenifyError):
    """The plugin answered a call with its own error (the SDK's `error` session message)."""

    code, status, message = "plugin_invoke_error", 400, "The plugin failed."

    def __init__(self, message: str, error_type: str = "Exception") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True, slots=True)
class Session:
    """Who a session serves: passed to backwards invocations so they act for the same user and app."""

    plugin: InstalledPlugin
    session_id: str
    user_id: str
    app_id: str | None = None
    conversation_id: str | None = None


# Serves one backwards invocation: yields the `data` of each `response` line; raising sends an `error` line.
Backwards = Callable[[Session, protocol.SessionInvoke], AsyncIterator[Mapping[str, Any]]]

_END = object()


class PluginProcess:
    """One running plugin: one stdin writer, one stdout reader task, a queue per live session."""

    def __init__(self, plugin: InstalledPlugin, proc: asyncio.subprocess.Process, backwards: Backwards) -> None:
        self.plugin, self._proc, self._backwards = plugin, proc, backwards
        self._sessions: dict[str, asyncio.Queue[Any]] = {}
        self._session_info: dict[str, Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._declared = asyncio.get_running_loop().create_future()
        self.last_used = time.monotonic()
        self.last_heard = time.monotonic()
        self.dead = False
        self._reader = asyncio.create_task(self._read(), name=f"dify-plugin-{plugin.key}")
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=8)  # why a start failed
        self._stderr = asyncio.create_task(self._drain_stderr())

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def in_flight(self) -> int:
        return len(self._sessions)

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait for the plugin's declaration line: it is then reading requests."""
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._declared)
        except TimeoutError:
            await self.stop()
            raise PluginUnavailable(f"Dify plugin {self.plugin.key} did not start within {timeout_s:g} s") from None

    async def invoke(
        self, data: Mapping[str, Any], session: Session, extra: Mapping[str, Any], timeout_s: float
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Send one request and yield its stream items until `end`; the plugin's error raises PluginInvokeError."""
        if self.dead:
            raise PluginUnavailable(f"Dify plugin {self.plugin.key} is not running")
        sid = session.session_id
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._sessions[sid], self._session_info[sid] = queue, session
        self.last_used = time.monotonic()
        try:
            await self._write(protocol.request_line(sid, data, extra))
            deadline = time.monotonic() + timeout_s
            while True:
                left = deadline - time.monotonic()
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=max(left, 0))
                except TimeoutError:
                    raise PluginUnavailable(
                        f"Dify plugin {self.plugin.key} did not finish within {timeout_s:g} s"
                    ) from None
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._sessions.pop(sid, None)
            self._session_info.pop(sid, None)
            self.last_used = time.monotonic()

    async def _write(self, line: bytes) -> None:
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing():
            raise PluginUnavailable(f"Dify plugin {self.plugin.key} is not running")
        try:
            stdin.write(line)
            await stdin.drain()
        except (ConnectionError, RuntimeError) as e:
            raise PluginUnavailable(f"Dify plugin {self.plugin.key} is not running") from e

    async def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None  # noqa: S101 - spawned with a stdout pipe
        try:
            while True:
                line = await stdout.readline()
                if not line:
                    break
                self.last_heard = time.monotonic()
                try:
                    event = protocol.parse_line(line)
                except protocol.ProtocolError:
                    log.info("Dify plugin %s: %s", self.plugin.key, line[:500].decode(errors="replace").rstrip())
                    continue
                if event is not None:
                    self._dispatch(event)
        except Exception:
            log.exception("Dify plugin %s: reader failed", self.plugin.key)
        finally:
            await self._died()

    def _dispatch(self, event: protocol.PluginEvent) -> None:
        match event:
            case protocol.Declaration():
                if not self._declared.done():
                    self._declared.set_result(None)
            case protocol.SessionStream(session_id=sid, data=data):
                self._put(sid, data)
            case protocol.SessionEnd(session_id=sid):
                self._put(sid, _END)
            case protocol.SessionError(session_id=sid, error_type=kind, message=message):
                self._put(sid, PluginInvokeError(message or kind, kind))
            case protocol.SessionInvoke() as call:
                task = asyncio.create_task(self._serve_backwards(call))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            case protocol.PluginLog(level=level, message=message):
                log.log(
                    logging.getLevelName(level.upper()) if level else logging.INFO,
                    "Dify plugin %s: %s",
                    self.plugin.key,
                    message,
                )
            case _:
                pass

    def _put(self, sid: str, item: Any) -> None:
        queue = self._sessions.get(sid)
        if queue is not None:
            queue.put_nowait(item)

    async def _serve_backwards(self, call: protocol.SessionInvoke) -> None:
        session = self._session_info.get(call.session_id)
        sid, rid = call.session_id, call.request_id
        try:
            if session is None:
                raise PluginInvokeError(f"no live session {sid!r} for this backwards invocation")
            async for data in self._backwards(session, call):
                await self._write(protocol.backwards_line(sid, rid, "response", dict(data)))
            await self._write(protocol.backwards_line(sid, rid, "end"))
        except PluginUnavailable:
            pass  # the process is gone: nobody to answer
        except Exception as e:
            # The SDK raises `Exception(message)` in the plugin for an `error` line: the plugin's call fails, no hang.
            message = str(e) or type(e).__name__
            with contextlib.suppress(PluginUnavailable):
                await self._write(protocol.backwards_line(sid, rid, "error", None, message))

    async def _drain_stderr(self) -> None:
        stderr = self._proc.stderr
        if stderr is None:
            return
        with contextlib.suppress(Exception):
            while line := await stderr.readline():
                text = line.decode(errors="replace").rstrip()
                self._stderr_tail.append(text)
                log.debug("Dify plugin %s stderr: %s", self.plugin.key, text)

    async def _died(self) -> None:
        self.dead = True
        if not self._declared.done():
            with contextlib.suppress(TimeoutError):  # its last words say why
                await asyncio.wait_for(asyncio.shield(self._stderr), timeout=1.0)
            why = " | ".join(list(self._stderr_tail)[-3:])[-600:]
            self._declared.set_exception(
                PluginUnavailable(f"Dify plugin {self.plugin.key} exited while starting: {why or 'no output'}")
            )
            self._declared.exception()  # retrieved: no "never retrieved" warning when nobody waits
        code = await self._proc.wait()
        for sid, queue in list(self._sessions.items()):
            queue.put_nowait(PluginUnavailable(f"Dify plugin {self.plugin.key} exited (code {code}) during a call"))
            del sid
        for task in list(self._tasks):
            task.cancel()

    async def stop(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        with contextlib.suppress(Exception):
            await self._proc.wait()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        self._stderr.cancel()


class PluginRuntime:
    """Every plugin process of one server, keyed by plugin and event loop (a process's pipes live in one loop)."""

    def __init__(
        self,
        backwards: Backwards,
        spawn: Spawner,
        *,
        start_timeout_s: float = 30.0,
        invoke_timeout_s: float = 300.0,
        idle_stop_s: float = 600.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._backwards, self._spawn = backwards, spawn
        self.start_timeout_s, self.invoke_timeout_s, self.idle_stop_s = start_timeout_s, invoke_timeout_s, idle_stop_s
        self._env = dict(env or {})
        self._procs: dict[tuple[str, int], PluginProcess] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._reapers: dict[int, asyncio.Task[None]] = {}

    async def process(self, plugin: InstalledPlugin) -> PluginProcess:
        """The warm process of `plugin`, started (or restarted after a crash) when needed."""
        loop = asyncio.get_running_loop()
        key = (plugin.identifier, id(loop))
        proc = self._procs.get(key)
        if proc is not None and not proc.dead:
            return proc
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            proc = self._procs.get(key)
            if proc is not None and not proc.dead:
                return proc
            argv, cwd, env = plugin_command(plugin, self._env)
            for attempt in (1, 2):
                try:
                    started = await self._spawn(argv, cwd, env, plugin)
                    fresh = PluginProcess(plugin, started, self._backwards)
                    await fresh.wait_ready(self.start_timeout_s)
                    break
                except OpenifyError as e:  # IsolationUnavailable: no bubblewrap and weak isolation not allowed
                    if not isinstance(e, PluginUnavailable):
                        raise PluginUnavailable(f"Dify plugin {plugin.key} cannot run: {e.detail}") from e
                    if attempt == 2:
                        raise
                except OSError as e:
                    if attempt == 2:
                        raise PluginUnavailable(f"Dify plugin {plugin.key} could not start: {e}") from e
                # One more try: bubblewrap's namespace setup fails now and then under load (RTM_NEWADDR).
                log.warning("Dify plugin %s failed to start; trying once more", plugin.key)
            self._procs[key] = fresh
            if id(loop) not in self._reapers or self._reapers[id(loop)].done():
                self._reapers[id(loop)] = asyncio.create_task(self._reap())
            return fresh

    async def invoke(
        self,
        plugin: InstalledPlugin,
        data: Mapping[str, Any],
        *,
        user_id: str,
        app_id: str | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
        timeout_s: float | None = None,
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Run one request on the plugin's warm process; yields stream items; raises PluginInvokeError/Unavailable."""
        proc = await self.process(plugin)
        session = Session(plugin, uuid.uuid4().hex, user_id, app_id, conversation_id)
        extra = {"app_id": app_id, "conversation_id": conversation_id, "message_id": message_id}
        async for item in proc.invoke(data, session, extra, timeout_s or self.invoke_timeout_s):
            yield item

    def running(self) -> list[PluginProcess]:
        return [p for p in self._procs.values() if not p.dead]

    async def stop_plugin(self, identifier: str) -> None:
        for key, proc in list(self._procs.items()):
            if key[0] == identifier:
                self._procs.pop(key, None)
                await proc.stop()

    async def close(self) -> None:
        """Stop every process this loop started (the server's shutdown)."""
        me = id(asyncio.get_running_loop())
        for key, proc in list(self._procs.items()):
            if key[1] == me:
                self._procs.pop(key, None)
                await proc.stop()
        reaper = self._reapers.pop(me, None)
        if reaper is not None:
            reaper.cancel()

    async def _reap(self) -> None:
        me = id(asyncio.get_running_loop())
        while True:
            await asyncio.sleep(min(5.0, max(0.05, self.idle_stop_s / 4)))
            now = time.monotonic()
            for key, proc in list(self._procs.items()):
                idle = proc.in_flight == 0 and now - proc.last_used > self.idle_stop_s
                # The SDK writes a heartbeat every 10 s (HEARTBEAT_INTERVAL) even while busy: one silent this
                # long is hung; stopping it fails its calls now rather than at their time limits.
                hung = proc.in_flight > 0 and now - proc.last_heard > _SILENT_S
                if hung:
                    log.warning("Dify plugin %s wrote nothing for %.0f s: stopped as hung", proc.plugin.key, _SILENT_S)
                if key[1] == me and (proc.dead or idle or hung):
                    self._procs.pop(key, None)
                    await proc.stop()
