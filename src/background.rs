//! Low-priority threads for CPU work that clients of other endpoints must not wait behind:
//! checking an uploaded report archive (inflating every entry to count its size) takes
//! about a millisecond of CPU. On tokio's blocking pool that work would run at the serving
//! threads' priority, one thread per upload, so a flood of uploads would take the CPU from
//! the answers to the message and getInfo. Here it runs on a few threads at the lowest
//! priority, as the store's writer and checkpoint threads do ([`yield_to_serving`]).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// The nice value of the threads that take reports in behind serving (the report lanes
/// serving getInfo and pushReport connections, archive checks, the store's writer and
/// checkpoint threads): while the workers answering the message are busy, these get a
/// small share of the CPU (the kernel's weights 15 against 1024), so a report flood slows
/// the uploads before it slows the answers clients wait on; when the workers are idle they
/// have the CPU to themselves. Measured with
/// the flood of bench/reports.sh, side by side, three runs each on a busy machine: the
/// message p99 during the flood was 1.54-1.61 times its p99 alone at nice 10 and
/// 1.32-1.48 times at 19, while the flood's uploads fell from 860-965 to 450-560 a second.
const BACKGROUND_NICE: i32 = 19;

/// Gives the calling thread [`BACKGROUND_NICE`] (Linux; elsewhere it keeps its priority).
pub(crate) fn yield_to_serving() {
    crate::platform::lower_thread_priority(BACKGROUND_NICE);
}

type Job = Box<dyn FnOnce() + Send>;

/// A few low-priority threads taking jobs from one queue; they end when it is dropped.
#[derive(Debug)]
pub(crate) struct Background {
    jobs: mpsc::Sender<Job>,
}

/// The job gave no answer: the threads are gone (the service is stopping) or it panicked.
#[derive(Debug)]
pub(crate) struct Stopped;

impl Background {
    /// Starts `threads` threads named `name`.
    pub(crate) fn start(name: &str, threads: usize) -> std::io::Result<Background> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                crate::platform::lower_thread_priority(BACKGROUND_NICE);
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A job that panics loses its answer (its caller sees
                        // `Stopped`), not the thread.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                }
            })?;
        }
        Ok(Background { jobs })
    }

    /// Runs `f` on a background thread; completes with its result.
    pub(crate) async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Stopped> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_the_named_threads_and_return_their_results() {
        let pool = Background::start("v8help-test-bg", 2).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let results = rt.block_on(async {
            let mut out = Vec::new();
            for n in 0..8u32 {
                let name = pool
                    .run(move || (n * n, std::thread::current().name().unwrap_or_default().to_string()))
                    .await
                    .unwrap();
                out.push(name);
            }
            out
        });
        for (n, (square, thread)) in results.iter().enumerate() {
            assert_eq!(*square, (n * n) as u32);
            assert!(thread.starts_with("v8help-test-bg-"), "{thread}");
        }
    }
}
