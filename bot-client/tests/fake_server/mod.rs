//! A minimal fake Ludus server for the swarm tests: the lobby's three routes and a WebSocket
//! that welcomes, ticks one "room" per connection at 50 Hz, acknowledges inputs, answers
//! `resync` with a snapshot, answers resumes as [`Faults::resume`] says, and misbehaves as
//! [`Faults`] asks. Version 1 frames only.

use futures_util::{SinkExt, StreamExt};
use ludus_protocol::{
    codec, ClientMessage, Delta, ErrorCode, ErrorMessage, InputAck, PlayerId, Redirect, RoomId,
    ServerMessage, Snapshot, Welcome,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const TICK: Duration = Duration::from_millis(20);

/// How the fake misbehaves.
#[derive(Clone, Copy)]
pub struct Faults {
    /// Skip one tick (a gap) every this many ticks; 0 for never.
    pub gap_every: u64,
    /// Answer each token's first `hello` with a redirect (to this same server), as a node of a
    /// cluster does for a room it does not hold.
    pub redirect_first_hello: bool,
    /// How a resume `hello` is answered.
    pub resume: ResumeAnswer,
}

/// The fake's answer to a resume.
#[derive(Clone, Copy)]
pub enum ResumeAnswer {
    /// `[welcome(resumed), delta...]` from the client's `last_tick`.
    Deltas,
    /// `[welcome(resumed), snapshot]`.
    Snapshot,
    /// `error` with this code, then close 4014.
    Refuse(ErrorCode),
}

/// Ticks the fake's "room" moves on while a session is disconnected, so a resume has deltas
/// to catch up on.
const MISSED_TICKS: u64 = 5;

/// Where a session was when its connection ended, by its current resume token.
#[derive(Clone, Copy)]
struct SessionRecord {
    player: PlayerId,
    tick: u64,
    applied_seq: u32,
}

/// Faults for the tests that do not resume.
pub const NO_FAULTS: Faults = Faults {
    gap_every: 0,
    redirect_first_hello: false,
    resume: ResumeAnswer::Deltas,
};

pub struct FakeServer {
    addr: std::net::SocketAddr,
    next_id: AtomicU64,
    faults: Faults,
    pub redirected: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Live sessions by resume token; a token works once.
    sessions: std::sync::Mutex<std::collections::HashMap<String, SessionRecord>>,
    next_token: AtomicU64,
}

impl FakeServer {
    pub async fn start(faults: Faults) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Arc::new(Self {
            addr: listener.local_addr().expect("addr"),
            next_id: AtomicU64::new(1),
            faults,
            redirected: std::sync::Mutex::new(std::collections::HashSet::new()),
            sessions: std::sync::Mutex::new(std::collections::HashMap::new()),
            next_token: AtomicU64::new(1),
        });
        let accepting = Arc::clone(&server);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Arc::clone(&accepting).serve(stream));
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn serve(self: Arc<Self>, mut stream: TcpStream) {
        let mut head = vec![0_u8; 4096];
        let Ok(peeked) = stream.peek(&mut head).await else {
            return;
        };
        let request = String::from_utf8_lossy(&head[..peeked]).to_string();
        if request.contains("/ws ") {
            self.serve_websocket(stream).await;
        } else {
            self.serve_lobby(&mut stream).await;
        }
    }

    async fn serve_lobby(&self, stream: &mut TcpStream) {
        let mut buffer = Vec::new();
        let mut chunk = [0_u8; 4096];
        // Read the head and the (small) JSON body.
        let path = loop {
            let Ok(read) = stream.read(&mut chunk).await else {
                return;
            };
            if read == 0 {
                return;
            }
            buffer.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&buffer).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break head.split(' ').nth(1).unwrap_or("/").to_owned();
                }
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (status, body) = if path == "/v1/rooms" {
            (
                "201 Created",
                format!(
                    r#"{{"room_id":"room-{id}","room_type":"arena","players":0,"reserved":0,"max_players":10,"metadata":{{}}}}"#
                ),
            )
        } else {
            let room = path
                .strip_prefix("/v1/rooms/")
                .and_then(|rest| rest.strip_suffix("/seats"))
                .map_or_else(|| "mm".to_owned(), str::to_owned);
            (
                "200 OK",
                format!(
                    r#"{{"room_id":"{room}","room_type":"arena","player_id":{id},"ws_url":"ws://{}/v1/rooms/{room}/ws","token":"{id}","expires_at_ms":0}}"#,
                    self.addr
                ),
            )
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
    }

    async fn serve_websocket(&self, stream: TcpStream) {
        let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let Some(Ok(Message::Binary(hello))) = socket.next().await else {
            return;
        };
        let Ok(ClientMessage::Hello(hello)) = codec::decode_client(&hello) else {
            return;
        };
        let first_hello = self
            .redirected
            .lock()
            .expect("lock")
            .insert(hello.token.clone());
        if self.faults.redirect_first_hello && first_hello {
            let redirect = ServerMessage::Redirect(Redirect {
                room: RoomId::parse("room").expect("valid"),
                node: "elsewhere".into(),
                ws_url: format!("ws://{}/v1/rooms/room/ws", self.addr),
            });
            let _ = send(&mut socket, &[redirect]).await;
            let _ = socket.close(None).await;
            return;
        }
        let (player, mut tick, mut applied_seq, opening) = match &hello.resume {
            None => {
                let player = PlayerId(hello.token.parse().unwrap_or(0));
                (player, 100, 0, Opening::Snapshot)
            }
            Some(resume) => {
                let record = self.sessions.lock().expect("lock").remove(&resume.token);
                let Some(record) = record else {
                    let _ = refuse(&mut socket, ErrorCode::ResumeUsed).await;
                    return;
                };
                if let ResumeAnswer::Refuse(code) = self.faults.resume {
                    let _ = refuse(&mut socket, code).await;
                    return;
                }
                let opening = match self.faults.resume {
                    ResumeAnswer::Snapshot => Opening::Snapshot,
                    _ => Opening::DeltasFrom(resume.last_tick),
                };
                let tick = record.tick + MISSED_TICKS;
                (record.player, tick, record.applied_seq, opening)
            }
        };
        let token = format!("resume-{}", self.next_token.fetch_add(1, Ordering::Relaxed));
        let welcome = ServerMessage::Welcome(Welcome {
            session: player.0,
            player,
            room: RoomId::parse("room").expect("valid"),
            room_type: "arena".into(),
            epoch: 1,
            tick_hz: 50,
            window: 16,
            resume_token: Some(token.clone()),
            resumed: hello.resume.is_some(),
            ticks_lost: None,
        });
        let snapshot = |tick, seq| {
            ServerMessage::Snapshot(Snapshot {
                epoch: 1,
                tick,
                entities: vec![],
                acks: vec![InputAck { player, seq }],
            })
        };
        let delta = |base_tick: u64, acks| {
            ServerMessage::Delta(Delta {
                epoch: 1,
                tick: base_tick + 1,
                base_tick,
                upserts: vec![],
                removed: vec![],
                left: Vec::new(),
                acks,
                events: vec![],
            })
        };
        let mut first_batch = vec![welcome];
        match opening {
            Opening::Snapshot => first_batch.push(snapshot(tick, applied_seq)),
            Opening::DeltasFrom(last_tick) => {
                let acks = || {
                    vec![InputAck {
                        player,
                        seq: applied_seq,
                    }]
                };
                first_batch.extend((last_tick..tick).map(|base_tick| delta(base_tick, acks())));
            }
        }
        let record = |tick, applied_seq| SessionRecord {
            player,
            tick,
            applied_seq,
        };
        self.sessions
            .lock()
            .expect("lock")
            .insert(token.clone(), record(tick, applied_seq));
        if send(&mut socket, &first_batch).await.is_err() {
            return;
        }
        let mut acked_seq = applied_seq;
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                message = socket.next() => match message {
                    Some(Ok(Message::Binary(frame))) => match codec::decode_client(&frame) {
                        Ok(ClientMessage::Input(input)) => {
                            applied_seq = applied_seq.max(input.seq);
                            self.sessions.lock().expect("lock").insert(token.clone(), record(tick, applied_seq));
                        }
                        Ok(ClientMessage::Resync(_)) => {
                            let resent = send(&mut socket, &[snapshot(tick, applied_seq)]).await;
                            if resent.is_err() {
                                return;
                            }
                        }
                        Ok(ClientMessage::Leave(_)) => {
                            self.sessions.lock().expect("lock").remove(&token);
                            let _ = socket.close(None).await;
                            return;
                        }
                        _ => {}
                    },
                    Some(Ok(_)) => {}
                    _ => return,
                },
                _ = ticker.tick() => {
                    let base_tick = tick;
                    tick += 1;
                    let gap = self.faults.gap_every != 0 && tick % self.faults.gap_every == 0;
                    let acks = if applied_seq > acked_seq {
                        acked_seq = applied_seq;
                        vec![InputAck { player, seq: applied_seq }]
                    } else {
                        vec![]
                    };
                    let delta = delta(if gap { base_tick - 1 } else { base_tick }, acks);
                    self.sessions.lock().expect("lock").insert(token.clone(), record(tick, applied_seq));
                    if send(&mut socket, &[delta]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// How a session's first batch after `welcome` goes.
enum Opening {
    /// A snapshot of the current tick.
    Snapshot,
    /// The deltas from this tick to the current one (a resume).
    DeltasFrom(u64),
}

/// Refuses a resume: `error` with `code`, then close 4014.
async fn refuse(
    socket: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    code: ErrorCode,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let error = ServerMessage::Error(ErrorMessage {
        code,
        message: "refused by the fake".into(),
    });
    send(socket, &[error]).await?;
    socket
        .close(Some(CloseFrame {
            code: WsCode::from(4014),
            reason: "resume_refused".into(),
        }))
        .await
}

async fn send(
    socket: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    messages: &[ServerMessage],
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    socket
        .send(Message::binary(codec::encode_batch(messages)))
        .await
}
