//! Running a standard wasi:http guest (0.2 or 0.3) on the connection's own
//! task for as long as it does not have to wait.
//!
//! A wasi:http guest returns its response head first and writes the body
//! after (a 0.3 guest usually from a task of its own), so its run outlives
//! the handler's future. Until the head is out, the run is polled inline
//! ([`inline_until_head`]). Then the response body that goes to hyper
//! carries the rest of the run ([`Driven`]): each time hyper asks for the
//! next frame, the run is polled first (the guest writes into its body
//! stream), so a small body is produced, read and finished — the instance
//! recycled — within hyper's own polls, with no task spawned and no wake-up
//! between tasks. As soon as the run has to wait (the guest awaits a timer
//! or a host call, the body is not complete yet, hyper stops reading, or
//! drops the body), it is handed to a task of its own, as it always was
//! before: so a run never sits frozen inside a body that hyper is not
//! polling, and its time limit is enforced whatever the client does.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::StatusCode;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::oneshot;

use crate::body::{Body, error_page};

/// The rest of a guest's run.
type Run = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs `run` inline until the response head arrives on `head`; the
/// response then carries the rest of the run in its body ([`Driven`]).
pub(super) async fn inline_until_head(
    run: impl Future<Output = ()> + Send + 'static,
    mut head: oneshot::Receiver<http::Response<Body>>,
) -> http::Response<Body> {
    let mut run: Run = Box::pin(run);
    // The head is looked for again right after the run was polled: the run
    // usually sends it in that very poll, and answering now saves hyper a
    // round of its loop (and the task a wake-up by itself).
    let answer = std::future::poll_fn(|cx| {
        if let Poll::Ready(head) = Pin::new(&mut head).poll(cx) {
            return Poll::Ready(Some(head));
        }
        if run.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut head).poll(cx).map(Some)
    })
    .await;
    match answer {
        Some(Ok(response)) => response.map(|body| {
            http_body_util::BodyExt::boxed_unsync(Driven {
                body,
                run: Some(run),
                stashed: None,
            })
        }),
        Some(Err(_)) => {
            hand_off(run);
            error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
        // The run is over: its head was sent (or its sender dropped) before.
        None => head
            .await
            .unwrap_or_else(|_| error_page(StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

/// The rest of the run goes on in a task of its own (when there is a
/// runtime to spawn it on; else it is dropped, which ends it).
fn hand_off(run: Run) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(run);
    }
}

type Polled = Option<Result<Frame<Bytes>, std::io::Error>>;

/// A guest's response body that also drives the rest of the guest's run
/// while hyper polls it (see the module's docs).
struct Driven {
    body: Body,
    /// The rest of the run, while it is polled here.
    run: Option<Run>,
    /// A frame read ahead (to see whether the body ends right after the one
    /// returned), returned by the next poll.
    stashed: Option<Polled>,
}

impl Driven {
    /// Polls the run; `true` when it is over (or was handed off).
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.run {
            Some(run) => {
                if run.as_mut().poll(cx).is_ready() {
                    self.run = None;
                    true
                } else {
                    false
                }
            }
            None => true,
        }
    }

    /// The run would have to wait now: it goes to a task of its own.
    fn hand_off(&mut self) {
        if let Some(run) = self.run.take() {
            hand_off(run);
        }
    }
}

impl HttpBody for Driven {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Polled> {
        let this = &mut *self;
        if let Some(stashed) = this.stashed.take() {
            return Poll::Ready(stashed);
        }
        if this.drive(cx) {
            return Pin::new(&mut this.body).poll_frame(cx);
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending => {
                this.hand_off();
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                // Read ahead: a small body usually ends right after its
                // first frame, and the run finishes once its end is read.
                if !this.drive(cx) {
                    match Pin::new(&mut this.body).poll_frame(cx) {
                        Poll::Ready(None) => {
                            this.stashed = Some(None);
                            if !this.drive(cx) {
                                this.hand_off();
                            }
                        }
                        Poll::Ready(next) => {
                            this.stashed = Some(next);
                            this.hand_off();
                        }
                        Poll::Pending => this.hand_off(),
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                if !this.drive(cx) {
                    this.hand_off();
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.hand_off();
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.stashed {
            Some(None) => true,
            Some(Some(_)) => false,
            None => self.run.is_none() && self.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.stashed {
            Some(None) => SizeHint::with_exact(0),
            Some(Some(_)) => SizeHint::default(),
            None => self.body.size_hint(),
        }
    }
}

impl Drop for Driven {
    /// hyper is done with the body (read to its end, or dropped early): a
    /// run not over yet finishes in a task of its own.
    fn drop(&mut self) {
        self.hand_off();
    }
}
