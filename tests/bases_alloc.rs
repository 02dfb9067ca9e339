//! The request path of a base stays a lookup with no allocation: finding base NAME by the
//! `&str` of the path and choosing its pre-rendered answer allocate nothing, among 10,000
//! documents. (Language negotiation from `Accept-Language` is the root's too and is left
//! out here.) Its own test binary: it counts every allocation of the process.
//!
//! Run: `cargo test --test bases_alloc`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use v8help::messages::Messages;
use v8help::time::Zone;

/// The system allocator, counting allocations while [`COUNTING`] is on.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn looking_up_a_base_and_choosing_its_answer_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..10_000 {
        let doc = format!(
            r#"{{"userMessage":"base {i}","userMessages":{{"kk":"база {i}"}},"expires":"2099-01-01T00:00:00Z"}}"#
        );
        std::fs::write(dir.path().join(format!("base-{i}.json")), doc).unwrap();
    }
    let messages = Messages::open(dir.path().to_path_buf(), Zone::UTC).unwrap();
    assert_eq!(messages.len(), 10_000);
    let now = chrono::Utc::now();
    // What a request has: the path, and its Accept-Language.
    let paths: Vec<String> = (0..10_000).step_by(97).map(|i| format!("/base-{i}/")).collect();
    let mut served = 0usize;
    let mut request = |path: &str| {
        let (base, _) = v8help::server::bases::split(path).unwrap();
        let live = messages.get(base).expect("known base");
        let snapshot = live.snapshot();
        let choice = snapshot.choose(now, None, None);
        served += choice.rendered.body.len();
    };
    for path in &paths {
        request(path); // warm-up: thread-local state of the swap cells
    }
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        for path in &paths {
            request(path);
        }
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert!(served > 0);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "allocations on the request path");
    assert!(messages.get("base-10000").is_none());
}
