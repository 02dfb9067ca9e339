//! The report lane: connections whose first request is a report call (getInfo or
//! pushReport) are served by threads of their own at the lowest priority, so that a flood
//! of uploads — TLS decryption of every archive, multipart parsing — takes the CPU the
//! message answers leave over instead of sharing it with them.
//!
//! A worker accepts every connection and does its TLS handshake; then it reads until the
//! first request line is complete ([`first_request_line`]). A report call moves the
//! connection to a lane thread: the socket leaves the worker's reactor
//! ([`Socket::detach`]) and joins the lane's ([`Socket::attach`]), the bytes already read
//! go along ([`Prefixed`]), and hyper serves the connection there as it would have on the
//! worker. Everything else stays on the worker. HTTP/2 connections (ALPN `h2`, or the
//! plain-HTTP preface) stay too: their first stream says nothing about the next ones, and
//! the platform sends its reports over HTTP/1.1.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Longest first line read before giving up on finding its end: the connection then stays
/// on the worker, whose hyper rejects the head as too large.
const MAX_LINE: usize = super::MAX_HEADER_BYTES;

/// The lane threads' runtimes, each single-threaded; connections are dealt out in turn.
pub(super) struct Lanes {
    runtimes: Vec<tokio::runtime::Handle>,
    next: AtomicUsize,
}

/// The lane threads themselves, ended by [`LaneThreads::stop`].
pub(super) struct LaneThreads {
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Lanes {
    /// Starts `threads` lane threads at the priority of the store's threads
    /// ([`crate::background::yield_to_serving`]).
    pub(super) fn start(threads: usize) -> io::Result<(Lanes, LaneThreads)> {
        let mut lanes = Lanes {
            runtimes: Vec::new(),
            next: AtomicUsize::new(0),
        };
        let mut running = LaneThreads {
            stop: Vec::new(),
            threads: Vec::new(),
        };
        for i in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            lanes.runtimes.push(runtime.handle().clone());
            running.stop.push(stop);
            running.threads.push(
                std::thread::Builder::new()
                    .name(format!("v8help-reports-{i}"))
                    .spawn(move || {
                        crate::background::yield_to_serving();
                        let _ = runtime.block_on(stopped);
                    })?,
            );
        }
        Ok((lanes, running))
    }

    /// Runs `connection` on the next lane thread (once the lanes are stopped, it is dropped).
    pub(super) fn spawn<F: Future<Output = ()> + Send + 'static>(&self, connection: F) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.runtimes.len();
        self.runtimes[i].spawn(connection);
    }
}

