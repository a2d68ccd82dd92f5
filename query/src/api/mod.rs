//! Loki's HTTP API over the engine and the store.
