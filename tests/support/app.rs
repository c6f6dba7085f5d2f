//! A database app as a workload would be: it logs in to PostgreSQL again and
//! again with whatever credentials the secrets file holds right now, and
//! records every outage (consecutive failed logins) with its length.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::postgres::can_login_at;

/// How often the app logs in.
const PERIOD: Duration = Duration::from_millis(100);

/// One run of failed logins.
#[derive(Debug, Clone)]
pub struct Outage {
    /// Since the app started.
    pub from: Duration,
    /// How long logins kept failing.
    pub length: Duration,
    /// The user of the first failed login (None: no credentials file).
    pub user: Option<String>,
}

#[derive(Debug, Default)]
struct Record {
    logins: usize,
    failures: usize,
    outages: Vec<Outage>,
    open: Option<(Instant, Option<String>)>,
}

/// The running app; [`DbApp::stop`] ends it and returns what it saw.
#[derive(Debug)]
pub struct DbApp {
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<Record>>,
    thread: Option<JoinHandle<()>>,
    started: Instant,
}

/// What the app saw.
#[derive(Debug)]
pub struct AppReport {
    /// Logins tried.
    pub logins: usize,
    /// Logins that failed.
    pub failures: usize,
    /// Every outage, in order.
    pub outages: Vec<Outage>,
}

impl AppReport {
    /// Prints the outages (the test's measurement) and returns self.
    pub fn print(self, what: &str) -> AppReport {
        println!(
            "{what}: {} logins, {} failed, {} outage(s)",
            self.logins,
            self.failures,
            self.outages.len()
        );
        for o in &self.outages {
            println!(
                "  outage at {:.2}s for {:.2}s (user {:?})",
                o.from.as_secs_f64(),
                o.length.as_secs_f64(),
                o.user
            );
        }
        self
    }
}

impl DbApp {
    /// Starts logging in to 127.0.0.1:`port` with `USERNAME`/`PASSWORD` from
    /// the env-format file `creds`.
    pub fn start(port: u16, creds: PathBuf) -> DbApp {
        let stop = Arc::new(AtomicBool::new(false));
        let record = Arc::new(Mutex::new(Record::default()));
        let started = Instant::now();
        let (stop2, record2) = (stop.clone(), record.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Acquire) {
                let text = std::fs::read_to_string(&creds).ok();
                let user = text.as_deref().and_then(|t| field(t, "USERNAME"));
                let password = text.as_deref().and_then(|t| field(t, "PASSWORD"));
                let ok = match (&user, &password) {
                    (Some(u), Some(p)) => can_login_at(port, u, p),
                    _ => false,
                };
                let now = Instant::now();
                let mut r = record2.lock().unwrap();
                r.logins += 1;
                if ok {
                    if let Some((from, user)) = r.open.take() {
                        r.outages.push(Outage {
                            from: from - started,
                            length: now - from,
                            user,
                        });
                    }
                } else {
                    r.failures += 1;
                    if r.open.is_none() {
                        r.open = Some((now, user));
                    }
                }
                drop(r);
                std::thread::sleep(PERIOD);
            }
        });
        DbApp {
            stop,
            record,
            thread: Some(thread),
            started,
        }
    }

    /// Logins so far.
    pub fn logins(&self) -> usize {
        self.record.lock().unwrap().logins
    }

    /// Failed logins so far.
    pub fn failures(&self) -> usize {
        self.record.lock().unwrap().failures
    }

    /// Ends the app; an outage still open counts until now.
    pub fn stop(mut self) -> AppReport {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let mut r = self.record.lock().unwrap();
        if let Some((from, user)) = r.open.take() {
            r.outages.push(Outage {
                from: from - self.started,
                length: from.elapsed(),
                user,
            });
        }
        AppReport {
            logins: r.logins,
            failures: r.failures,
            outages: r.outages.clone(),
        }
    }
}

impl Drop for DbApp {
    /// A test that fails before [`DbApp::stop`] still ends the login loop (and
    /// its psql processes) instead of leaving it running for the rest of the
    /// test binary.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `KEY='…'` from an env-format file; None when absent (a file being wiped).
fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}='")))
        .map(|v| v.trim_end_matches('\'').to_string())
}
