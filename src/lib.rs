//! v8help: a startup-error help service for 1C:Enterprise-style clients.
//!
//! The flow, room by room:
//!
//! ```text
//! message.json ──watch (files ▶ reload loop)──▶ document (parse+validate)
//!              ──▶ snapshot (pre-rendered bytes, ETag) ──ArcSwap──▶ server ──▶ thin clients, web clients
//! clients ──getInfo / pushReport / startup-error POSTs──▶ server ──▶ reports ──▶ store
//!              ──▶ console, cli::reports, forward (Sentry, webhooks)
//! *.v8i ──▶ v8i (lossless reader/writer) ──▶ cli::bases (list / check / set-help)
//! ```
//!
//! - [`document`]: the message document an admin edits — types, validation, time rules,
//!   language choice.
//! - [`time`]: the service's time zone and the date-time forms admins write; nothing here
//!   reads the clock.
//! - [`snapshot`]: a loaded document rendered once into the exact bytes clients receive.
//! - [`watch`]: keeps what is served in step with files on disk: the file-watch stage
//!   (`watch::files`), the live state (`watch::live`, [`watch::LiveMessage`]), and the one
//!   reload loop (`watch::reload`) that the message, the certificate, the messages directory
//!   and the report rules all use.
//! - [`config`]: `serve`'s settings, one `settings!` entry each (flag, variable, TOML key,
//!   bound, default; the report, forwarding and console entries in those modules),
//!   resolved once into typed values.
//! - [`limits`]: every bound of the service (settings, files, headers, bodies) in one place.
//! - [`messages`]: many bases, one service — a directory of documents, one per base,
//!   served at `/NAME/`, each kept live as the single file is.
//! - [`service`]: the `serve` wiring in one place — start-up loads, the reload loops,
//!   SIGHUP, the shutdown order.
//! - [`server`]: HTTPS (and optional plain HTTP) serving with limits and graceful shutdown;
//!   it gets only what it serves.
//! - `metrics`: the Prometheus figures of `/metrics`, read from the published status and
//!   plain counters.
//! - [`v8i`]: the base-list reader/writer that keeps every byte it does not change.
//! - `atomic`: replacing a file so that readers see the old bytes or the new, never a mix.
//! - [`reports`] and [`store`]: the error-report intake and where reports are kept.
//! - [`forward`]: reports forwarded to Sentry and webhooks, through the store's outbox.
//! - [`console`]: the support console on its own admin listener (login, report groups).
//! - [`users`]: the console's users file (argon2id hashes).
//! - [`cli`]: the `v8help` command line.
//! - `background`: low-priority threads for CPU work a flood must not take from serving
//!   (checking uploaded report archives).
//! - `platform`: everything that differs between Unix and Windows (signals, shared
//!   listeners, file stamps and modes, directory syncs, thread priority), so no other module
//!   has a `cfg`.
//!
//! Only what the binary, the tests, the benchmarks and the examples use is public; the
//! rest is `pub(crate)` or private to its module.

#![warn(missing_docs)]

mod atomic;
mod background;
pub mod cli;
pub mod config;
pub mod console;
pub mod document;
pub mod forward;
pub mod limits;
pub mod messages;
mod metrics;
mod platform;
pub mod reports;
pub mod server;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod time;
pub mod users;
pub mod v8i;
pub mod watch;
