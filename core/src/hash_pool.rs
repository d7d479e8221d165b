//! A small, fixed pool of threads for password hashing.
//!
//! One argon2id hash or check with Berth's parameters (m=19 MiB) allocates 19 MiB. On tokio's
//! blocking pool, a burst of sign-ins ran one such hash per request at once, each on whichever
//! blocking thread was free, and the allocator kept every thread's 19 MiB afterwards: eight
//! parallel sign-ins took the process from 32 MB to 188 MB for good. Here at most
//! [`MAX_CONCURRENT_HASHES`] run at once, always on the same long-lived threads, so hashing
//! memory is bounded by that many times 19 MiB however many sign-ins arrive; the others queue
//! (the login rate limits bound the queue). The parameters are unchanged.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// Password hashes (or checks) running at once, process-wide.
pub const MAX_CONCURRENT_HASHES: usize = 2;

type Task = Box<dyn FnOnce() + Send>;

struct Pool {
    tasks: mpsc::Sender<Task>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..MAX_CONCURRENT_HASHES {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("berth-hash-{i}")).spawn(move || loop {
                // The lock is held only while waiting for the next task, never while hashing.
                let task = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                match task {
                    // A panicking task must not take the thread (and the pool) with it; its
                    // caller sees the dropped reply.
                    Ok(task) => drop(std::panic::catch_unwind(AssertUnwindSafe(task))),
                    Err(_) => return,
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "Cannot start a password hashing thread");
            }
        }
        Pool { tasks: tx }
    })
}

/// The pool could not run the task (no thread could be started, or the task panicked).
#[derive(Debug, thiserror::Error)]
#[error("the password hashing pool failed")]
pub struct PoolFailed;

/// Runs `work` on the pool and waits for its result without blocking the async runtime.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolFailed> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let task: Task = Box::new(move || {
        let _ = reply.send(work());
    });
    pool().tasks.send(task).map_err(|_| PoolFailed)?;
    answer.await.map_err(|_| PoolFailed)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn runs_at_most_the_limit_at_once_and_survives_a_panic() {
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                tokio::spawn(run(move || {
                    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                    PEAK.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    RUNNING.fetch_sub(1, Ordering::SeqCst);
                    i
                }))
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.expect("joined").expect("ran"), i);
        }
        assert_eq!(PEAK.load(Ordering::SeqCst), MAX_CONCURRENT_HASHES);
        assert!(run(|| panic!("boom")).await.is_err());
        // The threads are still there afterwards.
        for _ in 0..MAX_CONCURRENT_HASHES * 2 {
            assert_eq!(run(|| 7).await.expect("ran"), 7);
        }
    }
}
