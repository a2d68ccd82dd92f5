//! Test support shared by the notifier's integration tests.

pub mod standins;
