//! Open connections, between the listener and actix-http: the cap (shedding
//! an idle connection for a new one: one that never served a request first,
//! so that strangers cannot push out Argo CD's kept-alive connections), a
//! deadline for the head of
//! every request, not only a connection's first, and a bounded close after an
//! answer that left the request body unread. actix-http does not bound the
//! last two itself (see `docs/actix-http-upstream-report.md` in the template
//! repository).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use actix_server::GracefulShutdownSignal;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What is still read from a client after an answer that left its body
/// unread, so that the answer is not lost to a reset; then the connection is
/// closed. actix-http stops after `client_disconnect_timeout` too.
pub const LINGER_BYTES: usize = 256 * 1024;

/// Why the plugin closed a connection, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// For a newcomer at the connection cap (or the newcomer itself).
    Cap,
    /// A deadline passed: a slow head, an idle keep-alive, a slow answer.
    Deadline,
    /// The server is stopping.
    Stopping,
}

#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
impl Closed {
    pub const ALL: [Self; 3] = [Self::Cap, Self::Deadline, Self::Stopping];

    pub fn label(self) -> &'static str {
        match self {
            Self::Cap => "cap",
            Self::Deadline => "deadline",
            Self::Stopping => "stopping",
        }
    }
}

/// Counts over every worker's connections, for the metrics.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Accepted since the start.
    pub accepted: AtomicU64,
    /// Open, and not closed by the plugin.
    pub open: AtomicU64,
    /// Closed by the plugin, by [`Closed`] (in the order of [`Closed::ALL`]).
    pub closed: [AtomicU64; 3],
}

/// How often deadlines are checked: they fire up to this much late.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// The deadlines a connection lives by.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request to the end of its head.
    pub header: Duration,
    /// From the end of an answer to the first byte of the next request.
    pub keep_alive: Duration,
    /// From the end of a head to the last byte of its answer written.
    pub request: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head; `started` once some of it arrived.
    Idle { started: bool },
    /// A request is being served.
    Serving,
    /// The answer left the body unread: at most `budget` more bytes are read.
    Closing { budget: usize },
}

/// One connection's state, shared by its I/O and its requests (through the
/// connection data actix-http gives every request).
#[derive(Debug)]
pub struct Connection {
    phase: Cell<Phase>,
    deadline: Cell<Instant>,
    shed: Cell<bool>,
    /// Answered a request: idle from now on means kept alive.
    served: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    worker: Rc<Worker>,
}

/// What the connections of one worker share.
#[derive(Debug)]
struct Worker {
    timeouts: Timeouts,
    /// Connections open and not shed.
    open: Cell<usize>,
    stopping: Cell<bool>,
    /// Set from the signal handler (another thread): answers say `close`.
    draining: Arc<AtomicBool>,
    stats: Arc<ConnectionStats>,
}

impl Connection {
    /// A request head arrived.
    pub fn request_started(&self) {
        self.phase.set(Phase::Serving);
        self.deadline
            .set(Instant::now() + self.worker.timeouts.request);
    }

    /// The answer is written; `body_unread` if the request body was not read
    /// to its end, in which case actix-http closes the connection.
    pub fn response_finished(&self, body_unread: bool) {
        let now = Instant::now();
        let timeouts = self.worker.timeouts;
        if body_unread {
            self.phase.set(Phase::Closing {
                budget: LINGER_BYTES,
            });
            self.deadline.set(now + timeouts.header);
        } else {
            self.served.set(true);
            self.phase.set(Phase::Idle { started: false });
            self.deadline
                .set(now + timeouts.keep_alive + timeouts.header);
        }
    }

    /// The server is draining or stopping: answers should tell clients to close.
    pub fn stopping(&self) -> bool {
        self.worker.stopping.get() || self.worker.draining.load(Ordering::Relaxed)
    }

    fn idle(&self) -> bool {
        matches!(self.phase.get(), Phase::Idle { .. })
    }

    fn read(&self, bytes: usize) {
        match self.phase.get() {
            Phase::Idle { started: false } if bytes > 0 => {
                self.phase.set(Phase::Idle { started: true });
                let head_deadline = Instant::now() + self.worker.timeouts.header;
                self.deadline.set(self.deadline.get().min(head_deadline));
            }
            Phase::Closing { budget } => self.phase.set(Phase::Closing {
                budget: budget.saturating_sub(bytes),
            }),
            _ => {}
        }
    }

