//! The client side of a session's socket: actix-http's WebSocket decoder, bounded so that a
//! frame header announcing a huge frame is refused before its payload is buffered.
//!
//! Kept apart from the actor so the transport's parsing can be read and tested on its own; it
//! must not decide anything about the protocol beyond "a frame, or a refused one".

use actix_http::ws;

/// What the client sent: a frame, or a refused one. A refusal is an item, not a stream error,
/// so the stream goes on (discarding what follows) until the client closes: closing a socket
/// with unread input makes the kernel send a reset, which could cost the client the close
/// frame that explains the refusal.
pub enum Incoming {
    /// A frame within the limits.
    Frame(ws::Frame),
    /// A frame refused by the decoder; what follows it is dropped.
    Refused(ws::ProtocolError),
}

/// Longest header of a client frame: 2 bytes, an 8-byte extended length and the 4-byte mask.
const MAX_CLIENT_HEADER: usize = 14;

/// actix-http's WebSocket decoder, refusing an oversized frame as soon as more than the limit
/// is buffered: the decoder alone checks the size only once the whole frame has arrived, so a
/// header announcing petabytes would make the read buffer grow for as long as the client sends.
pub struct ClientCodec {
    inner: ws::Codec,
    max_frame: usize,
    /// After a refusal: everything that follows is read and dropped.
    discarding: bool,
}

impl ClientCodec {
    /// A decoder refusing frames above `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            inner: ws::Codec::new().max_size(max_frame),
            max_frame,
            discarding: false,
        }
    }
}

impl tokio_util::codec::Decoder for ClientCodec {
    type Item = Incoming;
    /// Only I/O errors: protocol violations are [`Incoming::Refused`].
    type Error = ws::ProtocolError;

    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<Incoming>, Self::Error> {
        if self.discarding {
            src.clear();
            return Ok(None);
        }
        let refused = match self.inner.decode(src) {
            Ok(Some(frame)) => return Ok(Some(Incoming::Frame(frame))),
            Ok(None) if src.len() <= self.max_frame + MAX_CLIENT_HEADER => return Ok(None),
            // Incomplete, with more than the largest allowed frame already buffered: the frame
            // being received is larger than that.
            Ok(None) => ws::ProtocolError::Overflow,
            Err(error) => error,
        };
        self.discarding = true;
        src.clear();
        Ok(Some(Incoming::Refused(refused)))
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientCodec, Incoming};
    use actix_http::ws;
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    /// A masked binary frame header announcing `len` bytes (client frames are masked).
    fn header(len: u64) -> BytesMut {
        let mut frame = BytesMut::from(&[0x82, 0x80 | 127][..]);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame
    }

    #[test]
    fn a_frame_announcing_more_than_the_limit_is_refused_before_it_arrives() {
        let mut codec = ClientCodec::new(1024);
        let mut buffer = header(1 << 40);
        buffer.extend_from_slice(&[0; 1000]);
        assert!(
            matches!(codec.decode(&mut buffer), Ok(None)),
            "still within the limit"
        );
        buffer.extend_from_slice(&[0; 100]);
        assert!(matches!(
            codec.decode(&mut buffer),
            Ok(Some(Incoming::Refused(ws::ProtocolError::Overflow)))
        ));
        // What follows a refusal is read and dropped, never decoded.
        let mut more = header(3);
        more.extend_from_slice(&[0; 3]);
        assert!(matches!(codec.decode(&mut more), Ok(None)));
        assert!(more.is_empty());
    }

    #[test]
    fn frames_within_the_limit_decode() {
        let mut codec = ClientCodec::new(1024);
        let mut buffer = header(1000);
        buffer.extend_from_slice(&[0; 1000]);
        assert!(matches!(
            codec.decode(&mut buffer),
            Ok(Some(Incoming::Frame(ws::Frame::Binary(payload)))) if payload.len() == 1000
        ));
    }
}
