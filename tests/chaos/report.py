"""What the fault and abuse suites saw, printed at the end of the run (see `pytest_terminal_summary`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ScenarioResult:
    name: str
    submitted: int
    completed: int
    failed: int
    violations: list[str]
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        status = "OK" if not self.violations else f"{len(self.violations)} VIOLATIONS"
        notes = " ".join(f"{k}={v}" for k, v in self.notes.items())
        return (
            f"{self.name:<34} submitted={self.submitted:<4} completed={self.completed:<4} "
            f"failed={self.failed:<4} audit={status} {notes}"
        )


SCENARIOS: list[ScenarioResult] = []
REFUSED: Counter[str] = Counter()  # abuse attempts refused, by kind
ACCEPTED: Counter[str] = Counter()  # abuse attempts that got through (must stay empty)


def refused(kind: str, ok: bool) -> None:
    (REFUSED if ok else ACCEPTED)[kind] += 1
