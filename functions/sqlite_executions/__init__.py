"""Asynchronous executions without AWS: kept in SQLite under the data dir, run by the local dispatcher."""
