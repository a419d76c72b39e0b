"""The database: engine and sessions, the tables, migrations, insert-or-ignore and the invariant audit."""

from photobot.db.engine import Database, on_commit

__all__ = ["Database", "on_commit"]
