//! The secret set shared by every output stream, swappable while they run, and
//! the values registered at run time (`::add-mask::`, `shroud mask add`, the
//! environment) that every later set keeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use shroud_redactor::{Lengths, SecretSet, SecretSetBuilder};
use zeroize::Zeroizing;

/// A named value, zeroized on drop.
type Named = (String, Zeroizing<Vec<u8>>);

/// The current redaction set and a counter that changes on every swap, so a
/// stream can notice a swap with one atomic load per read.
pub struct LiveSet {
    current: ArcSwap<SecretSet>,
    swaps: AtomicU64,
    extra: Mutex<Extra>,
    on_register: Mutex<Option<OnRegister>>,
}

/// Told every registered value after each registration (exec publishes them
/// for the other execs of a pod).
pub type OnRegister = Box<dyn Fn(&[Named]) + Send + Sync>;

impl std::fmt::Debug for LiveSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSet")
            .field("current", &self.current)
            .field("swaps", &self.swaps)
            .field("extra", &self.extra)
            .finish()
    }
}

/// What a set is rebuilt from when a value is registered.
struct Extra {
    /// How the set is built (minimum length, piece length).
    lengths: Lengths,
    /// The values the current set was built from (the sources' values).
    base: Vec<Named>,
    /// Values registered at run time, kept for the whole run.
    registered: Vec<Named>,
}

impl std::fmt::Debug for Extra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extra")
            .field("base", &self.base.len())
            .field("registered", &self.registered.len())
            .finish()
    }
}

/// What registering a value did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// Added; the set now in force masks it.
    Added,
    /// It was registered already.
    Known,
    /// Shorter than the minimum length: not masked on its own.
    TooShort,
}

impl LiveSet {
    /// Starts with `set`, built from no value that a registration must keep.
    pub fn new(set: SecretSet) -> Self {
        LiveSet {
            current: ArcSwap::from_pointee(set),
            swaps: AtomicU64::new(0),
            extra: Mutex::new(Extra {
                lengths: Lengths::default(),
                base: Vec::new(),
                registered: Vec::new(),
            }),
            on_register: Mutex::new(None),
        }
    }

    /// Calls `hook` after every registration from now on, and now when values
    /// are registered already.
    pub fn set_on_register(&self, hook: OnRegister) {
        let registered = self.registered();
        if !registered.is_empty() {
            hook(&registered);
        }
        *self.on_register.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// The set now in force.
    pub fn load(&self) -> Arc<SecretSet> {
        self.current.load_full()
    }

    /// Replaces the set. Every byte a stream reads after this returns is examined
    /// against the new set (streams check [`LiveSet::swaps`] after each read).
    /// Registered values are not in `set`: callers that may run with
    /// registrations use [`LiveSet::store_based`].
    pub fn store(&self, set: SecretSet) {
        self.current.store(Arc::new(set));
        self.swaps.fetch_add(1, Ordering::Release);
    }

    /// Records the values the current set was built from, so a registration
    /// rebuilds from them (the set built at start-up).
    pub fn remember_base<'a>(
        &self,
        lengths: Lengths,
        base: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        extra.lengths = lengths;
        extra.base = base
            .into_iter()
            .map(|(n, v)| (n.to_string(), Zeroizing::new(v.to_vec())))
            .collect();
    }

    /// Replaces the set with `set`, built from `base`; with registered values,
    /// the set stored is rebuilt from `base` and them.
    pub fn store_based<'a>(
        &self,
        set: SecretSet,
        lengths: Lengths,
        base: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) {
        self.remember_base(lengths, base);
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        if extra.registered.is_empty() {
            self.store(set);
        } else {
            drop(set);
            self.store(build(&extra));
        }
    }

    /// Adds `value` to the set for the rest of the run; returns once the set in
    /// force masks it.
    pub fn register(&self, name: &str, value: &[u8]) -> Registered {
        self.register_all(&[(name, value)])[0]
    }

    /// [`LiveSet::register`] for several values with one rebuild of the set
    /// (a rebuild with 1,000 secrets costs about 20 ms of CPU: the environment's
    /// values are registered together at start-up). One answer per value.
    pub fn register_all(&self, values: &[(&str, &[u8])]) -> Vec<Registered> {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        let answers: Vec<Registered> = values
            .iter()
            .map(|&(name, value)| {
                if value.len() < extra.lengths.min {
                    Registered::TooShort
                } else if extra.registered.iter().any(|(_, v)| v.as_slice() == value) {
                    Registered::Known
                } else {
                    extra
                        .registered
                        .push((name.to_string(), Zeroizing::new(value.to_vec())));
                    Registered::Added
                }
            })
            .collect();
        if !answers.contains(&Registered::Added) {
            return answers;
        }
        self.store(build(&extra));
        let registered = extra.registered.clone();
        drop(extra);
        self.tell(&registered);
        answers
    }

    /// Records values as registered that the current set was already built
    /// with (start-up: the environment's values go into the first build
    /// instead of a second one). Values shorter than the minimum length or
    /// registered already are left out, as [`LiveSet::register`] would.
    pub fn remember_registered(&self, values: &[(&str, &[u8])]) {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        for &(name, value) in values {
            if value.len() >= extra.lengths.min
                && !extra.registered.iter().any(|(_, v)| v.as_slice() == value)
            {
                extra
                    .registered
                    .push((name.to_string(), Zeroizing::new(value.to_vec())));
            }
        }
        let registered = extra.registered.clone();
        drop(extra);
        if !registered.is_empty() {
            self.tell(&registered);
        }
    }

    fn tell(&self, registered: &[Named]) {
        if let Some(hook) = self
            .on_register
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            hook(registered);
        }
    }

    /// The registered values (for publishing them to other execs).
    pub fn registered(&self) -> Vec<Named> {
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        extra.registered.clone()
    }

    /// The minimum length values are masked from.
    pub fn min_length(&self) -> usize {
        self.extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lengths
            .min
    }

    /// How many times the set was replaced.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Acquire)
    }
}

