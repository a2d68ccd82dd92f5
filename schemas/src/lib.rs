//! Event schemas shared by every Argus component.
//!
//! This crate owns the shape of every record on the event log:
//! - [`Envelope`]: the header every record carries (type, schema version, tenant,
//!   event and ingest time, source, key) around a typed [`Payload`];
//! - [`Labels`] and their stable [`Fingerprint`];
//! - the payload types (metric samples, log entries, node events, security findings,
//!   alert transitions, silence changes, notification attempts, audit records);
//! - versioning: [`decode`] accepts every version up to the current one of each type
//!   and rejects malformed records and unknown newer versions with a [`DecodeError`]
//!   that says why;
//! - the topic each record type lives on ([`topics`]);
//! - JSON Schema documents for what external producers send ([`json_schema`]).

pub mod duration;
mod envelope;
mod error;
pub mod json_schema;
mod labels;
mod payloads;
mod time;
pub mod topics;

pub use envelope::{Envelope, Payload, RecordKind, decode, decode_external, encode};
pub use error::DecodeError;
pub use labels::{Fingerprint, Label, Labels, fingerprint};
pub use payloads::*;
pub use time::Timestamp;

/// The tenant used when a caller names none (Loki's `fake` in single-tenant mode).
pub const DEFAULT_TENANT: &str = "default";

/// Checks a tenant (project) id: 1 to 150 characters from Loki's allowed set
/// (`A-Z a-z 0-9 ! - _ . * ' ( )`), and not `.` or `..`.
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    if tenant.is_empty() {
        return Err("tenant is empty".into());
    }
    if tenant.len() > 150 {
        return Err(format!(
            "tenant is {} characters long, at most 150 are allowed",
            tenant.len()
        ));
    }
    if tenant == "." || tenant == ".." {
        return Err(format!("tenant {tenant:?} is not allowed"));
    }
    if let Some(c) = tenant
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
    {
        return Err(format!(
            "tenant {tenant:?} contains {c:?}; allowed are A-Z a-z 0-9 ! - _ . * ' ( )"
        ));
    }
    Ok(())
}
