"""One confined child process: send it a request on stdin, read its capped stdout, kill its group at the end.

The sync and async halves of Sandbox share this contract: a wall-time deadline, stdout capped while it is
read (so a flood never reaches the server's memory), stderr kept to its first 64 KiB, and the whole process
group killed afterwards, whatever the child left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

_STDERR_CAP = 64 * 1024
_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class Job:
    """One run of an already confined command line (isolation.launch) fed `payload` on stdin."""

    argv: list[str]
    payload: bytes
    cwd: str
    env: dict[str, str]
    wall_time_s: float
    stdout_cap: int
    pass_fds: tuple[int, ...] = ()  # the seccomp program for bwrap


@dataclass(frozen=True, slots=True)
class Finished:
    stdout: bytes
    stderr: bytes
    returncode: int
    timed_out: bool
    overflow: bool


def run(c: Job) -> Finished:
    """Run the child to the end, the deadline or the stdout cap, from any thread."""
    proc = subprocess.Popen(  # noqa: S603 - argv is ours; user code travels on stdin
        c.argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=c.cwd,
        env=c.env,
        start_new_session=True,
        close_fds=True,
        pass_fds=c.pass_fds,
    )
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    assert stdin and stdout and stderr  # noqa: S101 - all three are pipes
    deadline = time.monotonic() + c.wall_time_s
    out, err = bytearray(), bytearray()
    timed_out = overflow = False
    pending = memoryview(c.payload)
    with selectors.DefaultSelector() as sel:
        os.set_blocking(stdin.fileno(), False)
        sel.register(stdin, selectors.EVENT_WRITE)
        sel.register(stdout, selectors.EVENT_READ)
        sel.register(stderr, selectors.EVENT_READ)
        while sel.get_map() and not overflow:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(remaining):
                if key.fileobj is stdin:
                    try:
                        pending = pending[os.write(key.fd, pending[:_CHUNK]) :]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(stdin)
                        stdin.close()
                    continue
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.fileobj is stdout:
                    out += chunk
                    if len(out) > c.stdout_cap:
                        overflow = True
                        break
                elif len(err) < _STDERR_CAP:
                    err += chunk
    _kill_group(proc.pid)
    returncode = proc.wait()
    for stream in (stdin, stdout, stderr):
        stream.close()
    return Finished(bytes(out), bytes(err), returncode, timed_out, overflow)


async def arun(c: Job) -> Finished:
    """`run` on the event loop."""
    proc = await asyncio.create_subprocess_exec(
        *c.argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=c.cwd,
        env=c.env,
        start_new_session=True,
        close_fds=True,
        pass_fds=c.pass_fds,
    )
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    assert stdin and stdout and stderr  # noqa: S101 - all three are pipes
    out, err = bytearray(), bytearray()
    overflow = False

    async def feed() -> None:
        try:
            stdin.write(c.payload)
            await stdin.drain()
            stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass

    async def drain_stdout() -> None:
        nonlocal overflow
        while chunk := await stdout.read(_CHUNK):
            out.extend(chunk)
            if len(out) > c.stdout_cap:
                overflow = True
                return

    async def drain_stderr() -> None:
        while chunk := await stderr.read(_CHUNK):
            if len(err) < _STDERR_CAP:
                err.extend(chunk)

    tasks = [asyncio.ensure_future(step()) for step in (feed, drain_stdout, drain_stderr)]
    try:
        done, _ = await asyncio.wait(tasks[1:2], timeout=c.wall_time_s)
        timed_out = not done
        if not overflow and not timed_out:
            await asyncio.wait(tasks[2:], timeout=1.0)
    finally:
        _kill_group(proc.pid)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Reaped here, inside `finally`, so a cancelled run (a stopped workflow) leaves no zombie behind.
        # Bounded: once in a CI run the exit of a killed child was never reported to the loop, and an
        # unbounded wait hung the caller; the group has been sent SIGKILL, so a few seconds is plenty.
        returncode = await _reap(proc)
    return Finished(bytes(out), bytes(err), returncode, timed_out, overflow)


async def _reap(proc: asyncio.subprocess.Process, timeout_s: float = 5.0) -> int:
    """The exit status of a child whose group was killed; -9 when its exit is not seen in time."""
    try:
        return await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        try:
            return await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            log.error("sandbox child %d: exit not seen %.0f s after SIGKILL", proc.pid, 2 * timeout_s)
            return -9


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
