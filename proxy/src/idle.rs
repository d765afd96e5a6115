//! [`IdleTimer`]: the body idle timeout, armed only when a body has to wait,
//! so that a body that is always ready (most small responses) never touches
//! the timer wheel.

use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Fails a body that waits longer than `timeout` for its next frame.
#[derive(Debug)]
pub struct IdleTimer {
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("body idle for more than {0:?}")]
pub struct IdleTimeout(pub Duration);

impl IdleTimer {
    #[must_use]
    pub fn new(timeout: Duration) -> IdleTimer {
        IdleTimer { timeout, sleep: None, armed: false }
    }

    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A frame arrived: the next wait gets a fresh deadline.
    pub fn progress(&mut self) {
        self.armed = false;
    }

    /// The body has to wait; registers for the deadline and says whether it
    /// has passed.
    pub fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let timeout = self.timeout;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if !self.armed {
            sleep.as_mut().reset(Instant::now() + timeout);
            self.armed = true;
        }
        sleep.as_mut().poll(cx).is_ready()
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_only_after_a_wait_longer_than_the_timeout() {
        let mut timer = IdleTimer::new(Duration::from_secs(10));
        assert!(!poll_fn(|cx| Poll::Ready(timer.expired(cx))).await);
        tokio::time::advance(Duration::from_secs(9)).await;
        timer.progress();
        assert!(!poll_fn(|cx| Poll::Ready(timer.expired(cx))).await, "progress restarts the deadline");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!poll_fn(|cx| Poll::Ready(timer.expired(cx))).await);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(poll_fn(|cx| Poll::Ready(timer.expired(cx))).await);
    }
}
