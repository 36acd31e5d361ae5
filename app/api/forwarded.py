"""Which peers' X-Forwarded-For is believed, and a warning when a proxy is not among them.

uvicorn's ProxyHeadersMiddleware applies ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from
the peers in KAIROS_FORWARDED_ALLOW_IPS (validated in app/core/config.py: addresses and
networks only, never ``*``). From any other peer the headers are ignored, which is right
for a client that makes them up, and wrong when the peer is a proxy that was left out (a
proxy in another container, say): then every client has the proxy's address, shares one
enrollment budget, and a few mistyped codes shut enrollment for everyone behind it.
Kairos cannot tell the two apart, so the first such request in a process is logged as a
warning that names the peer and the setting.
"""

import ipaddress
import logging
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.config import ProxyNetwork

logger = logging.getLogger(__name__)


class UntrustedForwardedForWarning:
    """Outermost middleware: sees the peer before ProxyHeadersMiddleware replaces it."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[ProxyNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)
        self.warned = False

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.warned and scope["type"] == "http":
            client = scope.get("client")
            if (
                client
                and any(name == b"x-forwarded-for" for name, _ in scope["headers"])
                and not self._is_trusted(client[0])
            ):
                self.warned = True
                logger.warning(
                    "X-Forwarded-For arrived from %s, which KAIROS_FORWARDED_ALLOW_IPS does not "
                    "trust, so it is ignored. If %s is a proxy in front of Kairos, add its "
                    "address or network to KAIROS_FORWARDED_ALLOW_IPS: until then every client "
                    "behind it has its address and shares one enrollment throttle budget. "
                    "(Logged once per process.)",
                    client[0],
                    client[0],
                )
        await self.app(scope, receive, send)
