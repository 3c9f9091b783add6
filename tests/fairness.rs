//! The seed's warning about event loops — "not much use when computations are
//! CPU-centric" — answered. Its own test binary, so no other test competes
//! for the two cores while it measures latency.

use std::time::{Duration, Instant};

use waterspout_tests::guests;
use waterspout_tests::harness::TestServer;

/// The seed's warning about event loops and CPU-bound handlers, answered:
/// a guest spinning for 2 s yields every epoch tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_handler_does_not_block_other_requests() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    // Warm the connection pool and the instance slots.
    for _ in 0..5 {
        assert_eq!(server.get_text("/ok").await.0, 200);
    }
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let (client, url) = (server.client.clone(), server.url("/spin?ms=2000"));
            tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut latencies = Vec::new();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let start = Instant::now();
        assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
        latencies.push(start.elapsed());
    }
    for s in spinners {
        assert_eq!(s.await.unwrap(), "spun");
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = *latencies.last().unwrap();
    // Two spinners on two cores: without yielding no hello could run at all
    // until they finished (~1.9 s).
    assert!(
        latencies.len() >= 10,
        "only {} requests completed",
        latencies.len()
    );
    assert!(
        median < Duration::from_millis(50),
        "median {median:?} of {latencies:?}"
    );
    assert!(worst < Duration::from_millis(250), "worst {worst:?}");
}
