//! Waiting for a condition with a deadline, never a bare sleep. One contract everywhere:
//! `(limit, what, check)`, where `check` returns `Some(value)` once the condition holds.
//! The `wait_*` forms panic naming `what` when the deadline passes; the `try_*` forms
//! return `None` (or the last error) so the caller decides.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked.
pub const POLL: Duration = Duration::from_millis(20);

/// Checks `check` every `every` from now until it gives `Some`, or `None` after `limit`.
pub fn try_wait_blocking<T>(limit: Duration, every: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// As [`try_wait_blocking`] every [`POLL`], panicking after `limit` with `what`.
pub fn wait_blocking<T>(limit: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    try_wait_blocking(limit, POLL, check).unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Checks `check` every `every` until it gives `Ok(Some)`; after `limit`, the last error
/// it gave (`None`: it only ever said "not yet").
pub async fn try_wait_for<T, E, F, Fut>(limit: Duration, every: Duration, mut check: F) -> Result<T, Option<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let last = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => None,
            Err(err) => Some(err),
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls the async `check` every [`POLL`] until it returns `Some`, or panics after `limit`
/// naming `what`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let found = try_wait_for(limit, POLL, || {
        let next = check();
        async move { Ok::<_, std::convert::Infallible>(next.await) }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out after {limit:?} waiting for {what}"))
}
