//! A body that adds the length of each data frame it passes to a counter
//! (the gateway's bytes metrics), without holding more than the frame.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::gateway::stats::Stats;

/// Which counter a body adds to.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// From the client to the upstream (request bodies).
    Received,
    /// From the upstream to the client (response bodies).
    Sent,
}

/// `inner`, counted.
#[derive(Debug)]
pub struct Counted<B> {
    inner: B,
    counters: Arc<Stats>,
    direction: Direction,
}

impl<B> Counted<B> {
    /// Counts `inner`'s data into `counters`.
    pub fn new(inner: B, counters: Arc<Stats>, direction: Direction) -> Self {
        Counted {
            inner,
            counters,
            direction,
        }
    }

    fn counter(&self) -> &AtomicU64 {
        match self.direction {
            Direction::Received => &self.counters.to_upstream,
            Direction::Sent => &self.counters.to_client,
        }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter()
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
