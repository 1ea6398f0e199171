//! Deadlines on client connections.
//!
//! Two rules, checked on the connection's own socket reads and writes:
//! - idle: a connection on which nothing was read or written for `idle` is closed;
//! - answer: once a request's first byte has arrived, its answer must start within
//!   `answer`, or the connection is closed. A client trickling its headers in a byte at a
//!   time is never idle, so without this rule it could hold a connection forever; many such
//!   clients would hold every file descriptor the process has.
//!
//! Once the request is complete the handler's own time limit (`REQUEST_TIMEOUT_MS`) answers
//! 503, so `answer` is that limit plus the time a client gets to send its request.
//!
//! The checks cost a clock read per successful read or write and one timer per connection,
//! re-armed only when it fires: a deadline never moves earlier (the answer deadline is set
//! once per request and is never before the idle one), so a timer that fires may only be
//! early, never late, and is then set to the deadline that holds now.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection may stay silent, and how long a request may take to be answered
/// from its first byte.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub idle: Duration,
    pub answer: Duration,
}

impl Limits {
    /// `idle` of silence; `idle` to send a request plus `handler` to answer it.
    pub fn new(idle: Duration, handler: Duration) -> Self {
        Self {
            idle,
            answer: idle + handler,
        }
    }
}

/// An acceptor whose connections close when they break [`Limits`].
pub struct Deadlines<A> {
    inner: A,
    limits: Limits,
}

impl<A> Deadlines<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        Self { inner, limits }
    }
}

impl<A: Acceptor> Acceptor for Deadlines<A> {
    type Io = TimedIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((TimedIo::new(io, self.limits), local, remote, scheme))
    }
}

/// A connection's socket with its deadlines.
pub struct TimedIo<T> {
    inner: T,
    limits: Limits,
    last_activity: Instant,
    /// When the first byte of a request not answered yet arrived.
    unanswered_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl<T> TimedIo<T> {
    fn new(inner: T, limits: Limits) -> Self {
        let now = Instant::now();
        Self {
            inner,
            limits,
            last_activity: now,
            unanswered_since: None,
            timer: Box::pin(tokio::time::sleep_until(now + limits.idle)),
        }
    }

    fn deadline(&self) -> Instant {
        let idle = self.last_activity + self.limits.idle;
        match self.unanswered_since {
            Some(since) => idle.min(since + self.limits.answer),
            None => idle,
        }
    }

    /// Called when the socket has nothing for us: ready with an error once the deadline
    /// has passed, else pending with the timer set to wake the connection at it.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.timer.as_mut().poll(cx));
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                let rule = if self.last_activity + self.limits.idle <= deadline {
                    "nothing sent or received"
                } else {
                    "a request not complete"
                };
                tracing::debug!(rule, "closing a connection at its deadline");
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connection closed: {rule} in time"),
                ));
            }
            self.timer.as_mut().reset(deadline);
        }
    }

    /// Notes a write's progress, or waits on the deadline when the socket is full.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last_activity = Instant::now();
                    self.unanswered_since = None;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let now = Instant::now();
                    self.last_activity = now;
                    self.unanswered_since.get_or_insert(now);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use poem::listener::{Listener, TcpListener};
    use poem::{Server, endpoint::make_sync};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const IDLE: Duration = Duration::from_millis(300);
    const HANDLER: Duration = Duration::from_millis(300);

    /// A server answering "ok" behind [`Deadlines`]; returns its address.
    async fn serve() -> std::net::SocketAddr {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("a loopback port");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a socket address");
        let acceptor = Deadlines::new(acceptor, Limits::new(IDLE, HANDLER));
        tokio::spawn(Server::new_with_acceptor(acceptor).run(make_sync(|_| "ok")));
        addr
    }

    /// Reads until the server closes the connection (end of stream or reset), at most
    /// `bound`; returns what was read and when it closed, or None if it stayed open.
    async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let until = Instant::now() + bound;
        loop {
            match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => return Some(got),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_idle_limit_and_not_before() {
        let addr = serve().await;
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let got = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        assert_eq!(got.as_deref(), Some(&b""[..]), "closed without a word");
        assert!(started.elapsed() >= IDLE);
    }

    #[tokio::test]
    async fn a_request_trickled_in_a_byte_at_a_time_is_cut_off() {
        let addr = serve().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // One header byte every 50 ms never lets the connection go idle; 200 bytes would
        // take 10 s, far past the answer limit.
        let mut closed_after = None;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stream.write_all(b"a").await.is_err() {
                closed_after = Some(started.elapsed());
                break;
            }
            let mut probe = [0u8; 64];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await
            {
                closed_after = Some(started.elapsed());
                break;
            }
        }
        let closed_after = closed_after.expect("the trickling client was never cut off");
        assert!(
            closed_after >= IDLE + HANDLER,
            "cut off early: {closed_after:?}"
        );
    }

    #[tokio::test]
    async fn a_busy_keep_alive_connection_outlives_both_limits() {
        let addr = serve().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        let mut answered = 0;
        // Requests 100 ms apart for well over IDLE + HANDLER, all on one connection.
        while started.elapsed() < 3 * (IDLE + HANDLER) {
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .expect("an answer within 5 s")
                .unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
            answered += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answered >= 5);
    }
}
