//! Waiting on the host, bounded and cancellable: the part of a guest's
//! per-instance state that host calls which wait (pubsub `wait`, and any
//! later service that sleeps or blocks) share.
//!
//! - Time spent waiting here does not use up the handler's `timeout_ms`
//!   (the runtime moves the call's CPU deadline by [`Waiting::waited`]);
//!   it is bounded by its own budget per call, the handler's
//!   `wait_timeout_ms` (default: `timeout_ms`).
//! - When the client hangs up, the driver signals [`Hangup`]: a wait in
//!   progress ends at once with [`Interrupted::Closed`], and so does every
//!   later one.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How a wait ended without its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// The wait's own timeout (or the budget) ran out.
    TimedOut,
    /// The client hung up.
    Closed,
}

/// The signal a driver raises when the client of a request hangs up.
#[derive(Debug)]
pub struct Hangup(watch::Sender<bool>);

impl Hangup {
    /// A signal and the receiver a guest's [`Waiting`] watches.
    pub fn new() -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (Hangup(tx), rx)
    }

    pub fn raise(&self) {
        self.0.send_replace(true);
    }
}

/// One instance's waiting budget and hang-up signal.
#[derive(Debug, Default)]
pub struct Waiting {
    /// Longest total wait per guest call.
    limit: Duration,
    /// Waited so far in the current call.
    waited: Duration,
    closed: Option<watch::Receiver<bool>>,
}

impl Waiting {
    /// A budget of `limit` per call, no hang-up signal.
    pub fn new(limit: Duration) -> Self {
        Waiting {
            limit,
            waited: Duration::ZERO,
            closed: None,
        }
    }

    /// Watch `closed` (the request's [`Hangup`]).
    pub fn watch_hangup(&mut self, closed: watch::Receiver<bool>) {
        self.closed = Some(closed);
    }

    /// A new guest call starts: the whole budget again.
    pub fn reset(&mut self) {
        self.waited = Duration::ZERO;
    }

    /// The budget per call.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// What is left of the budget in the current call.
    pub fn remaining(&self) -> Duration {
        self.limit.saturating_sub(self.waited)
    }

    /// Time waited in the current call (the CPU deadline moves by it).
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Whether the client hung up.
    pub fn is_closed(&self) -> bool {
        self.closed.as_ref().is_some_and(|c| *c.borrow())
    }

    /// Runs `wait` for at most `timeout` (and what is left of the budget),
    /// ending early when the client hangs up.
    pub async fn wait<F: Future>(&mut self, timeout: Duration, wait: F) -> Result<F::Output, Interrupted> {
        if self.is_closed() {
            return Err(Interrupted::Closed);
        }
        let timeout = timeout.min(self.remaining());
        let start = Instant::now();
        let closed = async {
            match self.closed.clone() {
                Some(mut rx) => {
                    let _ = rx.wait_for(|c| *c).await;
                }
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            biased;
            () = closed => Err(Interrupted::Closed),
            out = tokio::time::timeout(timeout, wait) => out.map_err(|_| Interrupted::TimedOut),
        };
        self.waited += start.elapsed();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hangup_ends_the_wait() {
        let (hangup, rx) = Hangup::new();
        let mut waiting = Waiting::new(Duration::from_secs(10));
        waiting.watch_hangup(rx);
        let raise = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            hangup.raise();
        };
        let (ended, ()) = tokio::join!(
            waiting.wait(Duration::from_secs(10), std::future::pending::<()>()),
            raise
        );
        assert_eq!(ended, Err(Interrupted::Closed));
        assert!(waiting.is_closed());
        assert_eq!(
            waiting.wait(Duration::from_secs(1), async {}).await,
            Err(Interrupted::Closed)
        );
    }

    #[tokio::test]
    async fn the_budget_bounds_every_wait_of_a_call() {
        let mut waiting = Waiting::new(Duration::from_millis(50));
        let first = waiting
            .wait(Duration::from_secs(10), std::future::pending::<()>())
            .await;
        assert_eq!(first, Err(Interrupted::TimedOut));
        assert!(waiting.waited() >= Duration::from_millis(50));
        let start = Instant::now();
        let _ = waiting
            .wait(Duration::from_secs(10), std::future::pending::<()>())
            .await;
        assert!(start.elapsed() < Duration::from_secs(5));
        waiting.reset();
        assert_eq!(waiting.wait(Duration::from_secs(1), async { 7 }).await, Ok(7));
    }
}
