//! The end of a connection: the server's close frame, then the WebSocket close handshake, in a
//! task of its own so that whoever decided to close (the hello task, or a room that is stopping)
//! can move on at once.
//!
//! The socket is dropped only when the close frame is written and the client is done (its close
//! frame, or the end of its stream), or after [`CLOSE_GRACE`]: dropping a socket while the
//! client's bytes are still unread makes the kernel send a reset, and the client could lose the
//! error and close frame it has not read yet. What the client sends meanwhile is read and
//! dropped.

use super::client_codec::{ClientCodec, Incoming};
use super::ticket::SessionTicket;
use super::{CLOSE_GRACE, READ_BUFFER_BYTES};
use crate::outbox::{Opcode, Outbox, TryWrite};
use actix_http::ws;
use bytes::Bytes;
use futures_util::StreamExt;
use ludus_protocol::{codec, CloseCode, ErrorCode, ErrorMessage, ServerMessage};
use std::io::Cursor;
use tokio::io::AsyncReadExt;
use tokio_util::codec::FramedRead;

/// Largest frame decoded while draining; a larger one switches the decoder to discarding, and the
/// close handshake then ends with the client's end of stream or the grace.
const DRAIN_FRAME_BYTES: usize = 64 * 1024;

/// How a connection ends.
#[derive(Debug)]
pub enum Ending {
    /// The server closes with this code, after an `error` message when the client is at fault.
    Server(CloseCode, Option<(ErrorCode, String)>),
    /// The client sent its close frame first: echo its reason, and nothing more is expected.
    Client(Option<ws::CloseReason>),
}

/// A connection to close: its socket (non-blocking), what the server still has queued for it,
/// the client's bytes already read but not yet decoded, and its ticket.
pub struct ToClose<W> {
    /// The socket, still queuing through its outbox.
    pub outbox: Outbox<W>,
    /// Bytes the client sent that nobody decoded yet.
    pub unread: Bytes,
    /// The connection's place in the books.
    pub ticket: SessionTicket,
}

/// Queues the ending on `connection` and finishes the close handshake in a task on the current
/// thread. The ticket records `ending`'s reason.
pub fn close<W>(connection: ToClose<W>, ending: Ending)
where
    W: TryWrite + Into<std::net::TcpStream>,
{
    let ToClose {
        mut outbox,
        unread,
        mut ticket,
    } = connection;
    let client_done = matches!(ending, Ending::Client(_));
    let (code, reason) = match ending {
        Ending::Server(close, error) => {
            ticket.set_reason(close.reason());
            if close == CloseCode::TooSlow {
                // What the client has not started reading is stale: the close goes next in
                // line, so a client that reads again gets it within the close grace.
                outbox.discard_unstarted();
            }
            if let Some((code, message)) = error {
                tracing::debug!(session = ticket.id(), %close, %code, %message, "closing session");
                let error = ServerMessage::Error(ErrorMessage { code, message });
                let frame = Bytes::from(codec::encode_batch(&[error]));
                ticket.metrics().messages_sent.inc();
                ticket.metrics().bytes_sent.inc_by(frame.len() as u64);
                outbox.send(Opcode::Binary, frame);
            }
            (Some(close.code()), close.reason().to_owned())
        }
        Ending::Client(reason) => (
            reason.as_ref().map(|reason| u16::from(reason.code)),
            reason
                .and_then(|reason| reason.description)
                .unwrap_or_default(),
        ),
    };
    match code {
        Some(code) => outbox.send_close(code, &reason),
        None => outbox.send(Opcode::Close, Bytes::new()),
    };
    let (socket, outbox) = outbox.move_to(Detached);
    let socket: std::net::TcpStream = socket.into();
    actix_rt::spawn(async move {
        let Ok(socket) = tokio::net::TcpStream::from_std(socket) else {
            return; // no reactor on this thread: nothing can be sent, the ticket records it
        };
        let _ =
            tokio::time::timeout(CLOSE_GRACE, finish(socket, outbox, unread, client_done)).await;
        drop(ticket);
    });
}

/// A placeholder writer while the queue moves from one socket type to another.
pub(crate) struct Detached;

impl TryWrite for Detached {
    fn try_write_vectored(&mut self, _: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
}

/// Writes the queue and the end of stream, then waits for the client to be done.
async fn finish(
    socket: tokio::net::TcpStream,
    queued: Outbox<Detached>,
    unread: Bytes,
    client_done: bool,
) {
    let (read, write) = socket.into_split();
    let (_, mut outbox) = queued.move_to(write);
    if std::future::poll_fn(|cx| outbox.poll_shutdown(cx))
        .await
        .is_err()
        || client_done
    {
        return;
    }
    let mut frames = FramedRead::with_capacity(
        Cursor::new(unread).chain(read),
        ClientCodec::new(DRAIN_FRAME_BYTES),
        READ_BUFFER_BYTES,
    );
    while let Some(Ok(item)) = frames.next().await {
        if matches!(item, Incoming::Frame(ws::Frame::Close(_))) {
            return;
        }
    }
}
