//! The lease schedule, pure: given what Vault granted (token and lease TTLs,
//! renewability), the clock and a jitter source, what is due next and when —
//! token renewal or re-login, lease renewal, replacement before the max TTL,
//! kv2 refresh, expiry, and backoff after failures. No I/O and no clock reads:
//! the engine passes `now` in and applies the answer with Vault and the files.
//!
//! The rules:
//! - act on a TTL at `threshold` of it, less up to 10% jitter, so agents started
//!   together spread out ([`renew_after`]);
//! - a renewal is asked for the lease's first TTL; one granted shorter, or not
//!   renewable any more, has reached its max TTL, so the next step is a
//!   replacement (a new lease) before it runs out, never another renewal;
//! - a lease without TTL (kv2, static secrets) is re-read every `refresh`;
//! - a lease past its expiry is dead: it is replaced at once;
//! - failures back off from 250 ms doubling, each delay drawn from [d/2, d],
//!   reset by the next success; the doubling stops at 30 s, or at 4 s when
//!   what is retried has lapsed or would lapse before a 30 s retry (a lease or
//!   certificate near or past its end, a token near or past its end, a secret
//!   never fetched) — see [`backoff_cap`];
//! - a lease replaced by a rotation is revoked `retire_grace` after its
//!   successor is in place, or when it would have ended anyway if sooner
//!   ([`Schedule::retire`]): an app that read the old file a moment before the
//!   rename can still log in with it;
//! - with nothing scheduled the engine still wakes hourly.

use std::time::{Duration, Instant};

use rand::Rng as _;

/// The first retry delay.
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// The longest retry delay while nothing is at stake: gentle on a Vault that
/// is down.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The longest retry delay when what is retried has lapsed, or would lapse
/// before a retry [`BACKOFF_MAX`] away. It bounds how long a dead credential
/// outlives an outage: every such agent retries within 4 s of Vault's return.
/// The price while Vault is down: each lapsed item retries once per [2 s, 4 s]
/// (mean 3 s), so N agents with one each send N/3 requests/s on average, at
/// most N/2 (600 agents: 200/s, connections refused in an outage).
pub const BACKOFF_URGENT_MAX: Duration = Duration::from_secs(4);
/// How long the engine sleeps when nothing is scheduled.
pub const IDLE: Duration = Duration::from_secs(3600);
/// Stand-in for "never" when a TTL is too large to add to the clock.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A source of jitter: uniform draws in [0, 1].
pub trait Jitter: Send {
    /// The next draw.
    fn draw(&mut self) -> f64;
}

/// Jitter from the thread-local random generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn draw(&mut self) -> f64 {
        rand::thread_rng().gen_range(0.0..=1.0)
    }
}

/// `now + d`, saturating at a far-off instant instead of overflowing the clock.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now.checked_add(FAR).unwrap_or(now))
}

/// The cap on the retry delay for something that lapses at `lapses` (None:
/// never): [`BACKOFF_URGENT_MAX`] when it has lapsed by the time a retry at
/// [`BACKOFF_MAX`] would come (a credential must not stay dead for 30 s after
/// Vault is back), else [`BACKOFF_MAX`].
pub fn backoff_cap(lapses: Option<Instant>, now: Instant) -> Duration {
    match lapses {
        Some(l) if l <= after(now, BACKOFF_MAX) => BACKOFF_URGENT_MAX,
        _ => BACKOFF_MAX,
    }
}

/// Retry delays: [`BACKOFF_BASE`] doubling up to a cap ([`backoff_cap`]), each
/// drawn from [d/2, d] so that many agents restarted together do not hit Vault
/// in step.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The delay before the next retry, doubling up to `cap`.
    pub fn next_delay(&mut self, cap: Duration, jitter: &mut dyn Jitter) -> Duration {
        let exp = BACKOFF_BASE
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(cap);
        self.attempt = self.attempt.saturating_add(1);
        exp.mul_f64(0.5 + 0.5 * jitter.draw().clamp(0.0, 1.0))
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// When to act on a TTL: `threshold` of it, less up to 10% jitter.
pub fn renew_after(ttl: Duration, threshold: f64, jitter: &mut dyn Jitter) -> Duration {
    let factor = threshold * (0.9 + 0.1 * jitter.draw().clamp(0.0, 1.0));
    Duration::try_from_secs_f64(ttl.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// What Vault granted: a TTL and whether it may be renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The TTL (lease_duration, or the token's ttl).
    pub ttl: Duration,
    /// Whether it may be renewed.
    pub renewable: bool,
}

/// What is due next for a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Renew the lease.
    Renew,
    /// Fetch new credentials and publish them.
    Rotate,
    /// Re-read and publish when changed (kv2, unleased).
    Refresh,
}

/// One secret's place in the schedule.
#[derive(Debug, Clone)]
pub struct SecretTimer {
    /// When `due` is due.
    pub next: Instant,
    /// What to do then.
    pub due: Due,
    /// When the current lease runs out, if it has one.
    pub expires: Option<Instant>,
    /// The current lease's first TTL: what each renewal asks for.
    pub first_ttl: Duration,
    /// When the value held lapses (its lease's or certificate's end, kept past
    /// [`Schedule::expire`]; `now` for a secret never fetched), or None when
    /// it does not: what decides how urgently a failure is retried.
    lapses: Option<Instant>,
    backoff: Backoff,
}

/// The token's place in the schedule.
#[derive(Debug, Clone, Default)]
pub struct TokenTimer {
    /// When to act, if ever (a token without TTL never expires).
    pub next: Option<Instant>,
    /// Renew-self (true) or log in again (false) when `next` comes.
    pub renew: bool,
    first_ttl: Duration,
    /// When the token lapses (None: never, or no TTL): see
    /// [`SecretTimer::lapses`].
    lapses: Option<Instant>,
    backoff: Backoff,
}

/// A lease replaced by a rotation, alive until `revoke_at` so that a reader of
/// the old file can still use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retiring {
    /// The secret it belonged to.
    pub secret: usize,
    /// The lease id.
    pub lease_id: String,
    /// When it is revoked.
    pub revoke_at: Instant,
}

