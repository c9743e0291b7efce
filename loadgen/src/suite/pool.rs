//! Runs jobs on a bounded pool of threads and hands the results back in input order,
//! each as soon as it and every result before it are done, so the console reads the
//! same whatever the pool size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Runs `job` on every item with at most `threads` at a time and calls `done` with
/// each result in item order. With `threads <= 1` everything runs on the calling
/// thread, one item after another.
pub fn run_in_order<T, R, J, D>(items: &[T], threads: usize, job: J, mut done: D)
where
    T: Sync,
    R: Send,
    J: Fn(&T) -> R + Sync,
    D: FnMut(usize, R),
{
    if threads <= 1 || items.len() <= 1 {
        for (i, item) in items.iter().enumerate() {
            done(i, job(item));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    let work = |tx: mpsc::Sender<(usize, R)>| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { break };
        if tx.send((i, job(item))).is_err() {
            break;
        }
    };
    std::thread::scope(|scope| {
        let mut spawned = 0;
        for w in 0..threads.min(items.len()) {
            let tx = tx.clone();
            let work = &work;
            let ok = std::thread::Builder::new()
                .name(format!("scenario-{w}"))
                .spawn_scoped(scope, move || work(tx))
                .is_ok();
            spawned += usize::from(ok);
        }
        if spawned == 0 {
            // No thread could be started: run everything here instead.
            work(tx);
        } else {
            drop(tx);
        }
        let mut pending: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
        let mut emitted = 0;
        for (i, r) in rx {
            pending[i] = Some(r);
            while let Some(r) = pending.get_mut(emitted).and_then(Option::take) {
                done(emitted, r);
                emitted += 1;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::run_in_order;
    use std::time::Duration;

    #[test]
    fn results_come_back_in_input_order() {
        let items: Vec<u64> = (0..12).collect();
        for threads in [1, 2, 3] {
            let mut seen = Vec::new();
            run_in_order(
                &items,
                threads,
                |&n| {
                    // Later items finish first.
                    std::thread::sleep(Duration::from_millis(12 - n));
                    n * 10
                },
                |i, r| seen.push((i, r)),
            );
            let want: Vec<(usize, u64)> = (0..12).map(|n| (n as usize, n * 10)).collect();
            assert_eq!(seen, want, "threads {threads}");
        }
    }
}
