//! A session's outgoing WebSocket frames, written without copying their payloads.
//!
//! A room encodes each tick's frame once and hands every member the same [`Bytes`]. The outbox
//! writes the few bytes of a WebSocket frame header from the stack and the shared payload from
//! where it already is, in one vectored write, straight to the socket. Only what the socket does
//! not take at once is queued (the header and a reference to the payload), so an idle or healthy
//! connection holds no write buffer at all, and a slow one holds references, not copies.
//!
//! What can queue here is bounded twice: the session's flow control stops sending to a client
//! that falls behind on acknowledgements, and the session closes a client whose queue passes a
//! byte limit anyway (one that acknowledges ticks it never reads). When it does, the frames the
//! socket has not started are dropped ([`Outbox::discard_unstarted`]), so the close frame is next
//! in line behind at most one partly written frame: a frame cut in the middle would corrupt the
//! stream, a queue left in front of the close would keep the client from ever reading it.
//!
//! Pongs are coalesced: a ping is answered by replacing the payload of a pong that is queued and
//! unsent rather than queuing another one (RFC 6455 §5.5.3 allows answering only the most recent
//! ping), so pings cannot grow the queue.

use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;

/// A socket written without waiting: each call writes what the kernel takes now, or fails with
/// `WouldBlock`. Sessions write through tokio's socket halves; a room writes its members' sockets
/// directly (`mio`), at its tick.
pub trait TryWrite {
    /// Writes as much of `bufs` as the socket takes now.
    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

impl TryWrite for OwnedWriteHalf {
    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        OwnedWriteHalf::try_write_vectored(self, bufs)
    }
}

impl TryWrite for tokio::net::TcpStream {
    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        tokio::net::TcpStream::try_write_vectored(self, bufs)
    }
}

impl TryWrite for std::net::TcpStream {
    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        io::Write::write_vectored(self, bufs)
    }
}

/// WebSocket opcodes the server sends (RFC 6455, section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// A binary data frame: every protocol message.
    Binary = 0x2,
    /// The close frame.
    Close = 0x8,
    /// A heartbeat ping.
    Ping = 0x9,
    /// The answer to a client's ping.
    Pong = 0xA,
}

/// Longest header of an unmasked server frame: 2 bytes plus an 8-byte extended length.
const MAX_HEADER: usize = 10;

/// One frame: its encoded header and its payload, and how much of both is already written.
struct Frame {
    header: [u8; MAX_HEADER],
    header_len: u8,
    payload: Bytes,
    written: usize,
}

impl Frame {
    fn new(opcode: Opcode, payload: Bytes) -> Self {
        let mut header = [0; MAX_HEADER];
        header[0] = 0x80 | opcode as u8; // FIN: the server never fragments
        let len = payload.len();
        let header_len = match (u8::try_from(len), u16::try_from(len)) {
            (Ok(short), _) if short < 126 => {
                header[1] = short;
                2
            }
            (_, Ok(medium)) => {
                header[1] = 126;
                header[2..4].copy_from_slice(&medium.to_be_bytes());
                4
            }
            _ => {
                header[1] = 127;
                header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                10
            }
        };
        Self {
            header,
            header_len,
            payload,
            written: 0,
        }
    }

    /// The unwritten parts, header first.
    fn remaining(&self) -> [IoSlice<'_>; 2] {
        let header_len = usize::from(self.header_len);
        let header = &self.header[self.written.min(header_len)..header_len];
        let payload = &self.payload[self.written.saturating_sub(header_len)..];
        [IoSlice::new(header), IoSlice::new(payload)]
    }

    fn len(&self) -> usize {
        usize::from(self.header_len) + self.payload.len()
    }

    fn is_unsent_pong(&self) -> bool {
        self.written == 0 && self.header[0] & 0x0F == Opcode::Pong as u8
    }
}

/// The write side of a connection's socket.
pub struct Outbox<W = OwnedWriteHalf> {
    io: W,
    queue: VecDeque<Frame>,
    /// Unwritten bytes in `queue`.
    queued: usize,
    failed: bool,
}

impl<W: TryWrite> Outbox<W> {
    /// An outbox writing to `io`.
    pub fn new(io: W) -> Self {
        Self {
            io,
            queue: VecDeque::new(),
            queued: 0,
            failed: false,
        }
    }

