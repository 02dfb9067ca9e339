//! Shared helpers for every integration test binary (`mod common;`, or
//! `#[path = "../common/mod.rs"] mod common;` from a test in a folder):
//!
//! - [`wait`] — waiting for a condition with a deadline, one contract for all;
//! - [`tools`] — external tools a suite needs, skipped with a note (failed under `CI=true`);
//! - [`pki`] — the test CA and the server certificates it signs;
//! - [`client`] — HTTPS/HTTP clients trusting the test CA and the response they read;
//! - [`server`] — v8help servers inside the test process;
//! - [`binary`] — the real `v8help` binary and other child processes, with their logs;
//! - [`saves`] — the ways admins and the kubelet save a file;
//! - [`v8i`] — base-list fixtures, invariants and a generator;
//! - [`browser`] — headless Chromium through ChromeDriver, and origins it visits;
//! - [`receiver`] — a local HTTP receiver for Sentry and webhook deliveries.
//!
//! The items most tests use are re-exported here.
#![allow(dead_code, unused_imports)]

pub mod binary;
pub mod browser;
pub mod client;
pub mod console;
pub mod pki;
pub mod postgres;
pub mod receiver;
pub mod reports;
pub mod saves;
pub mod server;
pub mod tools;
pub mod v8i;
pub mod wait;

pub use binary::{Binary, serve_replicas};
pub use client::{Resp, client_config, http_get, request, tls_connect};
pub use pki::Pki;
pub use server::TestServer;
pub use wait::wait_for;

/// An RFC 3339 instant `secs` from now (negative: in the past).
pub fn in_secs(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339()
}

/// The example message shipped in examples/.
pub fn example_message() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/message.json")).unwrap()
}
