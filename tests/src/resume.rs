//! Resuming a dropped session as a client does: reconnect to the same `ws_url`, send `hello`
//! with the last `resume_token` and the last tick applied, and bring the mirror up to date from
//! what the server answers (the missed deltas, or a snapshot).

use crate::{Connection, Player, Received};
use anyhow::{bail, Context};
use ludus_protocol::{ClientMessage, Hello, Resume, RoomState, ServerMessage, PROTOCOL_VERSION};

/// How a resume caught the client up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaughtUp {
    /// With this many missed deltas, applied in order.
    Deltas(usize),
    /// With a fresh snapshot.
    Snapshot,
}

/// What `player` needs to resume after its connection dropped: the room's URL, its last resume
/// token, the tick its mirror reached, and the mirror itself.
pub struct Dropped {
    /// The room's WebSocket URL.
    pub ws_url: String,
    /// The player as it was when the connection dropped.
    pub player: Player,
}

impl Dropped {
    /// The `hello` that resumes this session.
    pub fn hello(&self) -> anyhow::Result<ClientMessage> {
        let token = self
            .player
            .welcome
            .resume_token
            .clone()
            .context("the welcome carried no resume token")?;
        Ok(ClientMessage::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            token: String::new(),
            resume: Some(Resume {
                token,
                last_tick: self.player.state.tick(),
            }),
        }))
    }

    /// Reconnects and resumes; the player continues with its mirror and input sequence.
    pub async fn resume(self) -> anyhow::Result<(Player, CaughtUp)> {
        let hello = self.hello()?;
        let mut connection = Connection::open(&self.ws_url).await?;
        connection.send(&hello).await?;
        let Received::Batch(messages) = connection.receive().await? else {
            bail!("closed instead of resuming");
        };
        let mut messages = messages.into_iter();
        let Some(ServerMessage::Welcome(welcome)) = messages.next() else {
            bail!("a resume is answered with a welcome first");
        };
        anyhow::ensure!(welcome.resumed, "the welcome does not say resumed");
        let Dropped { mut player, .. } = self;
        let mut caught_up = CaughtUp::Deltas(0);
        for message in messages {
            match message {
                ServerMessage::Delta(delta) => {
                    player.state.apply(&delta)?;
                    if let CaughtUp::Deltas(count) = &mut caught_up {
                        *count += 1;
                    }
                }
                ServerMessage::Snapshot(snapshot) => {
                    player.state = RoomState::from_snapshot(snapshot);
                    caught_up = CaughtUp::Snapshot;
                }
                other => player.private.push(other),
            }
        }
        player.connection = connection;
        player.welcome = welcome;
        player.ack().await?;
        Ok((player, caught_up))
    }

    /// One resume attempt through `url`, following one `redirect` (a cluster node that does not
    /// hold the room names the one that does): the connection with the welcome and what came
    /// with it and the URL that answered, or `None` when the room is not (yet) anywhere or the
    /// node is down.
    pub async fn try_resume_at(
        &self,
        url: &str,
    ) -> anyhow::Result<Option<(Connection, Vec<ServerMessage>, String)>> {
        let hello = self.hello()?;
        let mut url = url.to_owned();
        for _ in 0..2 {
            let Ok(mut connection) = Connection::open(&url).await else {
                return Ok(None);
            };
            connection.send(&hello).await?;
            let Received::Batch(messages) = connection.receive().await? else {
                return Ok(None);
            };
            match messages.first() {
                Some(ServerMessage::Redirect(redirect)) => url = redirect.ws_url.clone(),
                Some(ServerMessage::Welcome(_)) => return Ok(Some((connection, messages, url))),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}
