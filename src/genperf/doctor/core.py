"""The doctor's record of one check, the verdicts, and how they make an exit code."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from genperf.records import JsonFields


class Verdict(enum.StrEnum):
    """Worst last: ``not_available`` is an optional part absent (a GPU), never a problem."""

    OK = "ok"
    NOT_AVAILABLE = "not_available"
    WARNING = "warning"
    FAILURE = "failure"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Verdict.OK: 0, Verdict.NOT_AVAILABLE: 0, Verdict.WARNING: 1, Verdict.FAILURE: 2}

# genperf doctor's exit codes: the rank of the worst verdict.
EXIT_OK, EXIT_WARNINGS, EXIT_FAILURES = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Check(JsonFields):
    """One check: what was looked at, what was found, and what to do about it.

    Attributes:
        name: a stable id (``nvml``, ``database_schema``, ``model:tiny-wan-t2v``...).
        title: what it checks, for people.
        verdict: ok, not_available, warning or failure.
        evidence: what was found, with the numbers.
        fix: what to do (None when there is nothing to do).
        data: the numbers behind the evidence, for scripts.
    """

    name: str
    title: str
    verdict: Verdict
    evidence: str
    fix: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """Every check of one run, in the order they ran."""

    checks: tuple[Check, ...]
    generated_at: datetime
    node: str
    where: str  # "local" (this command's process) or "server" (a running genperf serve)

    @property
    def verdict(self) -> Verdict:
        return max((c.verdict for c in self.checks), key=lambda v: v.rank, default=Verdict.OK)

    @property
    def exit_code(self) -> int:
        """0: all ok; 1: warnings; 2: failures."""
        return self.verdict.rank

    def with_checks(self, *more: Check) -> DoctorReport:
        """The report with ``more`` checks after its own (what the CLI adds to a server's)."""
        return DoctorReport((*self.checks, *more), self.generated_at, self.node, self.where)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DoctorReport:
        """A report back from its JSON (a server's answer)."""
        checks = tuple(
            Check(
                str(c["name"]),
                str(c["title"]),
                Verdict(c["verdict"]),
                str(c["evidence"]),
                c.get("fix"),
                dict(c.get("data") or {}),
            )
            for c in data.get("checks") or ()
        )
        return cls(
            checks,
            datetime.fromisoformat(str(data["generated_at"])),
            str(data.get("node", "?")),
            str(data.get("where", "server")),
        )

    def counts(self) -> dict[str, int]:
        return {v.value: sum(c.verdict is v for c in self.checks) for v in Verdict}

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "generated_at": self.generated_at.isoformat(),
            "node": self.node,
            "where": self.where,
            "checks": [c.to_dict() for c in self.checks],
        }


CheckFn = Callable[[], Iterable[Check]]


def guarded(name: str, title: str, fn: CheckFn) -> list[Check]:
    """Run a group of checks; a check that raises becomes a failure that says so, never a crash
    of the doctor (it runs on broken machines by design)."""
    try:
        return list(fn())
    except Exception as exc:  # the doctor reports; it must not die on what it diagnoses
        return [
            Check(
                name,
                title,
                Verdict.FAILURE,
                f"the check itself failed: {type(exc).__name__}: {exc}",
                "Run genperf doctor --debug and report the traceback.",
            )
        ]
