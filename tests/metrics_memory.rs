//! The metrics recorder with nobody scraping `/metrics`: a request's
//! latency sample must not stay in memory until a scrape that may never
//! come. Its own test binary: it counts the process's live heap bytes with
//! a counting allocator, which other tests running beside it would move.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use waterspout::metrics::{UPKEEP_EVERY, VersionMetrics};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is passed on to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SAMPLES: usize = 200_000;

#[test]
fn latency_samples_do_not_pile_up_without_a_scrape() {
    let metrics = VersionMetrics::new("hello", 1);
    metrics.request_done(200, Duration::from_micros(40));
    std::thread::sleep(UPKEEP_EVERY + Duration::from_millis(300));
    let before = LIVE.load(Ordering::Relaxed);

    for _ in 0..SAMPLES {
        metrics.request_done(200, Duration::from_micros(40));
    }
    // The samples are held until an upkeep (so this test can fail).
    let held = LIVE.load(Ordering::Relaxed) - before;
    assert!(
        held > (SAMPLES * 4) as isize,
        "{SAMPLES} samples held {held} bytes: the recorder no longer buffers them?"
    );

    // Within two upkeeps they are folded into the histogram's buckets. The
    // recorder frees their blocks once its epoch moves on, which takes
    // later records (as a server keeps serving); those few are folded too.
    std::thread::sleep(UPKEEP_EVERY * 2 + Duration::from_millis(300));
    for _ in 0..1000 {
        metrics.request_done(200, Duration::from_micros(40));
    }
    std::thread::sleep(UPKEEP_EVERY * 2 + Duration::from_millis(300));
    for _ in 0..1000 {
        metrics.request_done(200, Duration::from_micros(40));
    }
    let left = LIVE.load(Ordering::Relaxed) - before;
    assert!(
        left < 64 * 1024,
        "{SAMPLES} requests' latency samples still hold {left} bytes (held {held}) with nobody scraping"
    );
}
