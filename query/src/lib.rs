//! The query service: the log store (ClickHouse or embedded) and the Loki HTTP API and
//! LogQL engine. Empty until its issue lands; the crate exists so the workspace has the
//! layout the architecture names.
