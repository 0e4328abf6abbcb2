"""A peer for the MCP search benchmark: an MCP server written with the official Python
SDK's FastMCP, over SQLite FTS5, serving the same records as Strongbox with the same kind of
query (words, best match first, a page of hits with a snippet). Run by tests/bench/search.rs.

    python fastmcp_search.py RECORDS.jsonl DATABASE PORT
"""

import json
import re
import sqlite3
import sys
import threading

from mcp.server.fastmcp import FastMCP
from pydantic import BaseModel

records_path, database, port = sys.argv[1], sys.argv[2], int(sys.argv[3])


def load():
    conn = sqlite3.connect(database)
    conn.executescript(
        """
        PRAGMA journal_mode = WAL;
        CREATE TABLE records (collection TEXT, id TEXT, data TEXT, PRIMARY KEY (collection, id));
        CREATE VIRTUAL TABLE records_fts USING fts5(
            collection UNINDEXED, id UNINDEXED, body,
            tokenize = 'unicode61 remove_diacritics 2');
        """
    )
    with open(records_path, encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            data = row["data"]
            body = " ".join(str(v) for v in data.values())
            cursor = conn.execute(
                "INSERT INTO records (collection, id, data) VALUES (?, ?, ?)",
                (row["collection"], row["id"], json.dumps(data)),
            )
            conn.execute(
                "INSERT INTO records_fts (rowid, collection, id, body) VALUES (?, ?, ?, ?)",
                (cursor.lastrowid, row["collection"], row["id"], body),
            )
    conn.commit()
    conn.close()


load()
local = threading.local()


def connection():
    if not hasattr(local, "conn"):
        local.conn = sqlite3.connect(database, check_same_thread=False)
    return local.conn


class Hit(BaseModel):
    collection: str
    id: str
    snippet: str


class Hits(BaseModel):
    hits: list[Hit]


mcp = FastMCP("fts5-peer", host="127.0.0.1", port=port, log_level="WARNING")


@mcp.tool()
def search(query: str, limit: int = 10) -> Hits:
    """Full-text search over the records."""
    words = [w for w in re.split(r"\W+", query) if w][:16]
    if not words:
        return Hits(hits=[])
    rows = connection().execute(
        """SELECT collection, id, snippet(records_fts, 2, '[', ']', '…', 12) FROM records_fts
           WHERE records_fts MATCH ? ORDER BY rank LIMIT ?""",
        (" ".join(f'"{w}"' for w in words), min(limit, 50)),
    )
    return Hits(hits=[Hit(collection=c, id=i, snippet=s) for c, i, s in rows])


mcp.run(transport="streamable-http")
