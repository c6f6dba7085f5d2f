//! The threads a gateway serves its connections on, every kind: each runs a
//! current-thread tokio runtime, and a client connection lives on one of them
//! with its upstream connection. A request then crosses no thread: the
//! client's task, the upstream connection's task and both sockets' readiness
//! are on the same runtime, so no wake-up goes through another thread's queue
//! or futex (with a work-stealing runtime they did, several times per request
//! or transaction). A thread outside (a postgres login) reaches a worker's
//! runtime through its handle: the worker drives the I/O and timers.

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;

/// How long a worker waits for its tasks once told to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// The worker threads of one gateway.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Workers {
    /// Starts `count` (at least one) threads named `name`.
    pub fn start(count: usize, name: &str) -> std::io::Result<Workers> {
        let (stop, stopped) = watch::channel(false);
        let mut workers = Workers {
            handles: Vec::new(),
            threads: Vec::new(),
            stop,
        };
        for _ in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let mut stopped = stopped.clone();
            let thread = std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    runtime.block_on(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    });
                    // Dropping the tasks closes their connections; a task in
                    // a blocking call (a DNS lookup) is not waited for long.
                    runtime.shutdown_timeout(SHUTDOWN_WAIT);
                });
            match thread {
                Ok(t) => {
                    workers.handles.push(handle);
                    workers.threads.push(t);
                }
                Err(e) => {
                    workers.stop();
                    return Err(e);
                }
            }
        }
        Ok(workers)
    }

    /// Each worker's runtime; the first also runs the accept loop (and the
    /// vault keeper).
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Leaves every worker running until the process exits (for tasks that
    /// may still need the runtime from outside it, which a stopped runtime
    /// would fail with a panic).
    pub fn abandon(self) {
        std::mem::forget(self);
    }

    /// Ends every worker: their tasks and connections are dropped.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.handles.clear();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}
