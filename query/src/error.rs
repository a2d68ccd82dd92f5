//! The crate's one error type. `status()` maps each kind to the HTTP status Loki
//! answers with; `Display` gives Loki's message text.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum QueryError {
    /// A LogQL syntax error: `parse error at line L, col C: msg` (1-based), or
    /// `parse error : msg` for errors Loki reports without a position (line 0, col 0).
    #[error("{}", parse_display(*line, *col, msg))]
    Parse {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A query that parses but cannot run as written (e.g. `unwrap` missing).
    #[error("{0}")]
    Invalid(String),
    /// A bad request parameter (`start`, `step`, `limit` …), with Loki's text.
    #[error("{0}")]
    BadParam(String),
    /// A query limit was hit; the text is Loki's.
    #[error("{0}")]
    Limit(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("bus: {0}")]
    Bus(#[from] argus_bus::BusError),
}

impl QueryError {
    /// The HTTP status Loki answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            QueryError::Parse { .. }
            | QueryError::Invalid(_)
            | QueryError::BadParam(_)
            | QueryError::Limit(_) => 400,
            _ => 500,
        }
    }

    pub fn parse(line: usize, col: usize, msg: impl Into<String>) -> Self {
        QueryError::Parse {
            line,
            col,
            msg: msg.into(),
        }
    }
}

fn parse_display(line: usize, col: usize, msg: &str) -> String {
    if line == 0 && col == 0 {
        format!("parse error : {msg}")
    } else {
        format!("parse error at line {line}, col {col}: {msg}")
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
