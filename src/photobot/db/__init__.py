"""The database: engine and sessions, the tables, migrations, insert-or-ignore and the invariant audit."""

from photobot.db.engine import Database, execute_dml, on_commit

__all__ = ["Database", "execute_dml", "on_commit"]
