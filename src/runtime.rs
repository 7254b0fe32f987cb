//! Threads, cores and listeners: the thread-per-core runtime every server here runs on.
//!
//! Listeners are bound on the calling thread (so "address in use" is an error from `start`, not
//! a log line from a worker) as one `SO_REUSEPORT` socket per worker; the kernel spreads
//! connections across them and a connection lives and dies on the core that accepted it. Each
//! worker is a pinned thread with its own monoio runtime on io_uring, or epoll where io_uring is
//! not allowed. Each runtime has the `Workers`' small blocking pool attached, so a worker can
//! hand a blocking call (a DNS lookup) to `monoio::spawn_blocking` instead of stalling its core.
//! The gateway and the mock upstream both start through here.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use monoio::blocking::DefaultThreadPool;
use monoio::net::{TcpListener, TcpStream};

use crate::config::IoDriver;
use crate::server::conn::{serve, Handler, Limits};
use crate::shutdown::Shutdown;

/// The I/O driver the workers run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

impl Driver {
    /// Resolves the configured choice against what this kernel and sandbox allow.
    pub fn choose(wanted: IoDriver) -> io::Result<Driver> {
        let available = monoio::utils::detect_uring();
        match wanted {
            IoDriver::Auto if available => Ok(Driver::IoUring),
            IoDriver::Auto | IoDriver::Epoll => Ok(Driver::Epoll),
            IoDriver::IoUring if available => Ok(Driver::IoUring),
            IoDriver::IoUring => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "server.io_driver = \"io_uring\" but io_uring is not available here (old kernel, or blocked by a \
                 seccomp profile); use \"auto\" to fall back to epoll",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

/// How many workers `0` means: one per core this process may run on.
pub fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Binds `count` `SO_REUSEPORT` listeners to `addr`. With port 0 the first bind picks the port
/// and the others join it.
pub fn bind_group(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        socket
            .bind(&addr.into())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        out.push(listener);
    }
    Ok(out)
}

/// How many threads the blocking pool has. Only occasional DNS lookups run there, so two are
/// plenty, and the pool does not grow with the number of workers.
const BLOCKING_THREADS: usize = 2;

/// Worker threads and the signal that stops them.
pub struct Workers {
    pub shutdown: Shutdown,
    threads: Vec<JoinHandle<()>>,
    /// One pool for all workers (clones share its threads); its threads end once the last clone
    /// is dropped.
    blocking: DefaultThreadPool,
}

impl Workers {
    pub fn new(shutdown: Shutdown) -> Workers {
        Workers {
            shutdown,
            threads: Vec::new(),
            blocking: DefaultThreadPool::new(BLOCKING_THREADS),
        }
    }

    /// Starts worker `index`: a thread, pinned if asked, running `setup()`'s future on its own
    /// runtime until the future ends.
    pub fn spawn<S, F>(
        &mut self,
        index: usize,
        pin: bool,
        driver: Driver,
        setup: S,
    ) -> io::Result<()>
    where
        S: FnOnce() -> F + Send + 'static,
        F: Future<Output = ()> + 'static,
    {
        let blocking = self.blocking.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ringgate-w{index}"))
            .spawn(move || {
                if pin {
                    if let Some(cores) = core_affinity::get_core_ids().filter(|c| !c.is_empty()) {
                        core_affinity::set_for_current(cores[index % cores.len()]);
                    }
                }
                let result = match driver {
                    Driver::IoUring => uring_runtime(&blocking).map(|mut rt| rt.block_on(setup())),
                    Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                        .enable_timer()
                        .attach_thread_pool(Box::new(blocking))
                        .build()
                        .map(|mut rt| rt.block_on(setup())),
                };
                if let Err(e) = result {
                    log::error!(
                        "worker {index}: cannot start its {} runtime: {e}",
                        driver.name()
                    );
                }
            })?;
        self.threads.push(thread);
        Ok(())
    }

    /// Stops the workers and waits for them.
    pub fn stop(&mut self) {
        self.shutdown.raise();
        self.join();
    }

    /// Waits until the workers end (after a shutdown).
    pub fn join(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A worker's io_uring runtime, its ring set up with `IORING_SETUP_COOP_TASKRUN` where the
/// kernel has it (5.19 and later; older ones refuse the flag and get a ring without it).
///
/// A receive submitted before its data arrives completes through task work that the kernel
/// queues to the worker when the data comes. Without the flag the kernel interrupts the
/// worker with an inter-processor interrupt to run it at once — typically while the sending
/// core is still inside its own send and holds the socket's lock, so the receive spins on that
/// lock. With it, the task work waits until the worker next enters the kernel, which it does
/// on every turn of its loop (to submit, or to wait for completions). On loopback with small
/// requests that was 18% of the worker's time (reschedule interrupts 5.7%, socket-lock spinning
/// 7%, both gone with the flag).
fn uring_runtime(
    blocking: &DefaultThreadPool,
) -> io::Result<monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>> {
    let build = |coop_taskrun: bool| {
        let mut ring = io_uring::IoUring::builder();
        if coop_taskrun {
            ring.setup_coop_taskrun();
        }
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .uring_builder(ring)
            .enable_timer()
            .attach_thread_pool(Box::new(blocking.clone()))
            .build()
    };
    build(true).or_else(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => build(false),
        _ => Err(e),
    })
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections on `listener` until shutdown, serving each on this worker.
pub async fn accept_loop<H: Handler>(
    listener: std::net::TcpListener,
    handler: Rc<H>,
    limits: Rc<Limits>,
    shutdown: Shutdown,
) {
    accept_each(listener, shutdown, |stream| {
        spawn_connection(serve(stream, handler.clone(), limits.clone()));
    })
    .await;
}

/// Accepts connections on `listener` until shutdown, handing each to `on_accept` on this worker
/// (which typically spawns a task for it with [`spawn_connection`]).
pub async fn accept_each(
    listener: std::net::TcpListener,
    shutdown: Shutdown,
    mut on_accept: impl FnMut(TcpStream),
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot register a listener with the runtime: {e}");
            return;
        }
    };
    loop {
        let accepted = monoio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait() => return,
        };
        match accepted {
            Ok((stream, _peer)) => on_accept(stream),
            Err(e) => {
                // Out of file descriptors, most likely: back off rather than spin.
                log::warn!("accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit, and returns the new soft
/// limit. A proxied stream holds two descriptors (client and upstream), so the usual soft default
/// of 1024 would cap a gateway at about 500 streams, far below what one core can carry; the hard
/// limit is what the operator allowed (systemd's `LimitNOFILE`, `ulimit -Hn`).
pub fn raise_open_files_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// Spawns one connection's task on this worker, with a panic in it costing that connection only.
pub fn spawn_connection<F: Future<Output = ()> + 'static>(task: F) {
    monoio::spawn(CatchPanic(task));
}

/// Contains a panic inside one connection's task, so a bug costs one connection, not the
/// worker and every connection on it.
struct CatchPanic<F>(F);

impl<F: Future<Output = ()>> Future for CatchPanic<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the inner future is never moved out of the pinned wrapper.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p,
            Err(_) => {
                log::error!("a connection task panicked; the connection was closed");
                Poll::Ready(())
            }
        }
    }
}

/// Runs a future to completion on a runtime like a worker's (epoll driver, timer, blocking
/// pool), for unit tests of code that needs one.
#[cfg(test)]
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(2)))
        .build()
        .expect("a test runtime")
        .block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_limit_is_raised_to_the_hard_limit() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        // Start below the hard limit (never below what the other tests of this process need),
        // so the raise has something to do.
        let lowered = libc::rlimit {
            rlim_cur: (limit.rlim_max / 2).max(1024).min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        let soft = raise_open_files_limit().unwrap();
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(limit.rlim_cur, limit.rlim_max);
        assert_eq!(soft, limit.rlim_cur);
    }
}
