//! Building a set on more than one core: a set is built before the first
//! byte of output (`shroud redact`, `shroud exec` at start), so its wall time
//! is a delay every stream sees. The result never depends on the thread count.

use std::ops::Range;

/// Below this many secrets a set builds in well under a millisecond on one
/// thread, less than starting another costs.
const PARALLEL_FROM: usize = 1_000;

/// Most threads a build uses: its two halves (the unit sort and the window
/// index) and the forms of two halves of the secrets.
const MAX_THREADS: usize = 2;

/// How many threads to build a set of `secrets` values on.
pub(crate) fn threads_for(secrets: usize) -> usize {
    if secrets < PARALLEL_FROM {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// `f` over `threads` consecutive parts of `0..n` (about equal; fewer parts
/// when `n` is small), the first on the calling thread; the results in order.
pub(crate) fn run<T, F>(threads: usize, n: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> T + Sync,
{
    let parts = threads.clamp(1, n.max(1));
    let size = n.div_ceil(parts);
    let ranges: Vec<Range<usize>> = (0..parts)
        .map(|i| (i * size).min(n)..((i + 1) * size).min(n))
        .collect();
    if parts == 1 {
        return ranges.into_iter().map(&f).collect();
    }
    std::thread::scope(|s| {
        let f = &f;
        let spawned: Vec<_> = ranges[1..]
            .iter()
            .map(|r| s.spawn(move || f(r.clone())))
            .collect();
        let mut out = vec![f(ranges[0].clone())];
        out.extend(spawned.into_iter().map(join));
        out
    })
}

/// `a()` and `b()`, on two threads when `threads` is more than one.
pub(crate) fn both<A, B>(
    threads: usize,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B)
where
    A: Send,
    B: Send,
{
    if threads < 2 {
        return (a(), b());
    }
    std::thread::scope(|s| {
        let b = s.spawn(b);
        let a = a();
        (a, join(b))
    })
}

/// A scoped thread's result; its panic goes on in the caller.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_range_in_order() {
        for threads in 1..5 {
            for n in [0, 1, 2, 3, 7, 100] {
                let parts = run(threads, n, |r| r);
                let joined: Vec<usize> = parts.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(joined, (0..n).collect::<Vec<_>>(), "{threads} threads, {n}");
                assert!(parts.len() <= threads.max(1));
            }
        }
        assert_eq!(both(2, || 1, || "b"), (1, "b"));
        assert_eq!(both(1, || 1, || "b"), (1, "b"));
    }

    #[test]
    fn a_panic_in_a_thread_reaches_the_caller() {
        let caught =
            std::panic::catch_unwind(|| both(2, || 0, || -> u8 { panic!("in the second thread") }));
        assert!(caught.is_err());
    }
}
