"""Scenario errors that name the file, the line, the field path and what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: where it is and what was expected."""

    field: str
    message: str
    line: int | None = None


class ScenarioError(Exception):
    """A scenario that cannot run; `str()` is one paragraph per problem, ready for a terminal."""

    def __init__(self, file: Path | str, problems: list[Problem]):
        self.file = Path(file)
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        paragraphs = []
        for p in self.problems:
            where = f"{self.file}"
            if p.line is not None:
                where += f", line {p.line}"
            if p.field:
                where += f", field {p.field}"
            paragraphs.append(f"{where}: {p.message}")
        return "\n".join(paragraphs)


def field_path(loc: tuple) -> str:
    """Render a location tuple as `generators[0].bus`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
