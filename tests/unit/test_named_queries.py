"""Named SQL files: ``-- name:`` blocks, comments stripped, mistakes refused at import."""

from pathlib import Path

import pytest

from pos_gateway.db import Queries
from pos_gateway.db.queries import load
from tests.helpers import PACKAGE_ROOT

SAMPLE = """\
-- A file header comment that belongs to no block.

-- name: first_query
-- The first statement, described on one line.
SELECT id, name
  FROM t   -- an inline comment stays
 WHERE id = %(id)s;

-- name: second_query
-- description: the second one
  -- an indented comment line
INSERT INTO t (name) VALUES (%(name)s)
RETURNING id;
"""


def write(tmp_path: Path, text: str, name: str = "queries.sql") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parses_names_and_strips_description_comments(tmp_path):
    queries = Queries(write(tmp_path, SAMPLE))
    assert queries.names() == ["first_query", "second_query"]
    assert queries.first_query.name == "first_query"
    assert (
        queries.first_query.sql
        == "SELECT id, name\n  FROM t   -- an inline comment stays\n WHERE id = %(id)s"
    )
    assert queries["second_query"].sql == "INSERT INTO t (name) VALUES (%(name)s)\nRETURNING id"


def test_unknown_names_raise_the_usual_errors(tmp_path):
    queries = Queries(write(tmp_path, SAMPLE))
    with pytest.raises(AttributeError, match="no_such_query"):
        _ = queries.no_such_query
    with pytest.raises(KeyError):
        _ = queries["no_such_query"]


def test_rejects_a_duplicate_name(tmp_path):
    text = "-- name: same\nSELECT 1;\n\n-- name: same\nSELECT 2;\n"
    with pytest.raises(ValueError, match="'same' is defined twice"):
        Queries(write(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        "-- name: empty\n-- name: full\nSELECT 1;\n",
        "-- name: full\nSELECT 1;\n-- name: empty\n-- only a description\n",
        "-- name: empty\n   \n;\n",
    ],
    ids=["empty-then-full", "description-only", "only-semicolon"],
)
def test_rejects_an_empty_block(tmp_path, text):
    with pytest.raises(ValueError, match="'empty' is empty"):
        Queries(write(tmp_path, text))


def test_rejects_a_file_without_blocks(tmp_path):
    with pytest.raises(ValueError, match="no '-- name:' blocks"):
        Queries(write(tmp_path, "SELECT 1;\n"))


def test_load_reads_the_file_beside_a_module(tmp_path):
    write(tmp_path, SAMPLE, "other.sql")
    module_file = str(tmp_path / "repository.py")
    assert load(module_file, "other.sql").names() == ["first_query", "second_query"]


SQL_FILES = sorted(PACKAGE_ROOT.rglob("*.sql"))


def test_the_package_has_sql_files():
    assert {path.parent.name for path in SQL_FILES} >= {"ingest", "loyalty"}


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda path: str(path.relative_to(PACKAGE_ROOT)))
def test_every_package_sql_file_loads(path):
    queries = Queries(path)
    assert queries.names()
    for name in queries.names():
        statement = queries[name].sql
        assert statement
        assert "-- name:" not in statement
        assert not statement.endswith(";")
        assert "{" not in statement  # parameters are %(name)s, never str.format fields