fn build(extra: &Extra) -> SecretSet {
    let mut builder = SecretSetBuilder::new().lengths(extra.lengths);
    for (name, value) in extra.base.iter().chain(&extra.registered) {
        builder.add(name.clone(), value);
    }
    builder.build().0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks(live: &LiveSet, text: &[u8]) -> Vec<u8> {
        let mut r = shroud_redactor::Redactor::new(live.load());
        let mut out = Vec::new();
        r.write(text, &mut out);
        r.finish(&mut out);
        out
    }

    #[test]
    fn registered_values_survive_every_later_set() {
        let live = LiveSet::new(SecretSet::empty());
        live.remember_base(
            Lengths {
                min: 6,
                ..Lengths::default()
            },
            [("a", b"first-secret".as_slice())],
        );
        assert_eq!(
            live.register("add-mask", b"minted-token"),
            Registered::Added
        );
        assert_eq!(
            live.register("add-mask", b"minted-token"),
            Registered::Known
        );
        assert_eq!(live.register("add-mask", b"short"), Registered::TooShort);
        assert_eq!(
            masks(&live, b"first-secret minted-token"),
            b"[REDACTED] [REDACTED]"
        );
        // A rotation's new set keeps the registered value.
        let mut b = SecretSetBuilder::new().min_length(6);
        b.add("a", b"second-secret");
        live.store_based(
            b.build().0,
            Lengths {
                min: 6,
                ..Lengths::default()
            },
            [("a", b"second-secret".as_slice())],
        );
        assert_eq!(
            masks(&live, b"first-secret second-secret minted-token"),
            b"first-secret [REDACTED] [REDACTED]"
        );
    }

    #[test]
    fn several_values_register_with_one_rebuild() {
        let live = LiveSet::new(SecretSet::empty());
        let lengths = Lengths {
            min: 6,
            ..Lengths::default()
        };
        live.remember_base(lengths, std::iter::empty());
        let swaps = live.swaps();
        let answers = live.register_all(&[
            ("a", b"first-token".as_slice()),
            ("b", b"short"),
            ("c", b"first-token"),
            ("d", b"second-token"),
        ]);
        use Registered::*;
        assert_eq!(answers, vec![Added, TooShort, Known, Added]);
        assert_eq!(live.swaps(), swaps + 1);
        assert_eq!(
            masks(&live, b"first-token second-token short"),
            b"[REDACTED] [REDACTED] short"
        );
        // Nothing new: no rebuild.
        assert_eq!(live.register_all(&[("a", b"first-token")]), vec![Known]);
        assert_eq!(live.swaps(), swaps + 1);
    }

    /// Values built into the first set are kept by later sets like values
    /// registered afterwards, without a rebuild of their own.
    #[test]
    fn values_built_in_are_remembered_as_registered() {
        let lengths = Lengths {
            min: 6,
            ..Lengths::default()
        };
        let mut b = SecretSetBuilder::new().lengths(lengths);
        b.add("a", b"first-secret");
        b.add("env:X", b"env-token-123");
        let live = LiveSet::new(b.build().0);
        live.remember_base(lengths, [("a", b"first-secret".as_slice())]);
        live.remember_registered(&[("env:X", b"env-token-123".as_slice()), ("env:Y", b"tiny")]);
        assert_eq!(live.swaps(), 0);
        assert_eq!(live.registered().len(), 1);
        let mut b = SecretSetBuilder::new().lengths(lengths);
        b.add("a", b"second-secret");
        live.store_based(b.build().0, lengths, [("a", b"second-secret".as_slice())]);
        assert_eq!(
            masks(&live, b"first-secret second-secret env-token-123"),
            b"first-secret [REDACTED] [REDACTED]"
        );
    }
}
