//! The log writer: consumes log entries, node events and findings from the event log
//! and stores them, exactly once, in the log store.
