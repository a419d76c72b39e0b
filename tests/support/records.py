"""Reading records back in tests: the job row and its ledger reasons, shared by the test environments."""

from __future__ import annotations

import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import CreditLedger, Job


async def load_job(db: Database, job_id: str) -> Job:
    async with db.session() as session:
        job = await session.get(Job, job_id)
    assert job is not None, f"job {job_id} not found"
    return job


async def ledger_reasons(db: Database, job_id: str) -> list[str]:
    """The job's ledger rows in order, e.g. ["reserve", "settle"]."""
    async with db.session() as session:
        rows = await session.execute(
            sa.select(CreditLedger.reason).where(CreditLedger.job_id == job_id).order_by(CreditLedger.id)
        )
        return list(rows.scalars())
