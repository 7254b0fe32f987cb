//! A worker's side of the gateway's life: the handler it serves with, taking up each new
//! generation, and its part of a drain.
//!
//! Each worker builds its own request handler ([`Api`]: upstream connection pool, DNS cache, all
//! `!Send`) from the shared parts of a generation. [`Live`], the handler its connections are
//! served by, hands every request the `Rc<Api>` current when the request begins, and the request
//! keeps it to its end: a reload never changes the configuration under a request, and the old
//! handler goes away (closing its idle upstream connections) once its last request has ended.
//! Taking up a generation costs the request path nothing but a `RefCell` read and an `Rc` clone.
//!
//! One task per worker waits on the [`Beacon`](super::beacon::Beacon): for a new generation it
//! builds the handler, starts accepting on new listeners and stops accepting on those no longer
//! configured; for a drain it runs the drain sequence (see [`Worker::drain`]).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::control::Control;
use super::generation::{Generation, Listeners, MockUpstream};
use super::phase::{self, Phase};
use crate::api::Api;
use crate::http::head::RequestHead;
use crate::http::ApiError;
use crate::metrics::{Recorder, Shard};
use crate::mock::server::{mock_limits, MockHandler};
use crate::request_id::RequestId;
use crate::runtime::{accept_each, spawn_connection};
use crate::server::conn::{serve, After, Handler, Limits, Request};
use crate::shutdown::Shutdown;
use crate::upstream::dns::Resolver;
use crate::upstream::pool::ConnPool;

/// How long streams cut short at the drain timeout are given to write their error event and end,
/// before the worker stops with whatever is left.
const CUT_GRACE: Duration = Duration::from_secs(1);

/// How long a worker's access-log lines may wait before they are handed to the writer.
const ACCESS_LOG_FLUSH: Duration = Duration::from_millis(250);

/// The handler of a worker's gateway connections: the current generation's [`Api`].
pub struct Live {
    api: RefCell<Rc<Api>>,
    limits: RefCell<Rc<Limits>>,
}

impl Live {
    fn limits(&self) -> Rc<Limits> {
        self.limits.borrow().clone()
    }
}

impl Handler for Live {
    async fn handle(&self, stream: &mut TcpStream, mut req: Request) -> io::Result<After> {
        if phase::draining() {
            // Every response the handler writes then says the connection closes after it.
            req.head.keep_alive = false;
        }
        let api = self.api.borrow().clone();
        api.handle(stream, req).await
    }

    fn drains(&self) -> bool {
        true
    }

    fn rejected(&self, error: &ApiError, id: RequestId) {
        self.api.borrow().rejected(error, id);
    }

    fn streams_body(&self, head: &RequestHead) -> Option<u64> {
        self.api.borrow().streams_body(head)
    }
}

/// What one worker runs for its generation.
struct Worker {
    index: usize,
    recorder: Rc<Recorder>,
    live: Rc<Live>,
    generation: Arc<Generation>,
    /// Ends the upkeep tasks (idle sweep) of the current handler when it is replaced.
    retire: Shutdown,
    /// Listener groups accepted on, each with the signal that stops its accept loop.
    front: Vec<(Arc<Listeners>, Shutdown)>,
    mocks: Vec<(Arc<MockUpstream>, Shutdown)>,
}

/// Runs worker `index` until the gateway stops (at once through its shutdown signal, or at the
/// end of a drain).
pub async fn run(index: usize, control: Control, shard: Arc<Shard>) {
    monoio::spawn(flush_access_log());
    serve_generations(index, control, shard).await;
    crate::logging::flush_thread();
}

async fn serve_generations(index: usize, control: Control, shard: Arc<Shard>) {
    let shared = control.shared.clone();
    let shutdown = shared.shutdown.clone();
    if shutdown.is_raised() {
        return;
    }
    control.worker_started();
    let recorder = Rc::new(Recorder::new(shard));
    let mut worker = Worker::start(index, recorder, control.current());
    loop {
        // Read before looking at the state, so that a change made after the look is not missed.
        let seen = shared.beacon.epoch();
        if control.is_draining() {
            break;
        }
        let latest = control.current();
        if !Arc::ptr_eq(&latest, &worker.generation) {
            worker.adopt(latest);
        }
        control.adopted(index, worker.generation.id);
        let stopped = monoio::select! {
            biased;
            _ = shutdown.wait() => true,
            _ = shared.beacon.changed(seen) => false,
        };
        if stopped {
            return worker.retire().await;
        }
    }
    worker.drain(&control, &shutdown).await;
    worker.retire().await;
}

impl Worker {
    fn start(index: usize, recorder: Rc<Recorder>, generation: Arc<Generation>) -> Worker {
        let api = Rc::new(build_api(&generation, &recorder));
        let retire = upkeep(&api, &generation);
        let live = Rc::new(Live {
            api: RefCell::new(api),
            limits: RefCell::new(Rc::new(generation.limits.clone())),
        });
        let mut worker = Worker {
            index,
            recorder,
            live,
            generation: generation.clone(),
            retire,
            front: Vec::new(),
            mocks: Vec::new(),
        };
        worker.listen(&generation);
        worker
    }

    /// Serves new requests with `next` from now on.
    fn adopt(&mut self, next: Arc<Generation>) {
        self.retire.raise();
        let api = Rc::new(build_api(&next, &self.recorder));
        self.retire = upkeep(&api, &next);
        *self.live.api.borrow_mut() = api;
        *self.live.limits.borrow_mut() = Rc::new(next.limits.clone());
        self.listen(&next);
        self.generation = next;
    }