/// What the engine should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Renew the token or log in again ([`TokenTimer::renew`]).
    Token,
    /// Act on secret `i` ([`SecretTimer::due`]).
    Secret(usize),
    /// Revoke the retiring leases whose grace is over ([`Schedule::retired_due`]).
    Retire,
    /// Nothing is due before this instant.
    Sleep(Instant),
}

/// The token's and every secret's timers, the renewal threshold and the jitter.
pub struct Schedule {
    /// The token's timer.
    pub token: TokenTimer,
    /// One timer per configured secret, in configuration order.
    pub secrets: Vec<SecretTimer>,
    /// Replaced leases in their retire grace, in the order they were retired.
    retiring: Vec<Retiring>,
    threshold: f64,
    jitter: Box<dyn Jitter>,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("token", &self.token)
            .field("secrets", &self.secrets)
            .field("retiring", &self.retiring)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl Schedule {
    /// `secrets` timers, each due for a first fetch at `now`; no token yet.
    pub fn new(secrets: usize, threshold: f64, now: Instant, jitter: Box<dyn Jitter>) -> Self {
        Schedule {
            // No token yet: a login is as urgent as a lapsed token's.
            token: TokenTimer {
                lapses: Some(now),
                ..TokenTimer::default()
            },
            secrets: (0..secrets)
                .map(|_| SecretTimer {
                    next: now,
                    due: Due::Rotate,
                    expires: None,
                    first_ttl: Duration::ZERO,
                    lapses: Some(now),
                    backoff: Backoff::default(),
                })
                .collect(),
            retiring: Vec::new(),
            threshold,
            jitter,
        }
    }

    /// Logged in with a token of `grant`.
    pub fn logged_in(&mut self, grant: Grant, now: Instant) {
        let t = &mut self.token;
        t.first_ttl = grant.ttl;
        t.backoff.reset();
        if grant.ttl.is_zero() {
            t.next = None;
            t.lapses = None;
        } else {
            t.lapses = Some(after(now, grant.ttl));
            t.next = Some(after(
                now,
                renew_after(grant.ttl, self.threshold, &mut *self.jitter),
            ));
            t.renew = grant.renewable;
        }
    }

    /// The token a previous agent logged in with was adopted (a restart): it
    /// has `grant` left of a first TTL of `first_ttl`. Renewed when renewable
    /// (the renewal's answer tells whether the max TTL is near).
    pub fn token_adopted(&mut self, grant: Grant, first_ttl: Duration, now: Instant) {
        self.logged_in(grant, now);
        self.token.first_ttl = first_ttl;
    }

    /// The TTL the current token was issued with.
    pub fn token_first_ttl(&self) -> Duration {
        self.token.first_ttl
    }

    /// The token was renewed to `grant`. Shorter than the first TTL: capped by
    /// the max TTL, so the next step is a new login before it runs out.
    pub fn token_renewed(&mut self, grant: Grant, now: Instant) {
        let t = &mut self.token;
        t.backoff.reset();
        t.renew = grant.renewable && grant.ttl >= t.first_ttl;
        t.lapses = Some(after(now, grant.ttl));
        t.next = Some(after(
            now,
            renew_after(grant.ttl, self.threshold, &mut *self.jitter),
        ));
    }

    /// A token renewal or login failed transiently; returns the retry delay.
    pub fn token_failed(&mut self, now: Instant) -> Duration {
        let t = &mut self.token;
        let d = t
            .backoff
            .next_delay(backoff_cap(t.lapses, now), &mut *self.jitter);
        t.next = Some(after(now, d));
        d
    }

    /// A login failed (there is no valid token): retried after the backoff,
    /// and no secret is acted on before that retry. Without a token every
    /// secret's request fails, and each failure would try a login of its own
    /// (`Engine::token_lost`), bypassing this backoff: a tight loop of failed
    /// logins, which Vault's user lockout (5 failures) answers by refusing the
    /// role for 15 minutes. Returns the retry delay.
    pub fn login_failed(&mut self, now: Instant) -> Duration {
        let d = self.token_failed(now);
        if let Some(retry) = self.token.next {
            for s in &mut self.secrets {
                s.next = s.next.max(retry);
            }
        }
        d
    }

    /// The token cannot be renewed (refused, or Vault no longer knows it):
    /// log in again at once; it counts as lapsed.
    pub fn relogin_now(&mut self, now: Instant) {
        self.token.renew = false;
        self.token.next = Some(now);
        self.token.lapses = Some(now);
    }

    /// Secret `i` was fetched: a lease with a TTL is renewed (or, when not
    /// renewable, replaced) at the threshold; anything else is re-read after
    /// `refresh`.
    pub fn fetched(&mut self, i: usize, lease: Option<Grant>, refresh: Duration, now: Instant) {
        let s = &mut self.secrets[i];
        s.backoff.reset();
        s.first_ttl = lease.map(|l| l.ttl).unwrap_or_default();
        match lease {
            Some(l) if !l.ttl.is_zero() => {
                s.next = after(now, renew_after(l.ttl, self.threshold, &mut *self.jitter));
                s.due = if l.renewable { Due::Renew } else { Due::Rotate };
                s.expires = Some(after(now, l.ttl));
            }
            _ => {
                s.next = after(now, refresh);
                s.due = Due::Refresh;
                s.expires = None;
            }
        }
        s.lapses = s.expires;
    }

    /// Secret `i`'s lease was adopted from a previous agent (a restart): it has
    /// `grant` left of a first TTL of `first_ttl`, which renewals keep asking
    /// for. Unleased (None): re-read after `refresh`.
    pub fn adopted(
        &mut self,
        i: usize,
        lease: Option<Grant>,
        first_ttl: Duration,
        refresh: Duration,
        now: Instant,
    ) {
        self.fetched(i, lease, refresh, now);
        if lease.is_some() {
            self.secrets[i].first_ttl = first_ttl;
        }
    }

    /// Secret `i` is a certificate valid for `validity` from `now` (the role's
    /// max TTL already caps it): re-issued at `reissue_at` of it, less up to 10%
    /// jitter, and dead at its end.
    pub fn issued(&mut self, i: usize, validity: Duration, reissue_at: f64, now: Instant) {
        self.issued_earlier(i, validity, Duration::ZERO, reissue_at, now);
    }

    /// Secret `i` is a certificate issued `elapsed` ago for `validity` (an
    /// adopted one, after a restart): re-issued at the same `reissue_at` point
    /// of that validity as if the agent had never stopped (at once when the
    /// point has passed), and dead at its end.
    pub fn issued_earlier(
        &mut self,
        i: usize,
        validity: Duration,
        elapsed: Duration,
        reissue_at: f64,
        now: Instant,
    ) {
        let s = &mut self.secrets[i];
        s.backoff.reset();
        s.first_ttl = Duration::ZERO;
        let point = renew_after(validity, reissue_at, &mut *self.jitter);
        s.next = after(now, point.saturating_sub(elapsed));
        s.due = Due::Rotate;
        s.expires = Some(after(now, validity.saturating_sub(elapsed)));
        s.lapses = s.expires;
    }

    /// Secret `i` was re-read and had not changed: read again after `refresh`.
    pub fn unchanged(&mut self, i: usize, refresh: Duration, now: Instant) {
        let s = &mut self.secrets[i];
        s.backoff.reset();
        s.next = after(now, refresh);
    }

    /// Secret `i`'s lease was renewed to `grant`. Returns true when it reached
    /// its max TTL (granted shorter than asked, or no longer renewable): it is
    /// then replaced at the next renewal point instead of renewed.
    pub fn renewed(&mut self, i: usize, grant: Grant, now: Instant) -> bool {
        let s = &mut self.secrets[i];
        s.backoff.reset();
        // Vault grants exactly the increment unless the max TTL cuts it.
        let capped = !grant.renewable || grant.ttl < s.first_ttl;
        s.expires = Some(after(now, grant.ttl));
        s.lapses = s.expires;
        s.next = after(
            now,
            renew_after(grant.ttl, self.threshold, &mut *self.jitter),
        );
        if capped {
            s.due = Due::Rotate;
        }
        capped
    }

    /// An action on secret `i` failed in a way that may pass; returns the
    /// retry delay.
    pub fn secret_failed(&mut self, i: usize, now: Instant) -> Duration {
        let s = &mut self.secrets[i];
        let d = s
            .backoff
            .next_delay(backoff_cap(s.lapses, now), &mut *self.jitter);
        s.next = after(now, d);
        d
    }

    /// Secret `i` must be replaced now (lease not renewable, expired, or gone
    /// with an old token).
    pub fn replace_now(&mut self, i: usize, now: Instant) {
        let s = &mut self.secrets[i];
        s.due = Due::Rotate;
        s.next = now;
    }

    /// A new login after Vault lost the token: every secret is fetched again
    /// now, its backoff started over.
    pub fn refetch_all_now(&mut self, now: Instant) {
        for s in &mut self.secrets {
            s.due = Due::Rotate;
            s.next = now;
            s.backoff.reset();
        }
    }

    /// Secret `i` has nothing to renew: what is due becomes `due`, still at
    /// its current time.
    pub fn set_due(&mut self, i: usize, due: Due) {
        self.secrets[i].due = due;
    }

    /// Secrets whose lease has run out by `now`; their expiry is cleared and
    /// they are due for replacement at once (retried as lapsed: urgently).
    pub fn expire(&mut self, now: Instant) -> Vec<usize> {
        let expired: Vec<usize> = (0..self.secrets.len())
            .filter(|&i| self.secrets[i].expires.is_some_and(|e| e <= now))
            .collect();
        for &i in &expired {
            self.secrets[i].expires = None;
            self.replace_now(i, now);
        }
        expired
    }

    /// Secret `i`'s current lease `lease_id` is being replaced at `now` (call
    /// before the replacement is installed: its end is the current lease's).
    /// It is revoked `grace` from now, or when it lapses if sooner; at once
    /// when it has lapsed or `grace` is zero. Returns when.
    pub fn retire(&mut self, i: usize, lease_id: String, grace: Duration, now: Instant) -> Instant {
        let end = after(now, grace);
        let revoke_at = match self.secrets[i].lapses {
            Some(lapses) => end.min(lapses.max(now)),
            None => end,
        };
        self.retire_at(i, lease_id, revoke_at);
        revoke_at
    }

    /// A replaced lease to revoke at `revoke_at` (adopted from a previous
    /// agent with its deadline).
    pub fn retire_at(&mut self, i: usize, lease_id: String, revoke_at: Instant) {
        self.retiring.push(Retiring {
            secret: i,
            lease_id,
            revoke_at,
        });
    }

    /// The leases in their retire grace.
    pub fn retiring(&self) -> &[Retiring] {
        &self.retiring
    }

    /// Removes and returns the retiring leases due by `now`.
    pub fn retired_due(&mut self, now: Instant) -> Vec<Retiring> {
        let (due, left) = std::mem::take(&mut self.retiring)
            .into_iter()
            .partition(|r| r.revoke_at <= now);
        self.retiring = left;
        due
    }

    /// Removes and returns every retiring lease (shutdown revokes them all).
    pub fn take_retiring(&mut self) -> Vec<Retiring> {
        std::mem::take(&mut self.retiring)
    }

    /// What to do at `now`: the token first, then the first secret due, then
    /// retiring leases whose grace is over, else sleep until the earliest
    /// deadline (`other`, e.g. a retired value's end, counts too), at most
    /// [`IDLE`].
    pub fn next(&self, now: Instant, other: Option<Instant>) -> Step {
        if self.token.next.is_some_and(|t| t <= now) {
            return Step::Token;
        }
        if let Some(i) = self.secrets.iter().position(|s| s.next <= now) {
            return Step::Secret(i);
        }
        if self.retiring.iter().any(|r| r.revoke_at <= now) {
            return Step::Retire;
        }
        let until = self
            .secrets
            .iter()
            .map(|s| s.next)
            .chain(self.secrets.iter().filter_map(|s| s.expires))
            .chain(self.retiring.iter().map(|r| r.revoke_at))
            .chain(self.token.next)
            .chain(other)
            .min()
            .unwrap_or(after(now, IDLE));
        Step::Sleep(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same draw every time.
    struct Fixed(f64);
    impl Jitter for Fixed {
        fn draw(&mut self) -> f64 {
            self.0
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn sched(n: usize, jitter: f64, now: Instant) -> Schedule {
        Schedule::new(n, 0.5, now, Box::new(Fixed(jitter)))
    }

    fn lease(ttl: u64, renewable: bool) -> Option<Grant> {
        Some(Grant {
            ttl: S(ttl),
            renewable,
        })
    }

    #[test]
    fn after_a_failed_login_no_secret_is_due_before_the_next_login() {
        let now = Instant::now();
        let mut s = sched(2, 1.0, now);
        s.fetched(0, lease(10, true), S(300), now);
        s.fetched(1, lease(100, true), S(300), now);
        // Vault lost the token: a re-login fails.
        s.relogin_now(now + S(6));
        let d = s.login_failed(now + S(6));
        let retry = now + S(6) + d;
        assert_eq!(
            s.next(now + S(6), None),
            Step::Sleep(retry.min(now + S(10)))
        );
        assert_eq!(s.secrets[0].next, retry, "held until the login is retried");
        assert_eq!(s.secrets[1].next, now + S(50), "already later: unchanged");
        assert_eq!(s.next(retry, None), Step::Token, "the login comes first");
    }

    #[test]
    fn a_replaced_lease_is_revoked_after_the_grace_or_at_its_end_if_sooner() {
        let now = Instant::now();
        let mut s = sched(2, 1.0, now);
        // 100 s left of the lease: the 30 s grace applies in full.
        s.fetched(0, lease(100, true), S(300), now);
        assert_eq!(s.retire(0, "old-0".into(), S(30), now), now + S(30));
        // 10 s left: revoked when it would have ended anyway.
        s.fetched(1, lease(10, true), S(300), now);
        assert_eq!(s.retire(1, "old-1".into(), S(30), now), now + S(10));
        let ids = |v: &[Retiring]| v.iter().map(|r| r.lease_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(s.retiring()), ["old-0", "old-1"]);
        // The engine sleeps until the first deadline, then revokes what is due.
        s.fetched(0, lease(100, true), S(300), now);
        s.fetched(1, lease(100, true), S(300), now);
        assert_eq!(s.next(now, None), Step::Sleep(now + S(10)));
        assert_eq!(s.next(now + S(10), None), Step::Retire);
        let due = s.retired_due(now + S(10));
        assert_eq!((ids(&due), due[0].secret), (vec!["old-1".to_string()], 1));
        assert_eq!(ids(s.retiring()), ["old-0"]);
        assert_eq!(s.next(now + S(10), None), Step::Sleep(now + S(30)));
        assert!(s.retired_due(now + S(29)).is_empty());
        assert_eq!(ids(&s.retired_due(now + S(30))), ["old-0"]);
        assert!(s.retiring().is_empty());
    }

    #[test]
    fn a_zero_grace_or_a_lapsed_lease_is_revoked_at_once_and_shutdown_takes_all() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        s.fetched(0, lease(100, true), S(300), now);
        assert_eq!(s.retire(0, "a".into(), Duration::ZERO, now), now);
        // Expired while Vault was unreachable: nothing to keep alive.
        s.fetched(0, lease(5, true), S(300), now);
        s.expire(now + S(5));
        assert_eq!(s.retire(0, "b".into(), S(30), now + S(6)), now + S(6));
        assert_eq!(
            s.next(now + S(6), None),
            Step::Secret(0),
            "the replacement first"
        );
        s.fetched(0, lease(100, true), S(300), now + S(6));
        assert_eq!(s.next(now + S(6), None), Step::Retire);
        // A lease without TTL keeps the whole grace; an adopted deadline is kept.
        s.fetched(0, lease(0, false), S(300), now);
        assert_eq!(s.retire(0, "c".into(), S(30), now), now + S(30));
        s.retire_at(0, "d".into(), now + S(7));
        let all = s.take_retiring();
        assert_eq!(all.len(), 4);
        assert!(s.retiring().is_empty() && s.retired_due(now + S(3600)).is_empty());
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_caps() {
        let (mut low, mut high) = (Backoff::default(), Backoff::default());
        let mut expected = BACKOFF_BASE;
        for _ in 0..12 {
            let (l, h) = (
                low.next_delay(BACKOFF_MAX, &mut Fixed(0.0)),
                high.next_delay(BACKOFF_MAX, &mut Fixed(1.0)),
            );
            assert_eq!(h, expected, "the top of the range doubles");
            assert_eq!(l, expected / 2, "the bottom is half of it");
            expected = (expected * 2).min(BACKOFF_MAX);
        }
        assert_eq!(high.next_delay(BACKOFF_MAX, &mut Fixed(1.0)), BACKOFF_MAX);
        // Far past the cap the shift is bounded: no overflow, still capped.
        for _ in 0..100 {
            assert!(high.next_delay(BACKOFF_MAX, &mut RandomJitter) <= BACKOFF_MAX);
        }
        high.reset();
        assert_eq!(high.next_delay(BACKOFF_MAX, &mut Fixed(1.0)), BACKOFF_BASE);
        // Out-of-range draws cannot escape [d/2, d].
        assert_eq!(
            Backoff::default().next_delay(BACKOFF_MAX, &mut Fixed(7.0)),
            BACKOFF_BASE
        );
        assert_eq!(
            Backoff::default().next_delay(BACKOFF_MAX, &mut Fixed(-1.0)),
            BACKOFF_BASE / 2
        );
    }

    #[test]
    fn the_urgent_cap_bounds_the_doubling_the_same_way() {
        let (mut low, mut high) = (Backoff::default(), Backoff::default());
        let tops: Vec<Duration> = (0..8)
            .map(|_| high.next_delay(BACKOFF_URGENT_MAX, &mut Fixed(1.0)))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(
            tops,
            [250, 500, 1000, 2000, 4000, 4000, 4000, 4000].map(ms),
            "doubles from the base and stops at the urgent cap"
        );
        for _ in 0..8 {
            low.next_delay(BACKOFF_URGENT_MAX, &mut Fixed(0.0));
        }
        assert_eq!(
            low.next_delay(BACKOFF_URGENT_MAX, &mut Fixed(0.0)),
            BACKOFF_URGENT_MAX / 2
        );
        // A backoff grown under the relaxed cap drops to the urgent one at once.
        let mut grown = Backoff::default();
        for _ in 0..20 {
            grown.next_delay(BACKOFF_MAX, &mut Fixed(1.0));
        }
        assert_eq!(grown.next_delay(BACKOFF_MAX, &mut Fixed(1.0)), BACKOFF_MAX);
        assert_eq!(
            grown.next_delay(BACKOFF_URGENT_MAX, &mut Fixed(1.0)),
            BACKOFF_URGENT_MAX
        );
        assert!(BACKOFF_URGENT_MAX < BACKOFF_MAX);
    }

    /// Draws 0, 1/4, 1/2, 3/4, 1, then again.
    struct Steps(u32);
    impl Jitter for Steps {
        fn draw(&mut self) -> f64 {
            self.0 += 1;
            f64::from((self.0 - 1) % 5) / 4.0
        }
    }

    #[test]
    fn capped_delays_are_spread_over_half_to_all_of_the_cap() {
        for cap in [BACKOFF_URGENT_MAX, BACKOFF_MAX] {
            let mut b = Backoff::default();
            for _ in 0..20 {
                b.next_delay(cap, &mut Fixed(1.0));
            }
            let mut steps = Steps(0);
            let drawn: Vec<Duration> = (0..5).map(|_| b.next_delay(cap, &mut steps)).collect();
            let expected: Vec<Duration> = [0.5, 0.625, 0.75, 0.875, 1.0]
                .iter()
                .map(|f| cap.mul_f64(*f))
                .collect();
            assert_eq!(
                drawn, expected,
                "cap {cap:?}: [cap/2, cap], linear in the draw"
            );
            for _ in 0..200 {
                let d = b.next_delay(cap, &mut RandomJitter);
                assert!(d >= cap / 2 && d <= cap, "cap {cap:?}: {d:?}");
            }
        }
    }

    #[test]
    fn the_cap_is_urgent_from_the_point_a_full_cap_retry_would_come_too_late() {
        let start = Instant::now();
        let now = start + S(100);
        assert_eq!(backoff_cap(None, now), BACKOFF_MAX, "never lapses");
        assert_eq!(
            backoff_cap(Some(now + BACKOFF_MAX + Duration::from_millis(1)), now),
            BACKOFF_MAX,
            "a 30 s retry still comes before the end"
        );
        // A retry landing exactly at the end finds it dead (expire: e <= now).
        assert_eq!(
            backoff_cap(Some(now + BACKOFF_MAX), now),
            BACKOFF_URGENT_MAX
        );
        assert_eq!(backoff_cap(Some(now + S(1)), now), BACKOFF_URGENT_MAX);
        assert_eq!(backoff_cap(Some(now), now), BACKOFF_URGENT_MAX);
        assert_eq!(backoff_cap(Some(start), now), BACKOFF_URGENT_MAX, "lapsed");
        assert_eq!(
            backoff_cap(Some(now + S(3600 * 24 * 365)), now),
            BACKOFF_MAX
        );
    }

    /// Fails secret `i` (or the token, for None) until its delay stops
    /// growing; returns that delay.
    fn saturated(s: &mut Schedule, i: Option<usize>, now: Instant) -> Duration {
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = match i {
                Some(i) => s.secret_failed(i, now),
                None => s.token_failed(now),
            };
        }
        last
    }

    #[test]
    fn a_lease_renewal_is_retried_urgently_once_its_lease_is_within_the_cap() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        s.fetched(0, lease(120, true), S(300), now);
        assert_eq!(
            saturated(&mut s, Some(0), now),
            BACKOFF_MAX,
            "90 s to spare"
        );
        let switch = now + S(120) - BACKOFF_MAX;
        assert_eq!(
            s.secret_failed(0, switch - Duration::from_millis(1)),
            BACKOFF_MAX
        );
        assert_eq!(s.secret_failed(0, switch), BACKOFF_URGENT_MAX);
        assert_eq!(s.secrets[0].next, switch + BACKOFF_URGENT_MAX);
        // Dead and wiped, it is still retried urgently until replaced.
        assert_eq!(s.expire(now + S(120)), vec![0]);
        assert_eq!(
            s.secret_failed(0, now + S(125)),
            BACKOFF_URGENT_MAX,
            "lapsed"
        );
        // Replaced: a fresh backoff and a relaxed cap again.
        let later = now + S(130);
        s.fetched(0, lease(120, true), S(300), later);
        assert_eq!(s.secret_failed(0, later), BACKOFF_BASE);
        assert_eq!(saturated(&mut s, Some(0), later), BACKOFF_MAX);
        // A renewal that brought the end within the cap makes it urgent too.
        s.renewed(
            0,
            Grant {
                ttl: S(20),
                renewable: true,
            },
            later,
        );
        assert_eq!(saturated(&mut s, Some(0), later), BACKOFF_URGENT_MAX);
    }

    #[test]
    fn what_is_never_fetched_or_near_its_end_is_urgent_and_an_unleased_refresh_is_not() {
        let now = Instant::now();
        let mut s = sched(3, 1.0, now);
        assert_eq!(
            saturated(&mut s, Some(0), now),
            BACKOFF_URGENT_MAX,
            "nothing held yet"
        );
        s.fetched(1, None, S(300), now);
        assert_eq!(
            saturated(&mut s, Some(1), now),
            BACKOFF_MAX,
            "a kv2 value does not lapse"
        );
        s.issued(2, S(20), 2.0 / 3.0, now);
        assert_eq!(
            saturated(&mut s, Some(2), now),
            BACKOFF_URGENT_MAX,
            "a certificate 20 s from its end"
        );
        s.issued(2, S(3600), 2.0 / 3.0, now);
        assert_eq!(saturated(&mut s, Some(2), now), BACKOFF_MAX);
        // An adopted lease counts from what is left of it.
        s.adopted(1, lease(10, true), S(60), S(300), now);
        assert_eq!(saturated(&mut s, Some(1), now), BACKOFF_URGENT_MAX);
    }

    #[test]
    fn a_token_is_retried_urgently_near_or_past_its_end() {
        let now = Instant::now();
        let mut s = sched(0, 1.0, now);
        assert_eq!(
            saturated(&mut s, None, now),
            BACKOFF_URGENT_MAX,
            "no token yet"
        );
        let hour = Grant {
            ttl: S(3600),
            renewable: true,
        };
        s.logged_in(hour, now);
        assert_eq!(saturated(&mut s, None, now), BACKOFF_MAX);
        let switch = now + S(3600) - BACKOFF_MAX;
        assert_eq!(
            s.token_failed(switch - Duration::from_millis(1)),
            BACKOFF_MAX
        );
        assert_eq!(s.token_failed(switch), BACKOFF_URGENT_MAX);
        s.token_renewed(hour, now);
        assert_eq!(saturated(&mut s, None, now), BACKOFF_MAX);
        s.token_renewed(
            Grant {
                ttl: S(25),
                renewable: true,
            },
            now,
        );
        assert_eq!(
            saturated(&mut s, None, now),
            BACKOFF_URGENT_MAX,
            "max TTL near"
        );
        s.logged_in(hour, now);
        s.relogin_now(now);
        assert_eq!(
            saturated(&mut s, None, now),
            BACKOFF_URGENT_MAX,
            "refused: gone"
        );
        s.logged_in(
            Grant {
                ttl: Duration::ZERO,
                renewable: false,
            },
            now,
        );
        assert_eq!(saturated(&mut s, None, now), BACKOFF_MAX, "never lapses");
        s.token_adopted(
            Grant {
                ttl: S(10),
                renewable: true,
            },
            S(3600),
            now,
        );
        assert_eq!(saturated(&mut s, None, now), BACKOFF_URGENT_MAX);
    }

    #[test]
    fn renewal_point_is_the_threshold_less_up_to_ten_percent() {
        assert_eq!(renew_after(S(100), 0.5, &mut Fixed(1.0)), S(50));
        assert_eq!(renew_after(S(100), 0.5, &mut Fixed(0.0)), S(45));
        let r = renew_after(S(30), 0.66, &mut RandomJitter);
        assert!(r <= Duration::from_secs_f64(19.8) && r >= Duration::from_secs_f64(17.82));
    }

    #[test]
    fn a_certificate_is_reissued_at_its_fraction_of_validity_before_it_expires() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        // The threshold (0.5) is for leases; a certificate has its own fraction.
        s.issued(0, S(12), 2.0 / 3.0, now);
        let t = &s.secrets[0];
        assert_eq!(
            (t.due, t.next, t.expires),
            (Due::Rotate, now + S(8), Some(now + S(12)))
        );
        let mut s = sched(1, 0.0, now);
        s.issued(0, S(12), 2.0 / 3.0, now);
        assert_eq!(s.secrets[0].next, now + Duration::from_millis(7200));
        assert_eq!(
            s.next(now + S(7), None),
            Step::Sleep(now + Duration::from_millis(7200))
        );
        assert_eq!(
            s.expire(now + S(12)),
            vec![0],
            "dead at the end of its validity"
        );
    }

    #[test]
    fn an_adopted_certificate_keeps_the_reissue_point_of_its_original_validity() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        // Issued 5 s ago for 12 s: re-issued at 8 s of it, 3 s from now; dead in 7.
        s.issued_earlier(0, S(12), S(5), 2.0 / 3.0, now);
        let t = &s.secrets[0];
        assert_eq!(
            (t.due, t.next, t.expires),
            (Due::Rotate, now + S(3), Some(now + S(7)))
        );
        // Past its point (issued 10 s ago) but still valid: re-issued at once.
        s.issued_earlier(0, S(12), S(10), 2.0 / 3.0, now);
        assert_eq!(s.secrets[0].next, now);
        assert_eq!(s.secrets[0].expires, Some(now + S(2)));
        assert_eq!(s.next(now, None), Step::Secret(0));
        // Nothing elapsed: the same as a fresh issuance.
        let mut fresh = sched(1, 0.0, now);
        fresh.issued(0, S(12), 2.0 / 3.0, now);
        let mut adopted = sched(1, 0.0, now);
        adopted.issued_earlier(0, S(12), Duration::ZERO, 2.0 / 3.0, now);
        assert_eq!(
            (fresh.secrets[0].next, fresh.secrets[0].expires),
            (adopted.secrets[0].next, adopted.secrets[0].expires)
        );
    }

    #[test]
    fn renewable_lease_is_renewed_at_the_threshold_and_expires_at_its_ttl() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        assert_eq!(
            s.next(now, None),
            Step::Secret(0),
            "first fetch is due at once"
        );
        s.fetched(0, lease(60, true), S(300), now);
        let t = &s.secrets[0];
        assert_eq!(
            (t.due, t.next, t.expires),
            (Due::Renew, now + S(30), Some(now + S(60)))
        );
        assert_eq!(s.next(now, None), Step::Sleep(now + S(30)));
        // Granted in full: renew again, the expiry moves.
        let later = now + S(30);
        assert!(!s.renewed(
            0,
            Grant {
                ttl: S(60),
                renewable: true
            },
            later
        ));
        let t = &s.secrets[0];
        assert_eq!(
            (t.due, t.next, t.expires),
            (Due::Renew, later + S(30), Some(later + S(60)))
        );
    }

