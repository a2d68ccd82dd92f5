//! The notifier: routing, grouping, dedup and fan-out to email, SMS, webhook and WeCom.
//! Empty until its issue lands; the crate exists so the workspace has the layout the
//! architecture names.