    /// Accepts on the listeners of `g` not yet accepted on here, and stops accepting on those
    /// `g` no longer has (their sockets close with their accept loops).
    fn listen(&mut self, g: &Generation) {
        let (index, live, recorder) = (self.index, &self.live, &self.recorder);
        sync(&mut self.front, &g.front, |l| {
            let listener = l.take(index)?;
            let (live, recorder) = (live.clone(), recorder.clone());
            Some(accept(listener, move |stream| {
                let limits = live.limits();
                let served = serve(stream, live.clone(), limits);
                spawn_connection(phase::tracked(recorder.connection().during(served)));
            }))
        });
        // The built-in mock takes what a mock takes (a Files upload may be larger than what the
        // gateway's clients may send it).
        let limits = Rc::new(mock_limits(&g.limits));
        sync(&mut self.mocks, &g.mocks, |m| {
            let listener = m.listeners.take(index)?;
            let handler = MockHandler::new(m.interval, None, Vec::new());
            let handler = Rc::new(handler.with_objects(m.objects.clone()));
            let limits = limits.clone();
            Some(accept(listener, move |stream| {
                spawn_connection(serve(stream, handler.clone(), limits.clone()));
            }))
        });
    }

    /// The drain: stop accepting (the listening sockets close, so new connections are refused),
    /// have idle connections close and busy ones close after their response, and wait for them
    /// until the drain deadline. Then cut what is left short (streams get an in-band error,
    /// requests still waiting for their upstream a 529), give that a moment, and wait for the
    /// other workers.
    async fn drain(&mut self, control: &Control, shutdown: &Shutdown) {
        for (_, stop) in self.front.drain(..) {
            stop.raise();
        }
        phase::enter(Phase::Draining);
        let deadline = control.drain_deadline().unwrap_or_else(Instant::now);
        let ended = monoio::select! {
            biased;
            _ = shutdown.wait() => return,
            _ = phase::all_ended() => true,
            _ = monoio::time::sleep_until(deadline.into()) => false,
        };
        if !ended {
            log::info!(
                "worker {}: drain timeout reached; cutting {} connection(s) short",
                self.index,
                phase::live()
            );
            phase::enter(Phase::Expired);
            monoio::select! {
                biased;
                _ = shutdown.wait() => return,
                _ = phase::all_ended() => {}
                _ = monoio::time::sleep(CUT_GRACE) => {}
            }
        }
        control.worker_drained();
        shutdown.wait().await;
    }
}

impl Worker {
    /// Lets go of everything this worker started: its upkeep and its accept loops end, and with
    /// them their hold on its handler, the generation's pool and the fetched credentials it
    /// registered (which the refresher would otherwise go on fetching for a gateway that has
    /// stopped). They are given a turn to end before the runtime goes: a task left waiting on a
    /// signal nobody will raise is never freed.
    async fn retire(self) {
        self.retire.raise();
        let front = self.front.iter().map(|(_, stop)| stop);
        for stop in front.chain(self.mocks.iter().map(|(_, stop)| stop)) {
            stop.raise();
        }
        drop(self);
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Starts accepting on `listener`; returns the signal that stops it.
fn accept(listener: std::net::TcpListener, on_accept: impl FnMut(TcpStream) + 'static) -> Shutdown {
    let stop = Shutdown::new();
    monoio::spawn(accept_each(listener, stop.clone(), on_accept));
    stop
}

/// Makes `running` what `wanted` asks for: stops the entries no longer wanted and starts the new
/// ones with `start` (which gives nothing when this worker has no socket of the group).
fn sync<T>(
    running: &mut Vec<(Arc<T>, Shutdown)>,
    wanted: &[Arc<T>],
    mut start: impl FnMut(&T) -> Option<Shutdown>,
) {
    running.retain(|(group, stop)| {
        let keep = wanted.iter().any(|w| Arc::ptr_eq(w, group));
        if !keep {
            stop.raise();
        }
        keep
    });
    for w in wanted {
        if !running.iter().any(|(group, _)| Arc::ptr_eq(group, w)) {
            if let Some(stop) = start(w) {
                running.push((w.clone(), stop));
            }
        }
    }
}

/// Hands this worker's access-log lines to the log's writer every `ACCESS_LOG_FLUSH` (the
/// worker hands over the last ones itself when it stops).
async fn flush_access_log() {
    loop {
        monoio::time::sleep(ACCESS_LOG_FLUSH).await;
        crate::logging::flush_thread();
    }
}

/// This worker's handler for generation `g`.
fn build_api(g: &Generation, recorder: &Rc<Recorder>) -> Api {
    let config = &g.config;
    let counters = recorder.shard().pool.clone();
    let conns = ConnPool::new(g.targets.len(), config.pool.settings(), counters);
    let resolver = Resolver::new(config.dns.ttl());
    for (host, port, addrs) in &g.seeds {
        resolver.seed(host, *port, addrs.clone());
    }
    let (pool, catalog) = (g.pool.clone(), g.catalog.clone());
    Api::new(
        config,
        g.targets.clone(),
        pool,
        catalog,
        crate::objects::records::Records::new(g.objects.clone()),
        g.keys.clone(),
        conns,
        resolver,
        recorder.clone(),
    )
}

/// Starts a handler's upkeep: the sweep of its idle upstream connections (until the returned
/// signal retires it) and, if configured, prewarming them.
fn upkeep(api: &Rc<Api>, g: &Generation) -> Shutdown {
    let retire = Shutdown::new();
    let (a, stop) = (api.clone(), retire.clone());
    monoio::spawn(async move { a.sweep_idle(stop.wait()).await });
    let count = g.config.pool.prewarm_count();
    if count > 0 {
        let a = api.clone();
        monoio::spawn(async move { a.prewarm(count).await });
    }
    retire
}
