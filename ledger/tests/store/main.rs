//! Tests of the SQLite store on real database files, in one test binary (issue 12): crashes
//! and concurrent writers, and tampering. Both need the `store` feature.
#![allow(clippy::unwrap_used)]

mod crash;
mod postgres;
mod tamper;
