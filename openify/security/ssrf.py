"""An SSRF-guarded HTTP client for the HTTP node and the agent's http tool.

Dify leaves this to an external forward proxy; Openify vets addresses itself. The check sits in the
httpcore network backend, at connect time: the host is resolved here, every answer is vetted, and the
socket is opened to a vetted IP while the URL (so the Host header and TLS SNI/certificate check) keeps the
name. There is no second lookup to rebind, every redirect hop is a new request through the same backend,
and decimal/octal/hex or IPv4-mapped spellings are judged by the address they resolve to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from openify.security.errors import HttpRequestError, SSRFBlocked
from openify.settings import HttpNodeSettings

__all__ = ["GuardedHttpClient", "GuardedResponse", "HttpRequestError", "Resolver", "SSRFBlocked", "is_blocked_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Turns (host, port) into IP address strings; injectable so tests can play a rebinding DNS server."""

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_blocked_address(ip: str | IPAddress) -> bool:
    """Whether `ip` is loopback, private, link-local (cloud metadata), CGNAT, unspecified, multicast or reserved.

    IPv6 forms that embed an IPv4 address (mapped, compatible, 6to4, NAT64) are judged by that address.
    """
    addr = ipaddress.ip_address(ip.split("%", 1)[0] if isinstance(ip, str) else ip)
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:  # the socket really talks IPv4 to this address
            return is_blocked_address(addr.ipv4_mapped)
        if int(addr) >> 32 == 0 and int(addr) > 1:  # deprecated IPv4-compatible ::a.b.c.d
            return is_blocked_address(ipaddress.IPv4Address(int(addr)))
        embedded = addr.sixtofour
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None and is_blocked_address(embedded):
            return True
    return (
        not addr.is_global
        or addr.is_multicast
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_unspecified
        or addr.is_reserved
        or (isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT)
    )


@dataclass(frozen=True, slots=True)
class GuardedResponse:
    status_code: int
    headers: httpx.Headers
    body: bytes
    url: str
    encoding: str | None = None

    @property
    def text(self) -> str:
        return self.body.decode(self.encoding or "utf-8", errors="replace")


class _AllowList:
    def __init__(self, entries: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            entry = entry.strip()
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if entry:
                    self.hosts.add(entry.lower().rstrip("."))

    def allows(self, host: str, ip: IPAddress) -> bool:
        return host.lower().rstrip(".") in self.hosts or any(ip in net for net in self.networks)


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class _VettingBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets every answer, then connects to a vetted IP (the hostname stays for Host and SNI)."""

    def __init__(self, allow: _AllowList, resolver: Resolver) -> None:
        self._allow, self._resolver, self._inner = allow, resolver, httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        name = host.strip("[]")
        try:
            answers = await asyncio.wait_for(self._resolver(name, port), timeout)
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"Resolving {name} timed out") from e
        except OSError as e:
            raise httpcore.ConnectError(f"Cannot resolve {name}: {e}") from e
        ips = [ipaddress.ip_address(a.split("%", 1)[0]) for a in dict.fromkeys(answers)]
        if not ips:
            raise httpcore.ConnectError(f"Cannot resolve {name}")
        for ip in ips:
            if is_blocked_address(ip) and not self._allow.allows(name, ip):
                raise SSRFBlocked(f"Access to private or loopback address {ip} is not allowed")
        error: Exception | None = None
        for ip in ips:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        assert error is not None  # noqa: S101 - ips is not empty
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        del timeout, socket_options
        raise SSRFBlocked(f"Unix socket {path} is not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: _VettingBackend, tls: ssl.SSLContext) -> None:
        super().__init__(verify=tls, trust_env=False)
        # httpx has no public hook for the network backend, so its pool is rebuilt with ours.
        self._pool = httpcore.AsyncConnectionPool(ssl_context=tls, network_backend=backend)


class GuardedHttpClient:
    """Sends one request at a time, refusing internal addresses unless `settings.allow_hosts` names them."""

    def __init__(self, settings: HttpNodeSettings, *, resolver: Resolver | None = None) -> None:
        self.settings = settings
        self._backend = _VettingBackend(_AllowList(settings.allow_hosts), resolver or _system_resolver)
        self._tls: dict[bool, ssl.SSLContext] = {}

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Any = None,
        params: Any = None,
        content: bytes | str | None = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
        read_timeout_s: float | None = None,
        write_timeout_s: float | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 5,
        verify: bool = True,
        max_response_bytes: int | None = None,
    ) -> GuardedResponse:
        """Send the request, following redirects hop by hop; raise SSRFBlocked or HttpRequestError."""
        base = timeout_s if timeout_s is not None else self.settings.timeout_s
        timeout = httpx.Timeout(
            base, connect=connect_timeout_s or base, read=read_timeout_s or base, write=write_timeout_s or base
        )
        cap = max_response_bytes if max_response_bytes is not None else self.settings.max_response_bytes
        transport = _GuardedTransport(self._backend, self._verify(verify))
        try:
            async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client:
                request = client.build_request(
                    method.upper(),
                    url,
                    headers=headers,
                    params=params,
                    content=content,
                    data=data,
                    files=files,
                    json=json,
                )
                for _ in range(max_redirects + 1):
                    response = await client.send(request, stream=True, follow_redirects=False)
                    try:
                        if not (follow_redirects and response.is_redirect and response.next_request):
                            body = await _read_capped(response, cap)
                            return GuardedResponse(
                                response.status_code, response.headers, body, str(response.url), response.encoding
                            )
                        request = response.next_request
                    finally:
                        await response.aclose()
                raise HttpRequestError(f"Too many redirects (more than {max_redirects})")
        except httpx.TimeoutException as e:
            raise HttpRequestError(f"Request to {url} timed out: {type(e).__name__}") from e
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
            raise HttpRequestError(f"Invalid URL {url!r}: {e}") from e
        except httpx.HTTPError as e:
            raise HttpRequestError(f"Request to {url} failed: {e or type(e).__name__}") from e

    def _verify(self, verify: bool) -> ssl.SSLContext:
        if verify not in self._tls:  # building a context reads the CA bundle: once per client
            self._tls[verify] = httpx.create_ssl_context(verify=verify)
        return self._tls[verify]


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise HttpRequestError(f"Response body exceeds the limit of {cap} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > cap:
            raise HttpRequestError(f"Response body exceeds the limit of {cap} bytes")
    return bytes(body)


def guarded_async_client(
    settings: HttpNodeSettings, headers: Mapping[str, str] | None = None, **kw: Any
) -> httpx.AsyncClient:
    """An httpx client whose every connection is vetted as GuardedHttpClient's (for libraries that take an httpx
    client, as the `mcp` SDK's transports do)."""
    tls = ssl.create_default_context()
    transport = _GuardedTransport(_VettingBackend(_AllowList(settings.allow_hosts), _system_resolver), tls)
    return httpx.AsyncClient(transport=transport, headers=dict(headers or {}), follow_redirects=True, **kw)
