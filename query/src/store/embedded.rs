//! The embedded log store: SQLite in the data directory, no server.
