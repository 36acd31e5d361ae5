"""A budget of failed enrollment attempts, per client address and for all addresses together.

Enrollment codes are short enough to type, so guessing them must be slow. Every failed
attempt (an unknown, used, superseded or expired code) counts against two budgets for the
current window: the caller's address and the whole service. Once either is spent, an
attempt is refused until the window ends, *before* its code is looked at: a guesser learns
nothing, not even when a guess would have been right. Successful enrollments do not count.

Counters live in a `limits` storage (``memory://`` in the process by default; ``redis://``
and the other storages `limits` knows for several API processes, so the budgets hold across
them). Windows are fixed and numbered by the injected clock (window ``n`` covers
``[n*w, (n+1)*w)`` seconds since the epoch), so a simulated clock moves them in tests; the
storage's own expiry only clears old counters away. A fixed window lets at most twice the
budget through around a window boundary. Attempts in flight together are checked before
any of them counts, so the budget can be overshot by the number of concurrent attempts,
which is small next to the number of possible codes.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from limits.storage import Storage, storage_from_string


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is refused and how many seconds until it may be tried again."""

    retry_after: int
    budget: str  # "address" or "global"


class EnrollmentThrottle:
    def __init__(
        self,
        storage: Storage,
        *,
        per_address: int,
        global_limit: int,
        window_seconds: int,
        namespace: str = "kairos",
    ) -> None:
        self.storage = storage
        self.per_address = per_address
        self.global_limit = global_limit
        self.window_seconds = window_seconds
        self.namespace = namespace

    @classmethod
    def from_url(
        cls, url: str, *, per_address: int, global_limit: int, window_seconds: int
    ) -> "EnrollmentThrottle":
        # wrap_exceptions: an unreachable storage raises limits.errors.StorageError.
        storage = storage_from_string(url, wrap_exceptions=True)
        if not isinstance(storage, Storage):  # pragma: no cover - an async+ URL
            raise ValueError(f"{url!r} is an asynchronous storage; use the plain scheme")
        return cls(
            storage,
            per_address=per_address,
            global_limit=global_limit,
            window_seconds=window_seconds,
        )

    def _keys(self, address: str, now: datetime) -> tuple[str, str, int]:
        window = math.floor(now.timestamp() / self.window_seconds)
        prefix = f"{self.namespace}:enroll-failures:{window}"
        ends = (window + 1) * self.window_seconds
        retry_after = max(1, math.ceil(ends - now.timestamp()))
        return f"{prefix}:address:{address}", f"{prefix}:global", retry_after

    def refusal(self, address: str, now: datetime) -> Refusal | None:
        """Whether an attempt from ``address`` is refused now (checked before the code)."""
        address_key, global_key, retry_after = self._keys(address, now)
        if self.storage.get(address_key) >= self.per_address:
            return Refusal(retry_after, "address")
        if self.storage.get(global_key) >= self.global_limit:
            return Refusal(retry_after, "global")
        return None

    def record_failure(self, address: str, now: datetime) -> None:
        address_key, global_key, _ = self._keys(address, now)
        # Kept a little longer than a window of the real clock; the window's number (from
        # the injected clock) is what makes an old counter stop counting.
        expiry = self.window_seconds + 60
        self.storage.incr(address_key, expiry)
        self.storage.incr(global_key, expiry)
