"""The API key pool: least-recently-used usable key, shared by every worker through the database.

Seed 000 picks "the least-recently-used active key, the env key as fallback". Here env keys
(`PHOTOBOT_KIE_API_KEYS`) are synced into `provider_keys` at start (`sync_env_keys`, label "env") so every key
follows the same state machine:

- usable: `active` and not cooling down (`cooldown_until` empty or past);
- 401 → `active = false`, `disabled_reason` set (an operator re-enables it: `photobot keys`);
- 402 / 433 → exhausted: cooled down for `exhausted_s` with `disabled_reason = "exhausted: …"`, and the caller
  retries the same job at once on another key; it comes back by itself (a top-up needs no restart);
- 429 → cooled down for `cooldown_s` (or the provider's Retry-After);
- success → `failure_count = 0` and an "exhausted" reason is cleared.

`acquire` picks and stamps `last_used_at` in one transaction: on PostgreSQL with `FOR UPDATE SKIP LOCKED` so two
workers never take the same row at the same instant (and a plain `FOR UPDATE` when every usable row is locked,
so many pickers on few keys wait a moment instead of seeing "no key"); on SQLite every write transaction is
`BEGIN IMMEDIATE` (see `db.py`), which serialises pickers. When no key is usable it raises
`NoKeyAvailable(retry_at)`: the job waits, it does not fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from photobot.db import Database, execute_dml
from photobot.db.models import ProviderKey, table_of, utcnow
from photobot.expiring import ExpiringMap
from photobot.providers.errors import NoKeyAvailable, ProviderError

log = logging.getLogger(__name__)
_keys = table_of(ProviderKey)


@dataclass(frozen=True, slots=True)
class PoolKey:
    """A key handed out for one call. The secret is hidden from repr and str."""

    id: int
    secret: str = field(repr=False)
    label: str | None = None
    needs_reset: bool = True  # the row has failures or an "exhausted" mark that a success should clear

    @property
    def masked(self) -> str:
        return "…" + self.secret[-4:]

    @property
    def bucket(self) -> str:
        """The rate-limiter bucket of this key (by id: the secret never becomes a Redis key)."""
        return f"key:{self.id}"

    def __str__(self) -> str:
        return f"key #{self.id} ({self.label or 'unlabelled'}, {self.masked})"


KEY_BY_ID_TTL_S = 60.0


class KeyPool:
    def __init__(
        self,
        database: Database,
        provider: str = "kie",
        *,
        cooldown_s: float = 10.0,
        exhausted_s: float = 900.0,
        no_key_retry_s: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.provider = provider
        self.cooldown_s = cooldown_s
        self.exhausted_s = exhausted_s
        self.no_key_retry_s = no_key_retry_s
        self.clock = clock
        self._by_id: ExpiringMap[int, PoolKey] = ExpiringMap(KEY_BY_ID_TTL_S, max_entries=1000)

    async def sync_env_keys(self, secrets: Iterable[str], *, label: str = "env") -> int:
        """Insert the env keys that are not in the table yet (idempotent); return how many were added."""
        rows = [
            {"provider": self.provider, "secret": s, "label": label, "active": True, "failure_count": 0,
             "created_at": self.clock()}
            for s in dict.fromkeys(s.strip() for s in secrets)
            if s
        ]  # fmt: skip
        if not rows:
            return 0
        dialect = postgresql if self.database.is_postgres else sqlite
        stmt = dialect.insert(_keys).values(rows).on_conflict_do_nothing(index_elements=["provider", "secret"])
        async with self.database.session() as session:
            changed = await execute_dml(session, stmt)
        return max(changed, 0)

    async def acquire(self, *, exclude: Collection[int] = ()) -> PoolKey:
        """The least recently used usable key, stamped as used now; NoKeyAvailable when there is none."""
        now = self.clock()
        c = _keys.c
        stmt = (
            sa.select(c.id, c.secret, c.label, c.failure_count, c.disabled_reason)
            .where(c.provider == self.provider, c.active.is_(True))
            .where(sa.or_(c.cooldown_until.is_(None), c.cooldown_until <= now))
            .order_by(c.last_used_at.asc().nulls_first(), c.id)
            .limit(1)
        )
        if exclude:
            stmt = stmt.where(c.id.not_in(list(exclude)))
        async with self.database.session() as session:
            if self.database.is_postgres:
                # Skip rows another worker is stamping right now; when every usable row is locked (more
                # pickers than keys), wait for one instead of reporting "no key".
                row = (await session.execute(stmt.with_for_update(skip_locked=True))).first()
                if row is None:
                    row = (await session.execute(stmt.with_for_update())).first()
            else:
                row = (await session.execute(stmt)).first()
            if row is not None:
                # Stamp with the time the row was locked, not when we started waiting for the lock: an early
                # stamp would make a just-used key look least recently used again.
                stamp = max(self.clock(), now)
                await session.execute(sa.update(_keys).where(c.id == row.id).values(last_used_at=stamp))
                needs_reset = bool(row.failure_count) or (row.disabled_reason or "").startswith("exhausted:")
                return PoolKey(row.id, row.secret, row.label, needs_reset)
            retry_at = await self._next_usable_at(session, now, exclude)
        log.warning("no usable %s API key; jobs wait until %s", self.provider, retry_at.isoformat())
        raise NoKeyAvailable(self.provider, retry_at)

    async def _next_usable_at(self, session: AsyncSession, now: datetime, exclude: Collection[int]) -> datetime:
        c = _keys.c
        stmt = sa.select(sa.func.min(c.cooldown_until)).where(
            c.provider == self.provider, c.active.is_(True), c.cooldown_until > now
        )
        if exclude:
            stmt = stmt.where(c.id.not_in(list(exclude)))
        soonest = (await session.execute(stmt)).scalar()
        if isinstance(soonest, str):  # SQLite aggregate bypasses the column type
            soonest = datetime.fromisoformat(soonest)
        if soonest is not None and soonest.tzinfo is None:
            soonest = soonest.replace(tzinfo=now.tzinfo)
        return soonest or now + timedelta(seconds=self.no_key_retry_s)

    async def report_failure(self, key: PoolKey, error: ProviderError) -> None:
        """Apply what the error says about the key (its `key_effect`); other errors leave the key alone."""
        now = self.clock()
        values: dict[str, object]
        if error.key_effect == "disable":
            values = {"active": False, "disabled_reason": f"{error.code} ({error.provider_code})"}
            log.warning("%s %s disabled: %s", self.provider, key, error.code)
        elif error.key_effect == "exhausted":
            values = {
                "cooldown_until": now + timedelta(seconds=self.exhausted_s),
                "disabled_reason": f"exhausted: {error.code} ({error.provider_code})",
            }
            log.warning("%s %s exhausted (%s), resting %.0fs", self.provider, key, error.code, self.exhausted_s)
        elif error.key_effect == "cooldown":
            rest = max(self.cooldown_s, error.retry_after or 0.0)
            values = {"cooldown_until": now + timedelta(seconds=rest)}
            log.info("%s %s cooling down %.1fs after %s", self.provider, key, rest, error.code)
        else:
            return
        c = _keys.c
        stmt = sa.update(_keys).where(c.id == key.id).values(failure_count=c.failure_count + 1, **values)
        async with self.database.session() as session:
            await session.execute(stmt)

    async def report_success(self, key: PoolKey) -> None:
        """Reset the failure count and an "exhausted" mark (no write when the key had neither)."""
        if not key.needs_reset:
            return
        c = _keys.c
        stmt = (
            sa.update(_keys)
            .where(c.id == key.id, sa.or_(c.failure_count != 0, c.disabled_reason.like("exhausted:%")))
            .values(
                failure_count=0,
                disabled_reason=sa.case((c.disabled_reason.like("exhausted:%"), None), else_=c.disabled_reason),
            )
        )
        async with self.database.session() as session:
            await session.execute(stmt)

    async def get(self, key_id: int) -> PoolKey | None:
        """A key by id whatever its state (to poll a task with the key that created it).

        Remembered for a minute: a key row's secret never changes (a new secret is a new row), and every result
        of a kie task is confirmed with the key that created it, so without this each finish step read the key
        in a transaction of its own while its download ran."""
        known = self._by_id.get(key_id)
        if known is not None:
            return known
        c = _keys.c
        async with self.database.session() as session:
            row = (await session.execute(sa.select(c.id, c.secret, c.label).where(c.id == key_id))).first()
        if row is None:
            return None
        key = PoolKey(row.id, row.secret, row.label)
        self._by_id.put(key_id, key)
        return key

    async def count(self, *, excluding: Collection[str] = ()) -> int:
        """How many keys this provider has in the pool, in any state (`excluding` these secrets): an operator who
        added a key, even one the provider later refused, has configured this provider."""
        c = _keys.c
        stmt = sa.select(sa.func.count()).select_from(_keys).where(c.provider == self.provider)
        if excluding:
            stmt = stmt.where(c.secret.not_in(list(excluding)))
        async with self.database.session() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def set_active(self, secret: str, active: bool, reason: str | None = None) -> None:
        """Switch the key with this secret on or off (the simulator's own key, by what is live at start-up)."""
        c = _keys.c
        stmt = (
            sa.update(_keys)
            .where(c.provider == self.provider, c.secret == secret, c.active.is_not(active))
            .values(active=active, disabled_reason=reason, cooldown_until=None)
        )
        async with self.database.session() as session:
            await session.execute(stmt)

    async def add(self, secret: str, label: str | None = None) -> int:
        """Add a key (CLI `keys add`); returns its id."""
        async with self.database.session() as session:
            result = await session.execute(
                sa.insert(_keys).values(
                    provider=self.provider, secret=secret, label=label, active=True, failure_count=0,
                    created_at=self.clock(),
                ).returning(_keys.c.id)
            )  # fmt: skip
            return int(result.scalar_one())