    /// Closes the connection: its reads end and its writes fail.
    fn shed(&self, why: Closed) {
        if self.shed.replace(true) {
            return;
        }
        self.worker.open.set(self.worker.open.get() - 1);
        let stats = &self.worker.stats;
        stats.open.fetch_sub(1, Ordering::Relaxed);
        stats.closed[why as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn park(&self, cx: &Context<'_>) {
        let mut waker = self.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !self.shed.get() {
            self.worker.open.set(self.worker.open.get() - 1);
            self.worker.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The connections of one worker thread, at most `cap` of them.
#[derive(Debug)]
pub struct Connections {
    cap: usize,
    /// In the order they were admitted; entries of closed ones are pruned.
    all: RefCell<VecDeque<Weak<Connection>>>,
    worker: Rc<Worker>,
}

impl Connections {
    /// Starts the bookkeeping of one worker: a task checks deadlines, and
    /// `shutdown` closes idle connections and makes answers say `close`.
    pub fn start(
        cap: usize,
        timeouts: Timeouts,
        shutdown: GracefulShutdownSignal,
        draining: Arc<AtomicBool>,
        stats: Arc<ConnectionStats>,
    ) -> Rc<Self> {
        let connections = Rc::new(Self::new(cap, timeouts, draining, stats));
        let weak = Rc::downgrade(&connections);
        actix_web::rt::spawn(async move {
            let mut interval = actix_web::rt::time::interval(SWEEP_INTERVAL);
            loop {
                interval.tick().await;
                match weak.upgrade() {
                    Some(connections) => connections.sweep(Instant::now()),
                    None => break,
                }
            }
        });
        let weak = Rc::downgrade(&connections);
        actix_web::rt::spawn(async move {
            shutdown.notified().await;
            if let Some(connections) = weak.upgrade() {
                connections.stop();
            }
        });
        connections
    }

    fn new(
        cap: usize,
        timeouts: Timeouts,
        draining: Arc<AtomicBool>,
        stats: Arc<ConnectionStats>,
    ) -> Self {
        Self {
            cap: cap.max(1),
            all: RefCell::new(VecDeque::new()),
            worker: Rc::new(Worker {
                timeouts,
                open: Cell::new(0),
                stopping: Cell::new(false),
                draining,
                stats,
            }),
        }
    }

    /// Takes a new connection. When `cap` are open, an idle one is closed
    /// for it: the oldest that never served a request (a stranger's, or one
    /// whose head is slow), else the oldest kept alive between requests;
    /// when all of them are serving, the new one is.
    pub fn admit<T>(&self, io: T) -> Guarded<T> {
        let connection = Rc::new(Connection {
            phase: Cell::new(Phase::Idle { started: false }),
            deadline: Cell::new(Instant::now() + self.worker.timeouts.header),
            shed: Cell::new(false),
            served: Cell::new(false),
            waker: RefCell::new(None),
            worker: Rc::clone(&self.worker),
        });
        self.worker.open.set(self.worker.open.get() + 1);
        let stats = &self.worker.stats;
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        if self.worker.stopping.get() {
            connection.shed(Closed::Stopping);
        } else if self.worker.open.get() > self.cap && !self.shed_for_newcomer() {
            connection.shed(Closed::Cap);
        } else {
            self.all.borrow_mut().push_back(Rc::downgrade(&connection));
        }
        Guarded { io, connection }
    }

    fn shed_for_newcomer(&self) -> bool {
        let mut all = self.all.borrow_mut();
        while all
            .front()
            .is_some_and(|front| front.upgrade().is_none_or(|c| c.shed.get()))
        {
            all.pop_front();
        }
        let oldest = |served: bool| {
            all.iter().position(|entry| {
                entry
                    .upgrade()
                    .is_some_and(|c| !c.shed.get() && c.idle() && c.served.get() == served)
            })
        };
        let victim = oldest(false).or_else(|| oldest(true));
        match victim.and_then(|index| all.remove(index)?.upgrade()) {
            Some(connection) => {
                connection.shed(Closed::Cap);
                true
            }
            None => false,
        }
    }

    fn sweep(&self, now: Instant) {
        self.all.borrow_mut().retain(|entry| match entry.upgrade() {
            Some(connection) if connection.shed.get() => false,
            Some(connection) if connection.deadline.get() <= now => {
                connection.shed(Closed::Deadline);
                false
            }
            Some(_) => true,
            None => false,
        });
    }

    /// Closes connections kept alive between requests (a request half-sent
    /// may still finish); from now on answers say `Connection: close`. A new
    /// connection that has not sent its first request yet is left to its
    /// head deadline: its client may have written the request already, and
    /// a POST that fails on a fresh connection is not retried.
    fn stop(&self) {
        self.worker.stopping.set(true);
        self.all.borrow_mut().retain(|entry| match entry.upgrade() {
            Some(connection)
                if connection.served.get()
                    && connection.phase.get() == (Phase::Idle { started: false }) =>
            {
                connection.shed(Closed::Stopping);
                false
            }
            Some(connection) => !connection.shed.get(),
            None => false,
        });
    }
}

/// A connection's I/O, ended by this layer when its connection is shed or
/// its close budget is spent.
#[derive(Debug)]
pub struct Guarded<T> {
    io: T,
    connection: Rc<Connection>,
}

impl<T> Guarded<T> {
    /// The connection's state, for its requests.
    pub fn connection(&self) -> Rc<Connection> {
        Rc::clone(&self.connection)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let connection = &this.connection;
        // End of stream: actix-http then closes the connection.
        if connection.shed.get() || connection.phase.get() == (Phase::Closing { budget: 0 }) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => {
                connection.park(cx);
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                connection.read(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            error => error,
        }
    }
}

impl<T: AsyncWrite + Unpin> Guarded<T> {
    /// A write-side call on the I/O, failing once the connection is shed.
    fn write_side<R>(
        &mut self,
        cx: &mut Context<'_>,
        call: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if self.connection.shed.get() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection closed by the plugin",
            )));
        }
        let poll = call(Pin::new(&mut self.io), cx);
        if poll.is_pending() {
            self.connection.park(cx);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .write_side(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .write_side(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().write_side(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const KEEP_ALIVE: Duration = Duration::from_secs(120);

    fn connections(cap: usize) -> Connections {
        let timeouts = Timeouts {
            header: HEADER,
            keep_alive: KEEP_ALIVE,
            request: Duration::from_secs(40),
        };
        Connections::new(
            cap,
            timeouts,
            Arc::new(AtomicBool::new(false)),
            Arc::default(),
        )
    }

    /// A client that has sent `0` and takes every write.
    struct Client(&'static [u8]);

    impl AsyncRead for Client {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Client {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    type Io = Guarded<Client>;

    fn admit(connections: &Connections, bytes: &'static [u8]) -> Io {
        connections.admit(Client(bytes))
    }

    /// One read: the bytes it gave (0 once the stream has ended).
    fn read(io: &mut Io) -> usize {
        let mut storage = [0u8; 64];
        let mut buf = ReadBuf::new(&mut storage);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) => buf.filled().len(),
            other => panic!("read gave {other:?}"),
        }
    }

    /// The connection answers one request and is kept alive.
    fn serve_one(io: &Io) {
        let connection = io.connection();
        connection.request_started();
        connection.response_finished(false);
    }

    /// After an answer that left the body unread the connection lingers
    /// for one head's time, then is closed (not at once, not never).
    #[test]
    fn an_unread_body_lingers_for_a_head_timeout() {
        let all = connections(4);
        let mut io = admit(&all, b"");
        let connection = io.connection();
        connection.request_started();
        let answered = Instant::now();
        connection.response_finished(true);
        all.sweep(answered + HEADER / 2);
        assert!(!write_fails(&mut io), "closed before its linger");
        all.sweep(answered + HEADER + Duration::from_millis(1));
        assert!(write_fails(&mut io), "still open after its linger");
    }

    /// Stopping leaves a request being served to its deadline, which the
    /// sweep still enforces.
    #[test]
    fn stopping_keeps_enforcing_the_deadline_of_a_request_in_progress() {
        let all = connections(4);
        let mut io = admit(&all, b"");
        let started = Instant::now();
        io.connection().request_started();
        all.stop();
        all.sweep(started + Duration::from_secs(20));
        assert!(!write_fails(&mut io), "closed before its deadline");
        all.sweep(started + Duration::from_secs(41));
        assert!(write_fails(&mut io), "still open past its deadline");
    }

    fn write_fails(io: &mut Io) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(
            Pin::new(io).poll_write(&mut cx, b"HTTP/1.1 200 OK\r\n"),
            Poll::Ready(Err(_))
        )
    }

    fn closed(io: &mut Io) -> bool {
        io.connection.shed.get() && read(io) == 0 && write_fails(io)
    }

    #[test]
    fn when_full_the_connection_idle_the_longest_is_closed_for_a_new_one() {
        let all = connections(3);
        let mut a = admit(&all, b"");
        let b = admit(&all, b"");
        let mut c = admit(&all, b"");
        b.connection().request_started();
        let mut d = admit(&all, b"GET / HTTP/1.1\r\n");
        assert!(closed(&mut a), "the oldest idle one");
        assert!(!b.connection.shed.get() && !c.connection.shed.get());
        assert_eq!(read(&mut d), 16);
        let e = admit(&all, b"");
        assert!(!b.connection.shed.get(), "serving: never shed");
        assert!(closed(&mut c), "then the next idle one");
        assert!(!d.connection.shed.get() && !e.connection.shed.get());
        assert_eq!(all.worker.open.get(), 3);
    }

    /// A kept-alive connection that served a request (Argo CD's) outlives
    /// any number of newer ones that never did: they are shed first, the
    /// oldest first; it goes only when nothing else can.
    #[test]
    fn never_served_connections_are_shed_before_a_kept_alive_one() {
        let all = connections(3);
        let mut argocd = admit(&all, b"");
        serve_one(&argocd);
        let mut stranger = admit(&all, b"");
        let mut slow_head = admit(&all, b"POST /api");
        assert_eq!(read(&mut slow_head), 9);
        let flood: Vec<Io> = (0..100).map(|_| admit(&all, b"")).collect();
        assert!(closed(&mut stranger), "the oldest never served, first");
        assert!(closed(&mut slow_head), "then the next");
        assert!(
            !argocd.connection.shed.get(),
            "kept alive while strangers are open"
        );
        assert_eq!(all.worker.open.get(), 3);
        let survivors = flood.iter().filter(|io| !io.connection.shed.get());
        assert_eq!(survivors.count(), 2, "the two newest strangers");
        // Only kept-alive connections besides the newcomer: the oldest goes.
        flood.iter().rev().take(2).for_each(serve_one);
        let newcomer = admit(&all, b"");
        assert!(closed(&mut argocd), "nothing else could go");
        assert!(!newcomer.connection.shed.get());
    }

    #[test]
    fn when_all_are_serving_the_new_connection_is_closed() {
        let all = connections(2);
        let a = admit(&all, b"");
        let b = admit(&all, b"");
        a.connection().request_started();
        b.connection().request_started();
        let mut c = admit(&all, b"");
        assert!(closed(&mut c));
        assert!(!a.connection.shed.get() && !b.connection.shed.get());
        drop(a);
        assert_eq!(all.worker.open.get(), 1);
        let d = admit(&all, b"");
        assert!(!d.connection.shed.get(), "room again once one is gone");
    }

    #[test]
    fn every_request_head_has_the_header_deadline_not_only_the_first() {
        let all = connections(8);
        let mut io = admit(&all, b"POST / HTTP/1.1\r\n");
        serve_one(&io);
        let connection = io.connection();
        let answered = Instant::now();
        // Kept alive with nothing sent: the keep-alive timeout applies.
        all.sweep(answered + KEEP_ALIVE);
        assert!(!connection.shed.get());
        // The next head starts arriving: it has the header timeout from now.
        let started = Instant::now();
        assert_eq!(read(&mut io), 17);
        all.sweep(started + HEADER - Duration::from_millis(100));
        assert!(!connection.shed.get(), "not before the header timeout");
        all.sweep(started + HEADER + Duration::from_millis(100));
        assert!(closed(&mut io), "cut off at the header timeout");
    }

    #[test]
    fn a_first_head_that_never_ends_is_cut_off() {
        let all = connections(8);
        let mut io = admit(&all, b"");
        all.sweep(Instant::now() + HEADER + Duration::from_millis(100));
        assert!(closed(&mut io));
    }

    #[test]
    fn an_unread_body_is_read_for_a_bounded_number_of_bytes_then_the_stream_ends() {
        static BODY: [u8; 2 * LINGER_BYTES] = [b'x'; 2 * LINGER_BYTES];
        let all = connections(8);
        let mut io = admit(&all, &BODY);
        io.connection().request_started();
        io.connection().response_finished(true);
        let mut total = 0;
        loop {
            let bytes = read(&mut io);
            if bytes == 0 {
                break;
            }
            total += bytes;
            assert!(total <= LINGER_BYTES + 64, "read {total} bytes");
        }
        assert!(total >= LINGER_BYTES);
    }

    #[test]
    fn graceful_stop_closes_kept_alive_connections_and_spares_the_rest() {
        let all = connections(8);
        let mut kept_alive = admit(&all, b"");
        serve_one(&kept_alive);
        let serving = admit(&all, b"");
        serving.connection().request_started();
        let fresh = admit(&all, b"");
        all.stop();
        assert!(closed(&mut kept_alive));
        assert!(!serving.connection.shed.get() && serving.connection.stopping());
        assert!(
            !fresh.connection.shed.get(),
            "its request may be on the way"
        );
        let mut late = admit(&all, b"");
        assert!(closed(&mut late), "no new connection once stopping");
    }

    #[test]
    fn draining_makes_answers_say_close_without_closing_anything() {
        let draining = Arc::new(AtomicBool::new(false));
        let timeouts = Timeouts {
            header: HEADER,
            keep_alive: KEEP_ALIVE,
            request: HEADER,
        };
        let all = Connections::new(8, timeouts, Arc::clone(&draining), Arc::default());
        let io = admit(&all, b"");
        assert!(!io.connection.stopping());
        draining.store(true, Ordering::Relaxed);
        assert!(io.connection.stopping() && !io.connection.shed.get());
    }
}
