"""Storage: the Store interface and its backends (SQLite by default, PostgreSQL through the same SQL code)."""

from storage.base import AccountConflict, AlertConflict, NotFound, Store
from storage.sql import SqlStore, open_store

__all__ = ["AccountConflict", "AlertConflict", "NotFound", "SqlStore", "Store", "open_store"]
