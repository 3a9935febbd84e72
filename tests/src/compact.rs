//! A protocol version 2 player for tests: it says `hello` with version 2 and mirrors the room
//! with [`CompactRoomState`], decoding frames exactly as a version 2 client must.

use crate::{Connection, Seat};
use anyhow::{bail, Context};
use ludus_protocol::v2::{self, CompactMessage, CompactRoomState};
use ludus_protocol::{
    Ack, ClientMessage, Input, PlayerId, ProtocolVersion, RoomState, ServerMessage, Value, Welcome,
};
use tokio_tungstenite::tungstenite::Message;

/// A joined version 2 player.
pub struct CompactPlayer {
    /// The connection.
    pub connection: Connection,
    /// The welcome received.
    pub welcome: Welcome,
    /// The room as this player mirrors it.
    pub mirror: CompactRoomState,
    /// Sizes of the frames that carried a delta, in bytes, oldest first.
    pub delta_frame_bytes: Vec<usize>,
    next_seq: u32,
}

impl CompactPlayer {
    /// Connects with `seat`, says `hello` in version 2, and waits for `[welcome, s]`.
    pub async fn join(seat: &Seat) -> anyhow::Result<Self> {
        let mut connection = Connection::open(&seat.ws_url).await?;
        connection
            .hello_in(&seat.token, ProtocolVersion::V2.number())
            .await?;
        let frame = next_binary(&mut connection).await?;
        let mut messages = v2::decode_frame(&frame)?.into_iter();
        let (
            Some(CompactMessage::Other(ServerMessage::Welcome(welcome))),
            Some(CompactMessage::Snapshot(snapshot)),
        ) = (messages.next(), messages.next())
        else {
            bail!("first frame must be [welcome, s]");
        };
        Ok(Self {
            connection,
            welcome,
            mirror: CompactRoomState::from_snapshot(snapshot),
            delta_frame_bytes: Vec::new(),
            next_seq: 1,
        })
    }

    /// This player's id.
    pub fn id(&self) -> PlayerId {
        self.welcome.player
    }

    /// The mirrored state.
    pub fn state(&self) -> &RoomState {
        self.mirror.state()
    }

    /// Reads frames until one carries state, applies it and acknowledges it.
    pub async fn next_tick(&mut self) -> anyhow::Result<()> {
        loop {
            let frame = next_binary(&mut self.connection).await?;
            let mut saw_state = false;
            for message in v2::decode_frame(&frame)? {
                match message {
                    CompactMessage::Delta(body) => {
                        self.mirror.apply_delta(&body)?;
                        self.delta_frame_bytes.push(frame.len());
                        saw_state = true;
                    }
                    CompactMessage::Snapshot(snapshot) => {
                        self.mirror = CompactRoomState::from_snapshot(snapshot);
                        saw_state = true;
                    }
                    CompactMessage::Other(_) => {}
                }
            }
            if saw_state {
                let tick = self.mirror.tick();
                return self
                    .connection
                    .send(&ClientMessage::Ack(Ack { tick }))
                    .await;
            }
        }
    }

    /// Sends an input and returns its sequence number.
    pub async fn input(&mut self, payload: Value) -> anyhow::Result<u32> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let ack_tick = self.mirror.tick();
        self.connection
            .send(&ClientMessage::Input(Input {
                seq,
                ack_tick,
                payload,
            }))
            .await?;
        Ok(seq)
    }
}

/// The next binary frame; control frames are skipped, a close is an error.
async fn next_binary(connection: &mut Connection) -> anyhow::Result<Vec<u8>> {
    loop {
        match connection
            .receive_message()
            .await?
            .context("connection closed")?
        {
            Message::Binary(bytes) => return Ok(bytes.to_vec()),
            Message::Close(frame) => bail!("closed: {frame:?}"),
            _ => continue,
        }
    }
}
