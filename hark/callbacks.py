"""Where a webhook may go, and posting to it without being turned against our own network.

A callback URL is a tenant's instruction to make our servers connect somewhere. Unchecked, that is a
port scanner and a metadata-service reader (169.254.169.254, redis:6379, 127.0.0.1) for anyone with
a submit key. So the host is resolved and every address it resolves to must be public (not
loopback, private, link-local, shared, multicast, reserved or unspecified), unless the operator
listed it in the `webhook_allow` setting; it is checked when the job is submitted and again when
each delivery is attempted, and the delivery connects to the very address that passed (a name
that resolves differently a second later, DNS rebinding, gains nothing). Redirects are never
followed, and one attempt has one time budget for everything.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CallbackRefused(ValueError):
    """The URL may not be used as a callback; the message says why, for the tenant."""


@dataclass(frozen=True)
class Allowance:
    """The operator's exceptions (setting `webhook_allow`): networks, and host names exactly."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, spec: str) -> Allowance:
        networks: list[Network] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, host: str, address: Address) -> bool:
        return host in self.hosts or any(address in net for net in self.networks)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str  # the checked address the connection goes to
    path: str


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path+query) of an absolute http(s) URL; CallbackRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CallbackRefused("callback_url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("callback_url must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise CallbackRefused("callback_url may not carry credentials")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80), path


def resolve(url: str, allow: Allowance) -> Target:
    """The address to deliver `url` to: every address its host resolves to must be allowed (one
    private answer among public ones refuses it: which one a client picks is not ours to know)."""
    scheme, host, port, path = split_url(url)
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise CallbackRefused(f"the callback host {host} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise CallbackRefused(f"the callback host {host} does not resolve")
    for address in addresses:
        if not is_public(address) and not allow.allows(host, address):
            raise CallbackRefused(f"the callback host {host} is not a public address")
    return Target(scheme, host, port, str(addresses[0]), path)


class _Deadline:
    """Mixin: every blocking socket call waits at most until `deadline` (monotonic seconds)."""

    deadline: float = 0.0

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("webhook time budget spent")
        self.settimeout(remaining)  # type: ignore[attr-defined]

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().recv_into(*args, **kwargs)  # type: ignore[misc]

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._arm()
        return super().recv(*args, **kwargs)  # type: ignore[misc]

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._arm()
        return super().sendall(*args, **kwargs)  # type: ignore[misc]

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().send(*args, **kwargs)  # type: ignore[misc]


class _DeadlineSocket(_Deadline, socket.socket):
    pass


class _DeadlineSSLSocket(_Deadline, ssl.SSLSocket):
    pass


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTP(S) connection to a fixed address: the Host header and the TLS certificate check
    use the URL's host name, the TCP connection goes to `target.address`."""

    def __init__(self, target: Target, deadline: float) -> None:
        context = ssl.create_default_context()
        context.sslsocket_class = _DeadlineSSLSocket
        super().__init__(target.host, target.port, context=context)
        self.target, self.deadline, self.tls = target, deadline, context

    def connect(self) -> None:
        address = ipaddress.ip_address(self.target.address)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = _DeadlineSocket(family, socket.SOCK_STREAM)
        sock.deadline = self.deadline
        try:
            sock._arm()
            sock.connect((self.target.address, self.target.port))
            if self.target.scheme == "https":
                tls = self.tls.wrap_socket(sock, server_hostname=self.target.host)
                tls.deadline = self.deadline  # type: ignore[attr-defined]
                self.sock = tls
            else:
                self.sock = sock
        except BaseException:
            sock.close()
            raise


def post(
    url: str, body: bytes, headers: dict[str, str], allow: Allowance, budget_s: float
) -> tuple[int | None, str | None]:
    """POST once within `budget_s` seconds: (status, error for the tenant). The response body is
    not read; a redirect is a failure (never followed); errors say what kind of thing went wrong
    without echoing the network's own messages."""
    deadline = time.monotonic() + budget_s
    try:
        target = resolve(url, allow)
    except CallbackRefused as exc:
        return None, f"refused: {exc}"
    conn = _PinnedConnection(target, deadline)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        status = conn.getresponse().status
    except TimeoutError:
        return None, "timed out"
    except ssl.SSLError:
        return None, "TLS handshake or certificate check failed"
    except (OSError, http.client.HTTPException):
        return None, "connection failed"
    finally:
        conn.close()
    if 300 <= status < 400:
        return status, f"HTTP {status}: redirects are not followed"
    if not 200 <= status < 300:
        return status, f"HTTP {status}"
    return status, None
