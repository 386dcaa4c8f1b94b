"""The identity provider's signing keys (JWKS): fetched off the event loop, refetched sparingly.

PyJWKClient does blocking HTTP, so every fetch runs in a worker thread. Only one fetch is ever in
flight; concurrent callers share it. A token with an unknown `kid` may trigger a refetch (that is how
a key rotation is picked up), but at most once per `refetch_interval`, so a flood of tokens with
made-up key ids costs the identity provider one request a minute, not one per token. Keys older than
`max_key_age` are refreshed in the background while the current ones keep serving, so a key the
provider withdrew stops being accepted within that age.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from jwt import PyJWKClient
from jwt.api_jwk import PyJWK
from jwt.exceptions import PyJWKClientError, PyJWTError

log = logging.getLogger(__name__)

# Keycloak signs with RS256 by default and can be switched to ES256; nothing else is trusted.
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})


class JwksKeys:
    def __init__(self, url: str, *, refetch_interval: float = 60.0, retry_interval: float = 5.0,
                 max_key_age: float = 300.0, fetch_timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            # cache_jwk_set=False: this class owns caching and rate limiting, in one place.
            self._client = PyJWKClient(url, cache_jwk_set=False, timeout=fetch_timeout)
        except PyJWKClientError as error:
            raise ValueError(f"AUTH_JWKS_URL is not usable: {error}") from error
        self._refetch_interval = refetch_interval
        self._retry_interval = retry_interval
        self._max_key_age = max_key_age
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._refetched_at: float | None = None
        self._fetch: asyncio.Task[None] | None = None

    def holds(self, kid: str) -> bool:
        """Whether the key set as last fetched still has this key (no fetch)."""
        return kid in self._keys

    @property
    def loaded(self) -> bool:
        """True once a fetch succeeded (readiness can report it)."""
        return bool(self._keys)

    async def load(self) -> None:
        """Fetch the key set now (startup); a failure is logged and retried on demand."""
        await asyncio.shield(self._fetch or self._start_fetch())

    async def close(self) -> None:
        if self._fetch is not None:
            self._fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetch

    async def key(self, kid: str) -> PyJWK | None:
        """The signing key with this id, refetching the set (rate-limited) when it is unknown."""
        key = self._keys.get(kid)
        if key is not None:
            self._refresh_if_stale()
            return key
        # Two rounds: a fetch already in flight may have started just before the key was published.
        for _ in range(2):
            task = self._fetch
            if task is None:
                if not self._may_refetch():
                    return None
                self._refetched_at = self._clock()
                task = self._start_fetch()
            await asyncio.shield(task)
            key = self._keys.get(kid)
            if key is not None:
                return key
        return None

    def _may_refetch(self) -> bool:
        if self._refetched_at is None:
            return True
        # Without any key every token fails, so retry sooner than the rotation rate limit.
        interval = self._refetch_interval if self._keys else self._retry_interval
        return self._clock() - self._refetched_at >= interval

    def _refresh_if_stale(self) -> None:
        now = self._clock()
        if self._fetch is not None or self._fetched_at is None or now - self._fetched_at < self._max_key_age:
            return
        if self._attempted_at is not None and now - self._attempted_at < self._retry_interval:
            return
        self._start_fetch().add_done_callback(_log_unexpected)

    def _start_fetch(self) -> asyncio.Task[None]:
        self._fetch = asyncio.create_task(self._fetch_keys(), name="jwks-fetch")
        return self._fetch

    async def _fetch_keys(self) -> None:
        self._attempted_at = self._clock()
        try:
            keys = await asyncio.to_thread(self._download_keys)
        except (PyJWTError, OSError, ValueError) as error:
            # Keep serving the keys we have: an identity-provider blip must not log everyone out.
            log.warning("JWKS fetch failed", extra={"error": str(error), "keys_kept": len(self._keys)})
        else:
            self._keys = keys
            self._fetched_at = self._clock()
            log.info("JWKS loaded", extra={"kids": sorted(keys)})
        finally:
            self._fetch = None

    def _download_keys(self) -> dict[str, PyJWK]:
        """Runs in a worker thread: blocking HTTP."""
        keys = self._client.get_signing_keys(refresh=True)
        return {key.key_id: key for key in keys
                if key.key_id is not None and key.algorithm_name in JWKS_ALGORITHMS}


def _log_unexpected(task: asyncio.Task[None]) -> None:
    # A background refresh has no awaiting caller; without this a bug would vanish silently.
    if not task.cancelled() and task.exception() is not None:
        log.error("JWKS background refresh crashed", exc_info=task.exception())