    /// Sends a frame: written at once when the socket takes it, queued (by reference) when it
    /// does not. Returns `false` once a write has failed (the client is gone).
    pub fn send(&mut self, opcode: Opcode, payload: Bytes) -> bool {
        if self.failed {
            return false;
        }
        let mut frame = Frame::new(opcode, payload);
        if self.queue.is_empty() {
            match self.io.try_write_vectored(&frame.remaining()) {
                Ok(written) if written == frame.len() => return true,
                Ok(written) => frame.written = written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.failed = true;
                    return false;
                }
            }
        }
        self.queued += frame.len() - frame.written;
        self.queue.push_back(frame);
        true
    }

    /// Answers a ping: the payload replaces that of a pong still queued and unsent, if there is
    /// one (there is at most one), else a pong is sent as [`Outbox::send`] does.
    pub fn send_pong(&mut self, payload: Bytes) -> bool {
        if self.failed {
            return false;
        }
        if let Some(queued) = self.queue.iter_mut().find(|frame| frame.is_unsent_pong()) {
            let replacement = Frame::new(Opcode::Pong, payload);
            self.queued = self.queued - queued.len() + replacement.len();
            *queued = replacement;
            return true;
        }
        self.send(Opcode::Pong, payload)
    }

    /// Drops every queued frame the socket has not started, keeping a partly written one (cutting
    /// it would corrupt the stream): what is sent next comes right after it.
    pub fn discard_unstarted(&mut self) {
        let keep = usize::from(self.queue.front().is_some_and(|frame| frame.written > 0));
        self.queue.truncate(keep);
        self.queued = self
            .queue
            .front()
            .map_or(0, |frame| frame.len() - frame.written);
    }

    /// A close frame with `code` and `reason` (truncated to the 123 bytes a close frame allows).
    pub fn send_close(&mut self, code: u16, reason: &str) -> bool {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = Vec::with_capacity(2 + end);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        self.send(Opcode::Close, Bytes::from(payload))
    }

    /// Whether frames wait for the socket.
    pub fn is_backed_up(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Bytes waiting for the socket.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Writes what is queued as far as the socket takes it now; `Ok(true)` once the queue is
    /// empty. An error means the client is gone (the queue is dropped).
    pub fn flush_now(&mut self) -> io::Result<bool> {
        while let Some(frame) = self.queue.front_mut() {
            match self.io.try_write_vectored(&frame.remaining()) {
                Ok(0) => return Err(self.fail(io::ErrorKind::WriteZero.into())),
                Ok(written) => self.advance(written),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) => return Err(self.fail(error)),
            }
        }
        Ok(true)
    }

    /// Counts `written` bytes of the front frame as sent.
    fn advance(&mut self, written: usize) {
        if let Some(frame) = self.queue.front_mut() {
            frame.written += written;
            self.queued -= written;
            if frame.written == frame.len() {
                self.queue.pop_front();
            }
        }
    }

    fn fail(&mut self, error: io::Error) -> io::Error {
        self.failed = true;
        self.queue.clear();
        self.queued = 0;
        error
    }

    /// The socket, to read from it.
    pub fn socket(&self) -> &W {
        &self.io
    }

    /// The same queue over another socket (a connection handed to another owner), and the old
    /// socket.
    pub fn move_to<V: TryWrite>(self, io: V) -> (W, Outbox<V>) {
        let moved = Outbox {
            io,
            queue: self.queue,
            queued: self.queued,
            failed: self.failed,
        };
        (self.io, moved)
    }
}