    #[test]
    fn renewal_shorter_than_asked_replaces_the_lease_before_it_expires() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        s.fetched(0, lease(60, true), S(300), now);
        let later = now + S(30);
        // The max TTL cut the renewal to 20 s (of the 60 asked).
        assert!(s.renewed(
            0,
            Grant {
                ttl: S(20),
                renewable: true
            },
            later
        ));
        let t = s.secrets[0].clone();
        assert_eq!(t.due, Due::Rotate);
        assert_eq!(t.expires, Some(later + S(20)));
        assert_eq!(t.next, later + S(10));
        assert!(
            t.next < t.expires.unwrap(),
            "replaced before the old one dies"
        );
        // The increment asked stays the first TTL, not the shortened one.
        assert_eq!(t.first_ttl, S(60));
    }

    #[test]
    fn renewal_that_is_no_longer_renewable_is_capped() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        s.fetched(0, lease(60, true), S(300), now);
        assert!(s.renewed(
            0,
            Grant {
                ttl: S(60),
                renewable: false
            },
            now
        ));
        assert_eq!(s.secrets[0].due, Due::Rotate);
    }

    #[test]
    fn non_renewable_lease_is_replaced_at_the_threshold() {
        let now = Instant::now();
        let mut s = sched(1, 0.0, now);
        s.fetched(0, lease(100, false), S(300), now);
        let t = &s.secrets[0];
        assert_eq!(
            (t.due, t.next, t.expires),
            (Due::Rotate, now + S(45), Some(now + S(100)))
        );
    }

    #[test]
    fn unleased_and_zero_ttl_secrets_are_refreshed() {
        let now = Instant::now();
        let mut s = sched(2, 1.0, now);
        s.fetched(0, None, S(300), now);
        s.fetched(1, lease(0, true), S(120), now);
        assert_eq!(
            (s.secrets[0].due, s.secrets[0].next),
            (Due::Refresh, now + S(300))
        );
        assert_eq!(
            (s.secrets[1].due, s.secrets[1].expires),
            (Due::Refresh, None)
        );
        s.unchanged(1, S(120), now + S(120));
        assert_eq!(s.secrets[1].next, now + S(240));
        assert_eq!(s.next(now, None), Step::Sleep(now + S(240)));
    }

    #[test]
    fn a_lease_past_its_expiry_is_replaced_at_once() {
        let now = Instant::now();
        let mut s = sched(2, 1.0, now);
        s.fetched(0, lease(10, true), S(300), now);
        s.fetched(1, lease(100, true), S(300), now);
        assert!(s.expire(now + S(9)).is_empty());
        // Exactly at the expiry instant the lease is dead.
        let at = now + S(10);
        assert_eq!(s.expire(at), vec![0]);
        let t = &s.secrets[0];
        assert_eq!((t.due, t.next, t.expires), (Due::Rotate, at, None));
        assert_eq!(s.next(at, None), Step::Secret(0));
        assert!(s.expire(at).is_empty(), "expired once");
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        assert_eq!(s.secret_failed(0, now), BACKOFF_BASE);
        assert_eq!(s.secret_failed(0, now), BACKOFF_BASE * 2);
        assert_eq!(s.secrets[0].next, now + BACKOFF_BASE * 2);
        s.fetched(0, lease(60, true), S(300), now);
        assert_eq!(s.secret_failed(0, now), BACKOFF_BASE);
        assert_eq!(s.token_failed(now), BACKOFF_BASE);
        assert_eq!(s.token_failed(now), BACKOFF_BASE * 2);
        s.logged_in(
            Grant {
                ttl: S(60),
                renewable: true,
            },
            now,
        );
        assert_eq!(s.token_failed(now), BACKOFF_BASE);
    }

    #[test]
    fn a_relogin_fetches_every_secret_now_with_fresh_backoff() {
        let now = Instant::now();
        let mut s = sched(2, 1.0, now);
        s.fetched(0, lease(60, true), S(300), now);
        s.fetched(1, None, S(300), now);
        s.secret_failed(0, now);
        s.secret_failed(0, now);
        let later = now + S(5);
        s.refetch_all_now(later);
        for t in &s.secrets {
            assert_eq!((t.due, t.next), (Due::Rotate, later));
        }
        assert_eq!(s.secret_failed(0, later), BACKOFF_BASE);
    }

    #[test]
    fn token_renewed_short_leads_to_a_new_login() {
        let now = Instant::now();
        let mut s = sched(0, 1.0, now);
        s.logged_in(
            Grant {
                ttl: S(3600),
                renewable: true,
            },
            now,
        );
        assert_eq!((s.token.next, s.token.renew), (Some(now + S(1800)), true));
        s.token_renewed(
            Grant {
                ttl: S(3600),
                renewable: true,
            },
            now,
        );
        assert!(s.token.renew);
        s.token_renewed(
            Grant {
                ttl: S(600),
                renewable: true,
            },
            now,
        );
        assert!(!s.token.renew, "capped by its max TTL");
        assert_eq!(s.token.next, Some(now + S(300)));
        s.relogin_now(now);
        assert_eq!(s.next(now, None), Step::Token);
    }

    #[test]
    fn token_without_ttl_is_never_scheduled() {
        let now = Instant::now();
        let mut s = sched(0, 1.0, now);
        s.logged_in(
            Grant {
                ttl: Duration::ZERO,
                renewable: false,
            },
            now,
        );
        assert_eq!(s.token.next, None);
        assert_eq!(s.next(now, None), Step::Sleep(now + IDLE), "idle wake-up");
    }

    #[test]
    fn next_prefers_the_token_then_the_first_due_secret_then_the_earliest_deadline() {
        let now = Instant::now();
        let mut s = sched(3, 1.0, now);
        s.logged_in(
            Grant {
                ttl: S(100),
                renewable: true,
            },
            now,
        );
        for i in 0..3 {
            s.fetched(i, lease(100 + 10 * i as u64, true), S(300), now);
        }
        // Deadline equal to now is due.
        assert_eq!(s.next(now + S(50), None), Step::Token);
        s.token_renewed(
            Grant {
                ttl: S(100),
                renewable: true,
            },
            now + S(50),
        );
        assert_eq!(s.next(now + S(55), None), Step::Secret(0));
        assert_eq!(s.next(now + S(49), None), Step::Sleep(now + S(50)));
        // Another deadline (a retired value's end) earlier than all of them.
        assert_eq!(s.next(now, Some(now + S(1))), Step::Sleep(now + S(1)));
    }

    #[test]
    fn an_expiry_before_the_renewal_point_wakes_the_engine() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        s.fetched(0, lease(60, true), S(300), now);
        // Renewal failing for a while: the retry lands after the expiry.
        s.secrets[0].next = now + S(90);
        assert_eq!(s.next(now, None), Step::Sleep(now + S(60)));
    }

    #[test]
    fn huge_ttls_do_not_overflow_the_clock() {
        let now = Instant::now();
        let mut s = sched(1, 1.0, now);
        s.fetched(0, lease(u64::MAX, true), S(300), now);
        assert!(s.secrets[0].next > now + S(3600 * 24 * 365));
        assert!(s.secrets[0].expires.unwrap() > now);
        s.logged_in(
            Grant {
                ttl: Duration::MAX,
                renewable: true,
            },
            now,
        );
        assert_eq!(
            renew_after(Duration::MAX, 1.0, &mut Fixed(1.0)),
            Duration::MAX
        );
        assert!(s.token.next.unwrap() > now);
    }

    #[test]
    fn adopted_leases_and_tokens_keep_their_first_ttl() {
        let now = Instant::now();
        let mut s = Schedule::new(2, 0.5, now, Box::new(Fixed(1.0)));
        let left = Grant {
            ttl: Duration::from_secs(40),
            renewable: true,
        };
        s.token_adopted(left, Duration::from_secs(3600), now);
        assert_eq!(s.token.next, Some(now + Duration::from_secs(20)));
        assert!(s.token.renew);
        assert_eq!(s.token_first_ttl(), Duration::from_secs(3600));
        s.adopted(
            0,
            Some(left),
            Duration::from_secs(60),
            Duration::from_secs(300),
            now,
        );
        let t = &s.secrets[0];
        assert_eq!((t.due, t.next), (Due::Renew, now + Duration::from_secs(20)));
        assert_eq!(t.expires, Some(now + Duration::from_secs(40)));
        // Renewals ask for the original TTL, and getting it is not "capped".
        assert_eq!(t.first_ttl, Duration::from_secs(60));
        let full = Grant {
            ttl: Duration::from_secs(60),
            renewable: true,
        };
        assert!(!s.renewed(0, full, now));
        s.adopted(1, None, Duration::ZERO, Duration::from_secs(300), now);
        let t = &s.secrets[1];
        assert_eq!(
            (t.due, t.next),
            (Due::Refresh, now + Duration::from_secs(300))
        );
    }
}
