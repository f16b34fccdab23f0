//! The threads conversions run on: `workers` dedicated threads at a lowered scheduling priority (a higher nice
//! value), instead of tokio's blocking pool at the runtime's priority.
//!
//! When conversions keep every core busy, a runtime thread that wakes up to read an upload, write its record
//! and answer 202 competes for the CPU with them. At the same priority it waits its turn behind a running
//! conversion (the gateway's p99 measured 1.75 s with both cores converting); at a lower priority for the
//! conversions, the kernel runs the waking runtime thread at once and conversions take the remaining time,
//! which on an idle machine is all of it. The threads are dedicated because tokio's blocking pool also runs the
//! storage I/O of the local file store, which must keep the runtime's priority.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

/// A unit of CPU work, run once on one of the threads.
type Task = Box<dyn FnOnce() + Send + 'static>;

/// Why work handed to the pool produced no result.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    /// The work panicked; the thread survives and takes the next task.
    #[error("the conversion panicked")]
    Panicked,
    /// The pool is gone (the process is shutting down).
    #[error("the conversion threads have stopped")]
    Stopped,
}

/// A fixed set of low-priority threads taking tasks from one queue. Callers bound how many tasks are queued
/// (the pipeline's CPU semaphore hands out one permit per thread), so the queue never grows.
pub(crate) struct CpuPool {
    sender: Mutex<Option<mpsc::Sender<Task>>>,
    /// No thread could be started: work runs on tokio's blocking pool.
    fallback: bool,
}

impl CpuPool {
    /// Starts `threads` threads (at least one) named `sluice-convert-N`, each lowering its own priority by
    /// `nice` (0 keeps the caller's; lowering never needs privileges). A priority that cannot be set is
    /// logged and the thread runs anyway; when no thread can be started at all, work goes to tokio's
    /// blocking pool instead.
    pub(crate) fn start(threads: usize, nice: i32) -> Self {
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut started = 0;
        for index in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new().name(format!("sluice-convert-{index}")).spawn(move || {
                lower_own_priority(nice);
                while let Some(task) = next_task(&receiver) {
                    task();
                }
            });
            match spawned {
                Ok(_) => started += 1,
                Err(error) => tracing::error!(%error, "cannot start a conversion thread"),
            }
        }
        let sender = if started > 0 { Some(sender) } else { None };
        Self { sender: Mutex::new(sender), fallback: started == 0 }
    }

    /// Runs `work` on one of the threads; the returned future resolves to its result. Dropping the future
    /// (a timeout) does not stop the work: it runs to its end and its result is discarded.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> BoxFuture<'static, Result<T, PoolError>> {
        if self.fallback {
            let handle = tokio::task::spawn_blocking(work);
            return async move { handle.await.map_err(|_| PoolError::Panicked) }.boxed();
        }
        let (done, result) = oneshot::channel();
        let task: Task = Box::new(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(work)).map_err(|_| PoolError::Panicked);
            let _ = done.send(outcome); // nobody waiting any more: the result is dropped
        });
        let sent = match self.sender.lock() {
            Ok(sender) => sender.as_ref().is_some_and(|sender| sender.send(task).is_ok()),
            Err(_) => false,
        };
        async move {
            if !sent {
                return Err(PoolError::Stopped);
            }
            result.await.unwrap_or(Err(PoolError::Stopped))
        }
        .boxed()
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        // Closing the queue ends each thread once it finishes its current task.
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
    }
}

/// The next task for a pool thread, waiting for one; `None` once the pool is dropped. A thread that finds no
/// task waiting first frees the image-sized buffers it kept from its last conversion, so an idle service does
/// not hold them. The lock is held only while waiting for a task, never while running one.
fn next_task(receiver: &Mutex<mpsc::Receiver<Task>>) -> Option<Task> {
    match receiver.lock().ok()?.try_recv() {
        Ok(task) => return Some(task),
        Err(mpsc::TryRecvError::Disconnected) => return None,
        Err(mpsc::TryRecvError::Empty) => {}
    }
    sluice_convert::release_thread_buffers();
    receiver.lock().ok()?.recv().ok()
}

/// Adds `nice` to the calling thread's nice value (Linux: `setpriority` on the thread id affects that thread
/// only). Elsewhere, or when `nice` is 0, nothing changes.
fn lower_own_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
        if let Err(error) = rustix::process::setpriority_process(Some(thread), (current + nice).min(19)) {
            tracing::warn!(%error, nice, "cannot lower the priority of a conversion thread; it runs at the default");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_lowered_thread_and_panics_become_errors() {
        let pool = CpuPool::start(2, 7);
        let baseline = rustix::process::getpriority_process(None).unwrap();
        let (name, nice) = pool
            .run(|| {
                let name = std::thread::current().name().map(str::to_owned);
                (name, rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap())
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("sluice-convert-"));
        assert_eq!(nice, (baseline + 7).min(19));
        assert!(matches!(pool.run(|| panic!("boom")).await, Err(PoolError::Panicked)));
        // The thread that caught the panic keeps serving.
        let sums: Vec<u64> = futures::future::join_all((0..4u64).map(|n| pool.run(move || (0..=n).sum())))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(sums, vec![0, 1, 3, 6]);
    }

    #[tokio::test]
    async fn a_dropped_pool_refuses_work() {
        let pool = CpuPool::start(1, 0);
        let pending = {
            let sender = pool.sender.lock().unwrap().take();
            drop(sender);
            pool.run(|| 1)
        };
        assert!(matches!(pending.await, Err(PoolError::Stopped)));
    }
}
