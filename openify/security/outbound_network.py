"""Outbound networking of isolated processes: slirp4netns in user mode, the host's loopback cut off.

A process confined with `network="outbound"` gets a new network namespace like any other; slirp4netns then
gives it a tap device whose traffic leaves through the server's own sockets (`--disable-host-loopback`:
10.0.2.2, slirp's way to the host's 127.0.0.1, is refused). bwrap holds the process (`--block-fd`) until
the network is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import subprocess
import tempfile

from openify.security.errors import IsolationUnavailable


@functools.cache
def slirp4netns_path() -> str | None:
    return shutil.which("slirp4netns")


def tun_usable() -> bool:
    # slirp4netns opens /dev/net/tun as the server's user, inside the sandbox's user namespace when not root:
    # most distributions make it 0666, some containers 0600.
    return os.geteuid() == 0 or os.access("/dev/net/tun", os.R_OK | os.W_OK)


_RESOLV_SLIRP = "nameserver 10.0.2.3\n"  # slirp4netns's built-in DNS forwarder


@functools.cache
def resolv_conf() -> str:
    """The host's resolv.conf when its servers are reachable from the sandbox, else slirp4netns's forwarder."""
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            servers = [line.split()[1] for line in f if line.startswith("nameserver") and len(line.split()) > 1]
    except OSError:
        servers = []
    if servers and not any(s.startswith(("127.", "::1", "0.")) or s == "::" for s in servers):
        return "/etc/resolv.conf"
    folder = tempfile.mkdtemp(prefix="openify-isolation-")
    os.chmod(folder, 0o755)  # noqa: S103 - read by the sandbox's uid; holds one public line
    path = os.path.join(folder, "resolv.conf")
    with open(path, "w", encoding="ascii") as f:
        f.write(_RESOLV_SLIRP)
    os.chmod(path, 0o644)
    return path


def child_pid(info_fd: int) -> int:
    """The sandbox's pid, from bwrap's `--info-fd` JSON."""
    data = b""
    while b"}" not in data:
        chunk = os.read(info_fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        return int(json.loads(data.decode())["child-pid"])
    except (ValueError, KeyError) as e:
        raise IsolationUnavailable("bubblewrap did not start the isolated process") from e


async def loopback_up(pid: int, timeout_s: float = 5.0) -> None:
    """Wait for bwrap to bring up the loopback of the new namespace: slirp4netns configuring it at the same
    time made bwrap fail ("loopback: Failed RTM_NEWADDR")."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            with open(f"/proc/{pid}/net/if_inet6", encoding="ascii") as f:  # ::1 appears once lo is up
                if any(line.split()[-1] == "lo" for line in f if line.strip()):
                    return
        except FileNotFoundError:  # no IPv6: the address is the last step but one; give it a moment
            await asyncio.sleep(0.05)
            return
        except OSError:
            return
        await asyncio.sleep(0.005)


_NETWORK_TASKS: set[asyncio.Task[None]] = set()


def end_with(proc: asyncio.subprocess.Process, network: asyncio.subprocess.Process) -> None:
    """slirp4netns ends with the process it serves."""

    async def follow() -> None:
        try:
            await proc.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):
                network.kill()
            await network.wait()

    task = asyncio.get_running_loop().create_task(follow())
    _NETWORK_TASKS.add(task)
    task.add_done_callback(_NETWORK_TASKS.discard)


async def attach(child: int, exit_fd: int) -> asyncio.subprocess.Process:
    """Start slirp4netns on the network namespace of `child` (bwrap's info-fd pid) and wait until it is up.

    `exit_fd` is the read end of a pipe whose write end only the sandbox holds: slirp4netns exits when the
    last process of the sandbox has, even if the server's event loop is gone by then.
    """
    slirp = slirp4netns_path()
    if slirp is None:
        raise IsolationUnavailable("Outbound networking for isolated processes needs slirp4netns, not installed")
    await loopback_up(child)
    ready_r, ready_w = os.pipe()
    net = [slirp, "--configure", "--mtu=65520", "--disable-host-loopback", f"--ready-fd={ready_w}"]
    net.append(f"--exit-fd={exit_fd}")
    if os.geteuid() != 0:
        net.append(f"--userns-path=/proc/{child}/ns/user")
    try:
        network = await asyncio.create_subprocess_exec(
            *net, str(child), "tap0", pass_fds=(ready_w, exit_fd), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(ready_w)
    try:
        if await asyncio.to_thread(os.read, ready_r, 1) != b"1":
            raise IsolationUnavailable("slirp4netns could not set up the network of an isolated process")
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            network.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(network.wait(), 5)
        raise
    finally:
        os.close(ready_r)
    return network


def describe() -> str:
    """What outbound networking gives on this server, for /health."""
    if slirp4netns_path() is None:
        return "unavailable (slirp4netns is not installed)"
    if not tun_usable():
        return "unavailable (/dev/net/tun cannot be opened by this user)"
    return "slirp4netns, host loopback cut off"
