"""facelab/io/sqlite_cache.py: versioned caches that rebuild themselves."""

from __future__ import annotations

from facelab.io.sqlite_cache import open_versioned

SCHEMA = "CREATE TABLE faces (name TEXT PRIMARY KEY)"


def _names(con):
    return [n for (n,) in con.execute("SELECT name FROM faces")]


def test_made_then_reused_then_rebuilt_on_a_new_version(tmp_path):
    path = tmp_path / "c.sqlite"
    con, rows = open_versioned(path, 1, SCHEMA, "test cache", _names)
    assert rows == []
    with con:
        con.execute("INSERT INTO faces VALUES ('a')")
    con.close()
    con, rows = open_versioned(path, 1, SCHEMA, "test cache", _names)
    assert rows == ["a"]
    con.close()
    con, rows = open_versioned(path, 2, SCHEMA, "test cache", _names)  # layout changed: table made again
    assert rows == [] and con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()


def test_a_corrupt_file_is_thrown_away_and_rebuilt(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    opened = open_versioned(path, 1, SCHEMA, "test cache", _names)
    assert opened is not None and opened[1] == []
    opened[0].close()


def test_an_unusable_place_gives_none(tmp_path):
    assert open_versioned(tmp_path / "missing" / "c.sqlite", 1, SCHEMA, "test cache") is None