impl LaneThreads {
    /// Ends the lane threads, dropping any connection still on them: called once the workers
    /// have waited for every connection, theirs and the lanes', up to `--shutdown-timeout`.
    pub(super) fn stop(self) {
        drop(self.stop);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Whether the first line of `head` is an HTTP/1.x request whose path `is_report` accepts
/// (origin form `/path?query`, or absolute form `https://host/path`).
pub(super) fn is_report_line(head: &[u8], is_report: impl Fn(&str) -> bool) -> bool {
    let Some(end) = head.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let Ok(line) = std::str::from_utf8(&head[..end]) else {
        return false;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(_method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if !version.starts_with("HTTP/1.") {
        return false;
    }
    let target = match target.find("://") {
        Some(scheme) => match target[scheme + 3..].find('/') {
            Some(slash) => &target[scheme + 3 + slash..],
            None => return false,
        },
        None => target,
    };
    is_report(target.split('?').next().unwrap_or(target))
}

/// Reads from `io` until the first line is complete (or [`MAX_LINE`] bytes came without
/// one); returns every byte read. `Ok` with no bytes: the client closed first.
pub(super) async fn first_request_line<I: AsyncRead + Unpin>(io: &mut I) -> io::Result<Vec<u8>> {
    // One TLS record's worth at most comes out of one read; what is left stays in the TLS
    // session (or the socket) for hyper to read.
    let mut head = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = io.read(&mut head[len..]).await?;
        if n == 0 {
            break;
        }
        let scanned = len;
        len += n;
        if head[scanned..len].contains(&b'\n') || len >= MAX_LINE {
            break;
        }
        if len == head.len() {
            head.resize((len * 2).min(MAX_LINE), 0);
        }
    }
    head.truncate(len);
    Ok(head)
}

/// `io` with bytes already read from it put back in front.
pub(super) struct Prefixed<I> {
    head: Vec<u8>,
    at: usize,
    io: I,
}

impl<I> Prefixed<I> {
    pub(super) fn new(head: Vec<u8>, io: I) -> Prefixed<I> {
        Prefixed { head, at: 0, io }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.head.len() {
            let n = (this.head.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            if this.at == this.head.len() {
                this.head = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A client's TCP connection that can move from one thread's reactor to another's: tokio
/// registers a socket with the runtime it was made on, so a connection handed to a lane
/// leaves the worker's reactor first and joins the lane's there.
pub(super) enum Socket {
    /// Registered with the reactor of the runtime serving it.
    Attached(TcpStream),
    /// Between two runtimes.
    Detached(std::net::TcpStream),
    /// Detaching or attaching failed; reads and writes fail.
    Broken,
}

impl Socket {
    /// Leaves the current runtime's reactor (on the worker, before the hand-over).
    pub(super) fn detach(&mut self) -> io::Result<()> {
        if let Socket::Attached(s) = std::mem::replace(self, Socket::Broken) {
            *self = Socket::Detached(s.into_std()?);
        }
        Ok(())
    }

    /// Joins the current runtime's reactor (on the lane, before serving).
    pub(super) fn attach(&mut self) -> io::Result<()> {
        if let Socket::Detached(s) = std::mem::replace(self, Socket::Broken) {
            *self = Socket::Attached(TcpStream::from_std(s)?);
        }
        Ok(())
    }

    fn attached(&mut self) -> io::Result<&mut TcpStream> {
        match self {
            Socket::Attached(s) => Ok(s),
            _ => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is between threads",
            )),
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.attached() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(err) => Poll::Ready(Err(err)),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.attached() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.attached() {
            Ok(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.attached() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.attached() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(err) => Poll::Ready(Err(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports(path: &str) -> bool {
        crate::reports::intake::call_for(path, "/reports").is_some()
    }

    #[test]
    fn only_an_http1_report_call_goes_to_the_lane() {
        for (head, lane) in [
            (&b"POST /reports/pushReport HTTP/1.1\r\nhost: x\r\n"[..], true),
            (b"POST /reports//getInfo?x=1 HTTP/1.1\r\n", true),
            (b"POST https://h.example/reports/pushReport HTTP/1.1\r\n", true),
            (b"POST /reports/pushReport HTTP/1.0\n", true),
            (b"GET /message.json HTTP/1.1\r\n", false),
            (b"POST / HTTP/1.1\r\n", false),
            (b"PRI * HTTP/2.0\r\n", false),
            (b"POST /reports/pushReport HTTP/2.0\r\n", false),
            (b"POST /reports/pushReport", false),
            (b"POST https://h.example HTTP/1.1\r\n", false),
            (b"\xff\xfe /reports/pushReport HTTP/1.1\r\n", false),
        ] {
            assert_eq!(is_report_line(head, reports), lane, "{}", String::from_utf8_lossy(head));
        }
    }

    #[tokio::test]
    async fn the_bytes_read_ahead_are_read_again_first() {
        let (mut client, server) = tokio::io::duplex(64);
        let body = b"POST /reports/pushReport HTTP/1.1\r\ncontent-length: 5000\r\n\r\n".to_vec();
        let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let sent = [body, payload].concat();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                tokio::io::AsyncWriteExt::write_all(&mut client, &sent).await.unwrap();
            })
        };
        let mut server = server;
        let head = first_request_line(&mut server).await.unwrap();
        assert!(head.contains(&b'\n'), "{head:?}");
        let mut io = Prefixed::new(head, server);
        let mut got = Vec::new();
        io.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, sent);
    }
}
