//! Delivery runs on threads of its own, below the API's priority.
//!
//! A platform waiting on a `202` is waiting on us; a message already
//! accepted is on disk and loses nothing by starting a few milliseconds
//! later. When both compete for the CPU, the kernel serves the API first and
//! delivery drains the queue with what is left, so a burst is absorbed
//! instead of slowing every caller down.

use crate::config::DispatchConfig;

/// The dispatcher's and the callback sender's runtime, its worker threads at
/// `dispatch.nice` (Linux; elsewhere at normal priority).
pub struct DeliveryRuntime(Option<tokio::runtime::Runtime>);

impl DeliveryRuntime {
    pub fn start(config: &DispatchConfig) -> std::io::Result<Self> {
        let nice = config.nice;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("crossgate-delivery")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()?;
        Ok(DeliveryRuntime(Some(runtime)))
    }

    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0
            .as_ref()
            .expect("runtime present until dropped")
            .spawn(task)
    }
}

impl Drop for DeliveryRuntime {
    /// Dropped from async code (`serve`), where a blocking shutdown would
    /// panic; what is left by then is idle connections and timers.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // On Linux a nice value belongs to a thread, so this leaves the API's
    // threads and the store's writer as they are.
    // SAFETY: gettid and setpriority have no memory-safety preconditions.
    let done = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if done != 0 {
        tracing::warn!(
            nice,
            "cannot lower the delivery threads' priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}
