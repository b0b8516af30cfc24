"""The load report: what was read, kept and dropped, by reason, with example rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from hiergen.errors import DataError

#: Drop reasons and what they count.
REASONS: dict[str, str] = {
    "missing code": "rows",
    "malformed code": "rows",
    "ICD-10 code": "rows",
    "code not in ICD-9-CM": "rows",
    "duplicate code in a visit": "rows",
    "missing sex": "rows",
    "unknown sex value": "rows",
    "missing age": "rows",
    "non-numeric age": "rows",
    "impossible age": "rows",
    "no matching visit": "rows",
    "no matching patient": "rows",
    "empty visit": "visits",
}


@dataclass
class LoadReport:
    """Counts of one load. ``dropped`` maps a reason to a count (rows, or visits for
    ``empty visit``); ``examples`` holds a few source rows per reason; ``notes`` records
    adjustments that drop nothing (e.g. MIMIC ages over 89 set to 90)."""

    source: str
    format: str
    rows_read: int = 0
    rows_kept: int = 0
    patients: int = 0
    visits: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    max_examples: int = 3

    def drop(self, reason: str, count: int, examples: list[str] | tuple[str, ...] = ()) -> None:
        """Record ``count`` drops for ``reason`` (no-op for zero)."""
        if count <= 0:
            return
        self.dropped[reason] = self.dropped.get(reason, 0) + int(count)
        ex = self.examples.setdefault(reason, [])
        ex.extend(list(examples)[: max(0, self.max_examples - len(ex))])

    def ignore(self, what: str, count: int) -> None:
        """Record rows that are not diagnoses (not drops: strict mode accepts them)."""
        if count > 0:
            self.ignored[what] = self.ignored.get(what, 0) + int(count)

    @property
    def rows_dropped(self) -> int:
        return sum(n for r, n in self.dropped.items() if REASONS.get(r, "rows") == "rows")

    def summary(self) -> str:
        """A few readable lines: counts, then one line per drop reason with an example."""
        lines = [
            f"{self.format} {self.source}: read {self.rows_read:,} rows, kept {self.rows_kept:,} "
            f"({self.patients:,} patients, {self.visits:,} visits)"
        ]
        if not self.dropped:
            lines.append("  dropped nothing")
        for reason, n in sorted(self.dropped.items(), key=lambda kv: -kv[1]):
            unit = REASONS.get(reason, "rows")
            ex = self.examples.get(reason) or []
            tail = f"; e.g. {ex[0]}" if ex else ""
            lines.append(f"  dropped {n:,} {unit}: {reason}{tail}")
        for what, n in self.ignored.items():
            lines.append(f"  ignored {n:,} rows: {what}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "patients": self.patients,
            "visits": self.visits,
            "dropped": dict(self.dropped),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "ignored": dict(self.ignored),
            "notes": list(self.notes),
        }

    def check_strict(self) -> None:
        """Raise :class:`DataError` naming the first reason when anything was dropped."""
        if not self.dropped:
            return
        reason, n = next(iter(sorted(self.dropped.items(), key=lambda kv: -kv[1])))
        ex = self.examples.get(reason) or ["(no example)"]
        others = len(self.dropped) - 1
        more = f" (and {others} other reason(s))" if others else ""
        raise DataError(
            f"{self.source}: strict mode: {n:,} {REASONS.get(reason, 'rows')} dropped for "
            f"{reason}{more}; e.g. {ex[0]}",
            hint="fix the data or load without --strict to drop and report such rows",
        )
