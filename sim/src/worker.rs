//! The machine's other core: one thread that runs the side work of a run
//! (validators' audits, the welfare benchmark's solver), job after job in
//! the order they were handed over.
//!
//! Side work is work no node waits for: its results are joined by the
//! observer at points fixed by the sequence of events (see
//! [`crate::audit`]), so the run is the same with a worker or without.
//! One thread for all of it, not one per kind: a thread of its own keeps
//! its own allocator heap, and a second solver heap beside the engine's
//! cost up to +11 % peak memory on runs with large clearings; sharing the
//! audits' thread lets the two reuse each other's freed pages.
//!
//! ```
//! use idlegrid_sim::worker::Worker;
//!
//! let worker = Worker::spawn().expect("a thread");
//! let answer = worker.submit(|| 6 * 7).expect("running");
//! assert_eq!(answer.recv(), Ok(42));
//! ```

use std::rc::Rc;
use std::sync::mpsc;
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

struct Thread {
    send: Option<mpsc::Sender<Job>>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Thread {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has run what is queued.
        drop(self.send.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A handle on the worker thread; clones share it, and the thread ends
/// (after its queued jobs) when the last handle is dropped.
#[derive(Clone)]
pub struct Worker(Rc<Thread>);

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts the thread; `None` if it cannot be spawned (callers then run
    /// their work inline).
    pub fn spawn() -> Option<Self> {
        let (send, inbox) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("side-work".into())
            .spawn(move || {
                for job in inbox {
                    job();
                }
            })
            .ok()?;
        Some(Self(Rc::new(Thread {
            send: Some(send),
            handle: Some(handle),
        })))
    }

    /// Queues `job`; its answer arrives on the returned receiver, which
    /// reports an error instead if the thread died before answering (a
    /// job panicked). `None` if the thread is gone already.
    pub fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<mpsc::Receiver<T>> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(job());
        });
        let send = self.0.send.as_ref()?;
        send.send(job).ok().map(|()| answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_and_a_panic_reports_as_an_error_not_a_hang() {
        let w = Worker::spawn().expect("spawn");
        let shared = w.clone();
        let answers: Vec<_> = (0..20u32)
            .map(|i| shared.submit(move || i * i).expect("running"))
            .collect();
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(a.recv(), Ok((i * i) as u32));
        }
        let dies = w
            .submit(|| -> u32 { panic!("a broken job") })
            .expect("queued");
        assert!(
            dies.recv().is_err(),
            "the thread died: an error, not a hang"
        );
        // Once dead, later jobs are refused or never answered, never hang.
        if let Some(after) = w.submit(|| 1u32) {
            assert!(after.recv().is_err());
        }
    }
}
