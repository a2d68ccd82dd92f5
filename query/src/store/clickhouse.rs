//! The ClickHouse log store (18.16 and the current engine).
