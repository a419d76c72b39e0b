from photobot.db import Database


async def test_database_fixture_runs_on_both_backends(database: Database) -> None:
    await database.ping()
