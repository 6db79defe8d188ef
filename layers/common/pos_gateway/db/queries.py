"""Named SQL: each bounded context keeps its statements in a .sql file of named blocks.

A block starts with ``-- name: <identifier>`` and an optional one-line ``-- description``;
everything up to the next ``-- name:`` is the statement. Files are read once at import.
"""

import re
from dataclasses import dataclass
from pathlib import Path

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str


class Queries:
    """The named statements of one .sql file, as attributes and by name."""

    def __init__(self, path: Path) -> None:
        self._by_name = _parse(path.read_text(encoding="utf-8"), path)

    def __getattr__(self, name: str) -> Query:
        try:
            return self._by_name[name]
        except KeyError:
            raise AttributeError(f"no query named {name!r}") from None

    def __getitem__(self, name: str) -> Query:
        return self._by_name[name]

    def names(self) -> list[str]:
        return sorted(self._by_name)


def _parse(text: str, path: Path) -> dict[str, Query]:
    matches = list(_NAME_LINE.finditer(text))
    if not matches:
        raise ValueError(f"{path}: no '-- name:' blocks")
    queries: dict[str, Query] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body_lines = [
            line for line in text[match.end() : end].splitlines() if not line.lstrip().startswith("--")
        ]
        sql = "\n".join(body_lines).strip().rstrip(";").strip()
        name = match.group("name")
        if not sql:
            raise ValueError(f"{path}: query {name!r} is empty")
        if name in queries:
            raise ValueError(f"{path}: query {name!r} is defined twice")
        queries[name] = Query(name, sql)
    return queries


def load(module_file: str, filename: str = "queries.sql") -> Queries:
    """Load the .sql file that sits beside a module (call with ``__file__``)."""
    return Queries(Path(module_file).with_name(filename))
