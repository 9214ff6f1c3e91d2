"""Errors of the security leaf: the code sandbox and the SSRF-guarded HTTP client."""

from __future__ import annotations

from openify.errors import OpenifyError


class SandboxError(OpenifyError):
    """Code-node code failed, broke a limit (CPU, wall time, memory, output), or tried to leave the sandbox.

    `kind` says which: exception, invalid_result, cpu_time, wall_time, memory, output_size, output_limit,
    file_write, crashed, unavailable.
    """

    code, status, message = "code_execution_error", 400, "Code execution failed."

    def __init__(self, message: str | None = None, kind: str = "exception") -> None:
        super().__init__(message, kind=kind)
        self.kind = kind


class IsolationUnavailable(SandboxError):
    """Untrusted code was to run, but bubblewrap isolation does not work on this server and weak isolation
    was not allowed (OPENIFY_SANDBOX__ALLOW_WEAK)."""

    message = (
        "Code execution is disabled: this server cannot isolate untrusted code (bubblewrap is missing or does "
        "not work). Install bubblewrap, or set OPENIFY_SANDBOX__ALLOW_WEAK=true to accept weak isolation."
    )

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message, kind="unavailable")


class OutputLimitError(SandboxError):
    """A code node returned a value past one of Dify's output limits (depth, string length, number)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, kind="output_limit")


class SSRFBlocked(OpenifyError):
    """An HTTP node or tool request targets a loopback, private, link-local or otherwise internal address."""

    code, status, message = "ssrf_blocked", 400, "Access to private or internal addresses is not allowed."


class HttpRequestError(OpenifyError):
    """An HTTP node or tool request failed: timeout, connection error, too many redirects, response too large."""

    code, status, message = "http_request_error", 400, "HTTP request failed."
