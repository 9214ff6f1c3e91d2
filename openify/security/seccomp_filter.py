"""The seccomp filter of isolated processes: libseccomp's BPF program, loaded by bwrap (`--seccomp FD`)."""

from __future__ import annotations

import errno
import functools
import logging
import tempfile

log = logging.getLogger(__name__)

# Refused with EPERM: escapes (namespaces, mounts, kernel modules), reaching other processes (ptrace,
# pidfd, process_vm), and large kernel attack surface no code node or plugin needs (bpf, io_uring, ...).
_SECCOMP_DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "kcmp",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "personality",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "acct",
    "quotactl",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "vhangup",
    "fanotify_init",
    "lookup_dcookie",
)
# clone() with any of these flags makes namespaces; clone3 hides its flags in memory seccomp cannot read,
# so it answers ENOSYS and libc falls back to clone (what Docker and Flatpak do).
_CLONE_NAMESPACES = (0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x80)


@functools.cache
def seccomp_program() -> bytes:
    """The BPF program bwrap loads (`--seccomp FD`): libseccomp's, for the native architecture only.

    Other ABIs (i386 `int 0x80`, x32) hit libseccomp's bad-architecture action and kill the thread.
    """
    import pyseccomp as seccomp  # type: ignore[import-untyped]  # no stubs; loads libseccomp.so.2

    deny = seccomp.ERRNO(errno.EPERM)
    f = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in _SECCOMP_DENIED:
        try:
            f.add_rule(deny, name)
        except (OSError, ValueError) as e:  # a name this libseccomp does not know on this architecture
            log.debug("seccomp: %s not filtered (%s)", name, e)
    for flag in _CLONE_NAMESPACES:
        f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()
