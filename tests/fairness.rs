//! The seed's warning about event loops — "not much use when computations are
//! CPU-centric" — answered. Its own test binary, so no other test competes
//! for the two cores while it measures latency.

use std::time::{Duration, Instant};

use waterspout::ServerConfig;
use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, measure_alone};

/// The seed's warning about event loops and CPU-bound handlers, answered:
/// a guest spinning for 2 s yields every epoch tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_handler_does_not_block_other_requests() {
    let _alone = measure_alone().await;
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
    // Two spinners on two cores: without yielding no hello could run at all
    // until they finished (~1.9 s).
    let latencies = hellos_stay_fast(&server, Duration::from_millis(1500)).await;
    for s in spinners {
        assert_eq!(s.await.unwrap(), "spun");
    }
    let worst = *latencies.last().unwrap();
    assert!(worst < Duration::from_millis(250), "worst {worst:?}");
}

/// Sends `GET /ok` one after another for `period`; asserts at least 10
/// answered with a median under 50 ms; returns the latencies, sorted.
async fn hellos_stay_fast(server: &TestServer, period: Duration) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let until = Instant::now() + period;
    while Instant::now() < until {
        let start = Instant::now();
        assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        latencies.len() >= 10,
        "only {} requests completed",
        latencies.len()
    );
    assert!(
        median < Duration::from_millis(50),
        "median {median:?} of {latencies:?}"
    );
    latencies
}

/// With a single worker thread (one event loop, as one Tornado process), a
/// connection whose guest spins shares the loop with every other connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_thread_shares_its_loop_with_a_spinning_handler() {
    let _alone = measure_alone().await;
    let config = ServerConfig {
        workers: 1,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(guests::FAULTS_APP, config).await;
    assert_eq!(server.get_text("/ok").await.0, 200);
    let spinner = {
        let (client, url) = (server.client.clone(), server.url("/spin?ms=1500"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    hellos_stay_fast(&server, Duration::from_millis(1000)).await;
    // Still spinning while the others were served: they shared one loop.
    assert!(!spinner.is_finished(), "the spinner ended early");
    assert_eq!(spinner.await.unwrap(), "spun");
}