impl<W: TryWrite + AsyncWrite + Unpin> Outbox<W> {
    /// Writes what is queued; ready once the queue is empty.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(frame) = self.queue.front_mut() {
            let written = match Pin::new(&mut self.io).poll_write_vectored(cx, &frame.remaining()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(result) => result,
            };
            match written {
                Ok(written) => self.advance(written),
                Err(error) => return Poll::Ready(Err(self.fail(error))),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Ends the write side (TCP FIN) once everything is written.
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_flush(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{Frame, Opcode, Outbox};
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    fn header(len: usize) -> Vec<u8> {
        let frame = Frame::new(Opcode::Binary, Bytes::from(vec![0; len]));
        frame.header[..usize::from(frame.header_len)].to_vec()
    }

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        assert_eq!(header(0), [0x82, 0]);
        assert_eq!(header(125), [0x82, 125]);
        assert_eq!(header(126), [0x82, 126, 0, 126]);
        assert_eq!(header(65_535), [0x82, 126, 0xff, 0xff]);
        assert_eq!(header(65_536), [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn a_partly_written_frame_resumes_where_it_stopped() {
        let mut frame = Frame::new(Opcode::Ping, Bytes::from_static(b"abc"));
        frame.written = 1;
        let [header, payload] = frame.remaining();
        assert_eq!(&*header, &[3]);
        assert_eq!(&*payload, b"abc");
        frame.written = 3;
        let [header, payload] = frame.remaining();
        assert!(header.is_empty());
        assert_eq!(&*payload, b"bc");
    }

    /// An outbox whose peer does not read, filled until frames queue, and the peer.
    async fn backed_up_outbox() -> std::io::Result<(Outbox, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (server, _) = listener.accept().await?;
        let (_read, write) = server.into_split();
        let mut outbox = Outbox::new(write);
        // Bounded: the buffers of one loopback connection hold at most a few MiB.
        for _ in 0..200 {
            if outbox.is_backed_up() {
                break;
            }
            assert!(outbox.send(Opcode::Binary, Bytes::from(vec![0; 100_000])));
        }
        assert!(outbox.is_backed_up(), "the socket never filled");
        Ok((outbox, client))
    }

    #[tokio::test]
    async fn a_queued_pong_takes_the_payload_of_the_latest_ping() -> std::io::Result<()> {
        let (mut outbox, _client) = backed_up_outbox().await?;
        let before = outbox.queued_bytes();
        assert!(outbox.send_pong(Bytes::from_static(b"first")));
        assert_eq!(outbox.queued_bytes(), before + 2 + 5);
        assert!(outbox.send_pong(Bytes::from_static(b"latest!")));
        assert_eq!(outbox.queued_bytes(), before + 2 + 7, "one pong, replaced");
        let pongs: Vec<_> = outbox
            .queue
            .iter()
            .filter(|frame| frame.header[0] == 0x8A)
            .map(|frame| frame.payload.clone())
            .collect();
        assert_eq!(pongs, [Bytes::from_static(b"latest!")]);
        // A frame queued after the pong does not make a second one.
        assert!(outbox.send(Opcode::Binary, Bytes::from_static(b"data")));
        assert!(outbox.send_pong(Bytes::from_static(b"third")));
        assert_eq!(
            outbox.queue.iter().filter(|f| f.header[0] == 0x8A).count(),
            1
        );
        Ok(())
    }

    /// Replaces the queue with frames of `sizes`, the first `written_first` bytes into.
    fn set_queue(outbox: &mut Outbox, sizes: &[usize], written_first: usize) {
        outbox.queue = sizes
            .iter()
            .map(|&size| Frame::new(Opcode::Binary, Bytes::from(vec![0; size])))
            .collect();
        if let Some(front) = outbox.queue.front_mut() {
            front.written = written_first;
        }
        outbox.queued = outbox.queue.iter().map(Frame::len).sum::<usize>() - written_first;
    }

    #[tokio::test]
    async fn discarding_keeps_only_a_partly_written_frame() -> std::io::Result<()> {
        let (mut outbox, _client) = backed_up_outbox().await?;
        set_queue(&mut outbox, &[1000, 1000, 1000], 10);
        outbox.discard_unstarted();
        assert_eq!(outbox.queue.len(), 1);
        assert_eq!(outbox.queued_bytes(), 4 + 1000 - 10);
        assert!(outbox.send_close(4008, "too_slow"));
        let opcodes: Vec<u8> = outbox.queue.iter().map(|frame| frame.header[0]).collect();
        assert_eq!(opcodes, [0x82, 0x88], "the close frame is next in line");

        set_queue(&mut outbox, &[1000, 1000], 0);
        outbox.discard_unstarted();
        assert!(!outbox.is_backed_up());
        assert_eq!(outbox.queued_bytes(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn frames_the_socket_cannot_take_queue_and_drain_in_order() -> std::io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut client = TcpStream::connect(listener.local_addr()?).await?;
        let (server, _) = listener.accept().await?;
        let (_read, write) = server.into_split();
        let mut outbox = Outbox::new(write);
        const PAYLOAD: usize = 100_000;
        // The client does not read: the kernel's buffers fill, then frames queue. Bounded: the
        // buffers of one loopback connection hold at most a few MiB.
        let mut sent = 0u8;
        while !outbox.is_backed_up() && sent < 200 {
            assert!(outbox.send(Opcode::Binary, Bytes::from(vec![sent; PAYLOAD])));
            sent += 1;
        }
        assert!(outbox.is_backed_up(), "the socket never filled");
        assert!(outbox.send(Opcode::Binary, Bytes::from(vec![sent; PAYLOAD])));
        sent += 1;
        assert!(outbox.queued_bytes() > PAYLOAD);
        let expected = usize::from(sent) * (10 + PAYLOAD);
        let reading = tokio::spawn(async move {
            let mut received = vec![0; expected];
            client.read_exact(&mut received).await.map(|_| received)
        });
        std::future::poll_fn(|cx| outbox.poll_flush(cx)).await?;
        assert_eq!(outbox.queued_bytes(), 0);
        let received = reading.await.map_err(std::io::Error::other)??;
        for (index, frame) in received.chunks(10 + PAYLOAD).enumerate() {
            assert_eq!(frame[..2], [0x82, 127], "frame {index}");
            assert_eq!(frame[2..10], (PAYLOAD as u64).to_be_bytes());
            assert!(frame[10..].iter().all(|&byte| usize::from(byte) == index));
        }
        Ok(())
    }
}
