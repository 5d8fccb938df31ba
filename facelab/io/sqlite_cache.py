"""Versioned sqlite caches that rebuild themselves: the faceset index and the studio's face index share this."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def open_versioned(
    path: Path, version: int, schema: str, what: str, read: Callable[[sqlite3.Connection], T] | None = None
) -> tuple[sqlite3.Connection, T | None] | None:
    """A connection to the cache at ``path`` whose ``PRAGMA user_version`` is ``version`` (else its ``faces``
    table is dropped and made again by ``schema``), with ``read(con)``'s result; None where no cache can be used.
    "not a database" / "malformed" (DatabaseError, also from ``read``) is a broken cache, ours to throw away and
    rebuild once; OperationalError (read-only folder, lock held too long) means: work without the cache this time."""
    for attempt in range(2):
        con = None
        try:
            con = sqlite3.connect(path, timeout=10)
            if con.execute("PRAGMA user_version").fetchone()[0] != version:
                with con:
                    con.execute("DROP TABLE IF EXISTS faces")
                    con.execute(schema)
                    con.execute(f"PRAGMA user_version = {version}")
            return con, read(con) if read is not None else None
        except sqlite3.Error as e:
            if con is not None:
                con.close()
            if attempt == 0 and path.is_file() and not isinstance(e, sqlite3.OperationalError):
                log.info("%s: %s is corrupt (%s), rebuilding it", path, what, e)
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            log.debug("%s: %s not used (%s)", path, what, e)
            return None
    return None
