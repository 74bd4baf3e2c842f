"""Who may call what: bearer tokens with roles, or loopback clients when none are configured.

Roles are ordered: ``admin`` implies ``write`` implies ``read``.

* ``read``: every GET endpoint (status, analysis, metrics, tasks, Prometheus ``/metrics``).
* ``write``: task ingestion (start, update, complete).
* ``admin``: export of the raw task data.

With tokens configured, every protected endpoint needs ``Authorization: Bearer <token>``:
missing or unknown token 401, a token without the role 403, whatever the client's address.

With no tokens configured, the API serves loopback clients only (``genperf serve`` refuses to
listen anywhere else) and answers 403 to any other peer, for every role. Browsers are kept out
by the Host and Origin checks of :mod:`genperf.api.guards`, so a web page can neither read
the API through DNS rebinding nor write to it by cross-site requests.

Only SHA-256 digests of the tokens are kept in memory, and a presented token is compared with
each of them with :func:`hmac.compare_digest`, so timing reveals nothing about them.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from genperf.api.deps import context_of
from genperf.api.errors import ApiError
from genperf.api.settings import TOKENS_ENV
from genperf.errors import ConfigError

logger = logging.getLogger("genperf.api")

_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
MIN_TOKEN_LENGTH = 16  # shorter tokens work, with a warning


class Role(enum.IntEnum):
    """What a token may do; a higher role includes the lower ones."""

    READ = 1
    WRITE = 2
    ADMIN = 3


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenTable:
    """The configured tokens, as (role, SHA-256 digest) pairs; never the tokens themselves."""

    def __init__(self, entries: Iterable[tuple[Role, bytes]] = ()) -> None:
        self._entries = tuple(entries)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> TokenTable:
        """From ``role:token`` or ``role:sha256:<hex>`` entries.

        Raises:
            ConfigError: an entry without a known role or with an empty token. The message
                names the entry by position, never by its token.
        """
        entries: list[tuple[Role, bytes]] = []
        for n, spec in enumerate(specs, start=1):
            role_name, sep, secret = spec.partition(":")
            try:
                role = Role[role_name.strip().upper()]
            except KeyError:
                raise ConfigError(
                    f"entry {n}: expected role:token with a role of read, write or admin",
                    key="api_tokens",
                    source=TOKENS_ENV,
                ) from None
            if not sep or not secret:
                raise ConfigError(f"entry {n}: the token is empty", key="api_tokens")
            kind, _, hexdigest = secret.partition(":")
            if kind.strip().lower() == "sha256":
                # A digest that is not 64 hex digits is a typo, not a token that happens to
                # start with "sha256:": taken literally it would silently lock everyone out.
                if not _HEX_DIGEST.match(hexdigest.strip()):
                    raise ConfigError(
                        f"entry {n}: a sha256 token digest must be 64 hexadecimal digits",
                        key="api_tokens",
                        source=TOKENS_ENV,
                    )
                entries.append((role, bytes.fromhex(hexdigest.strip())))
                continue
            if len(secret) < MIN_TOKEN_LENGTH:
                logger.warning(
                    "API token %d (%s) is shorter than %d characters: use a long random token",
                    n,
                    role.name.lower(),
                    MIN_TOKEN_LENGTH,
                )
            entries.append((role, digest(secret)))
        return cls(entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __repr__(self) -> str:
        return f"TokenTable({len(self._entries)} tokens)"

    def role_of(self, token: str) -> Role | None:
        """The highest role of this token, or None. Compares with every entry, always."""
        presented = digest(token)
        found: Role | None = None
        for role, known in self._entries:
            if hmac.compare_digest(presented, known) and (found is None or role > found):
                found = role
        return found


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for names and None."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


_bearer = HTTPBearer(
    auto_error=False,
    description="An API token: `Authorization: Bearer <token>` (roles read, write, admin).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require(role: Role) -> Callable[..., Awaitable[Role]]:
    """A dependency that lets the request through with at least ``role``, or raises
    401 / 403 in the API's error shape."""

    async def check(request: Request, credentials: Credentials) -> Role:
        tokens = context_of(request).tokens
        if not tokens:
            client = request.client.host if request.client else None
            if is_loopback(client):
                return Role.ADMIN
            raise ApiError(
                403,
                "forbidden",
                "no API tokens are configured, so only loopback clients are served; "
                f"set {TOKENS_ENV}='read:<token>,write:<token>,admin:<token>'",
            )
        if credentials is None:
            raise ApiError(
                401,
                "unauthorized",
                "an API token is required: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        granted = tokens.role_of(credentials.credentials)
        if granted is None:
            raise ApiError(
                401,
                "unauthorized",
                "the API token is not valid",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if granted < role:
            raise ApiError(
                403, "forbidden", f"this token's role cannot do this (needs {role.name.lower()})"
            )
        return granted

    check.__name__ = f"require_{role.name.lower()}"
    return check


RequireRead = Depends(require(Role.READ))
RequireWrite = Depends(require(Role.WRITE))
RequireAdmin = Depends(require(Role.ADMIN))
