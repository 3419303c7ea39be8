//! Henge's loop over one client's socket, in place of pgwire's `process_socket`.
//!
//! pgwire's own loop buffers whatever length a client announces (up to a gigabyte) before
//! anything can look at the message, gives every connection a fixed minute to log in, and
//! cannot end an idle session. Here Henge frames the client's messages itself and hands
//! each whole one to pgwire's `process_message`, so that:
//!
//! - a message is buffered only when its announced length is within the limits of the
//!   connection's state ([`super::frame`]): past them, before login, the connection ends
//!   with 08P01, as in PostgreSQL, before anything is buffered; after it, a Query or Parse
//!   longer than `max_statement_size`, or any other message longer than
//!   `max_message_size`, is read and dropped as it arrives, answered with 54000, and the
//!   session goes on;
//! - a message that does not decode ends the connection with 08P01, never with a panic;
//! - `authentication_timeout` bounds the time from connecting to being logged in, and a
//!   session idle longer than its `idle_session_timeout` (or, inside a transaction block,
//!   `idle_in_transaction_session_timeout`) is ended with 57P05 (25P03), as in PostgreSQL;
//! - the read buffer goes back to its small size after a large message.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::{FutureExt, SinkExt};
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::frame::{self, Next, Phase, Violation};
use super::{ConnectionHandlers, Frontend};
use crate::error::{code, PgError};

/// A read buffer larger than this is given back once it is no longer needed.
const KEEP_BUFFER: usize = 64 << 10;

/// The limits on what a connection may send, from the configuration.
#[derive(Debug, Clone)]
pub struct SocketLimits {
    /// From accepting the socket to the end of the login (`authentication_timeout`).
    pub authentication_timeout: Duration,
    /// The largest message other than a statement's text (`max_message_size`).
    pub max_message: usize,
}

/// Serves one client connection to its end.
pub async fn serve(tcp: TcpStream, frontend: Arc<Frontend>) {
    let limits = frontend.socket_limits();
    let local = tcp.local_addr().ok();
    let login_deadline = Instant::now() + limits.authentication_timeout;
    let negotiated =
        tokio::time::timeout_at(login_deadline, negotiate_tls(tcp, frontend.acceptor())).await;
    let mut socket = match negotiated {
        Ok(Ok(Some(socket))) => socket,
        // A direct TLS connection with TLS off, a broken one, or one too slow to start.
        Ok(Ok(None)) | Err(_) => return,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "connection ended during TLS negotiation");
            return;
        }
    };
    // What the negotiation read past its own messages (the startup packet, often).
    let inbox = socket.read_buffer_mut().split();
    let mut connection = Connection {
        socket,
        inbox,
        frontend,
        handlers: None,
        limits,
        login_deadline,
        local,
    };
    if let Err(e) = connection.run().await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

type Socket = tokio_util::codec::Framed<
    pgwire::tokio::server::MaybeTls,
    pgwire::tokio::server::PgWireMessageServerCodec<Arc<crate::session::Prepared>>,
>;

struct Connection {
    socket: Socket,
    /// Bytes read from the client and not yet framed.
    inbox: BytesMut,
    frontend: Arc<Frontend>,
    /// The session's handlers, made when the startup packet arrives: a socket that sends
    /// nothing (or only a cancel request) costs no session.
    handlers: Option<ConnectionHandlers>,
    limits: SocketLimits,
    login_deadline: Instant,
    /// The server's end of the socket (`inet_server_port()`).
    local: Option<std::net::SocketAddr>,
}

fn protocol_violation(message: impl Into<String>) -> PgWireError {
    PgError::new(code::PROTOCOL_VIOLATION.fatal(), message).into()
}

impl From<Violation> for PgWireError {
    fn from(v: Violation) -> PgWireError {
        protocol_violation(v.0)
    }
}

/// What ended a wait for the client.
enum Woke {
    Read(std::io::Result<usize>),
    /// A notification arrived for the idle session.
    Notified,
}

/// Why reading stopped.
enum Stop {
    /// The client closed the socket or the connection failed.
    Closed,
    /// The login took longer than `authentication_timeout`.
    LoginTimeout,
    /// The session sat idle past its timeout, inside a transaction block or not.
    Idle { in_transaction: bool },
}

impl Connection {
    async fn run(&mut self) -> std::io::Result<()> {
        loop {
            let phase = Phase::of(self.socket.state());
            let context = phase.context(self.socket.protocol_version());
            let limits = frame::Limits {
                max_statement: crate::limits::max_statement_bytes(),
                max_message: self.limits.max_message,
            };
            let framed = frame::next(&mut self.inbox, phase, &context, &limits);
            let message = match framed {
                Ok(Next::Message(message)) => message,
                // Whatever was answered goes out before the wait for more input: the
                // replies to a client's pipelined messages (Bind, Execute, Sync) leave in
                // one write, as PostgreSQL's do.
                Ok(Next::Incomplete(want)) => match self.flushed_fill(want, phase).await {
                    Ok(()) => continue,
                    Err(Stop::Closed) => return Ok(()),
                    Err(Stop::LoginTimeout) => {
                        tracing::debug!("login not finished within authentication_timeout");
                        return Ok(());
                    }
                    Err(Stop::Idle { in_transaction }) => {
                        return self.idle_end(in_transaction).await
                    }
                },
                Ok(Next::Oversized { kind, len }) => {
                    if !self.discard(len).await {
                        return Ok(());
                    }
                    if !self.awaiting_sync() {
                        self.refuse_oversized(kind, len).await?;
                    }
                    continue;
                }
                // After an error in the extended protocol everything up to Sync is
                // dropped unanswered.
                Ok(Next::NotUtf8 { .. }) if self.awaiting_sync() => continue,
                Ok(Next::NotUtf8 { message, extended }) => {
                    let error = PgError::new(code::CHARACTER_NOT_IN_REPERTOIRE, message);
                    process_error(&mut self.socket, error.into(), extended).await?;
                    continue;
                }
                Err(e) => return self.end_with(e.into()).await,
            };
            self.shrink();
            if matches!(message, PgWireFrontendMessage::Terminate(_)) {
                return Ok(());
            }
            if !self.dispatch(message).await? {
                return Ok(());
            }
        }
    }

    /// Hands one message to pgwire and its handlers; false once the connection is to end.
    async fn dispatch(&mut self, message: PgWireFrontendMessage) -> std::io::Result<bool> {
        if let PgWireFrontendMessage::CancelRequest(request) = message {
            // On a connection of its own, which then ends, as in PostgreSQL.
            use pgwire::api::cancel::CancelHandler;
            self.frontend.cancel.on_cancel_request(request).await;
            return Ok(false);
        }
        let handlers = self
            .handlers
            .get_or_insert_with(|| self.frontend.connection(self.local))
            .clone();
        let extended = match self.socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let outcome = AssertUnwindSafe(process_message(
            message,
            &mut self.socket,
            handlers.connection.clone(),
            handlers.connection.clone(),
            handlers.connection.clone(),
            handlers.connection.clone(),
            handlers.cancel.clone(),
        ))
        .catch_unwind()
        .await;
        let result = match outcome {
            Ok(result) => result,
            Err(_) => {
                tracing::error!("a panic ended a connection's statement");
                let error = PgError::new(
                    code::INTERNAL_ERROR.fatal(),
                    "internal error: the server could not finish this request",
                )
                .into();
                let _ = self.end_with(error).await;
                return Ok(false);
            }
        };
        let succeeded = result.is_ok();
        match result {
            Err(e) if e.is_fatal() => {
                self.end_with(e).await?;
                return Ok(false);
            }
            Err(e) => process_error(&mut self.socket, e, extended).await?,
            Ok(()) => {}
        }
        // Outside a transaction block a statement's end is its transaction's: what it
        // notified while its rows streamed goes out now, with anything waiting.
        if self.between_transactions() {
            handlers.connection.session.end_transaction(succeeded);
            self.deliver_notifications(false).await?;
        }
        Ok(true)
    }

    /// Whether the session is idle outside a transaction block: the only time PostgreSQL
    /// delivers notifications.
    fn between_transactions(&self) -> bool {
        matches!(self.socket.state(), PgWireConnectionState::ReadyForQuery)
            && !self.in_transaction()
    }

    /// Sends the notifications waiting for the session.
    /// `flush`: send them now; otherwise they go with the next write (at the latest before
    /// the connection waits for input).
    async fn deliver_notifications(&mut self, flush: bool) -> std::io::Result<()> {
        let Some(handlers) = &self.handlers else {
            return Ok(());
        };
        let mailbox = handlers.connection.session.listener.mailbox().clone();
        crate::notify::deliver(&mailbox, &mut self.socket).await?;
        match flush {
            true => self.socket.flush().await,
            false => Ok(()),
        }
    }

    /// [`Connection::fill`] after sending what is buffered.
    async fn flushed_fill(&mut self, want: usize, phase: Phase) -> Result<(), Stop> {
        self.socket.flush().await.map_err(|_| Stop::Closed)?;
        self.fill(want, phase).await
    }

    /// Sends a FATAL error, the connection's last message.
    async fn end_with(&mut self, error: PgWireError) -> std::io::Result<()> {
        let info: ErrorInfo = error.into();
        self.socket
            .send(PgWireBackendMessage::ErrorResponse(info.into()))
            .await
    }

    /// Reads until the inbox holds `want` bytes (or at least some more), within the
    /// deadline of the connection's state. An idle session outside a transaction block
    /// also wakes for a notification, sends it, and comes back (nothing new read).
    async fn fill(&mut self, want: usize, phase: Phase) -> Result<(), Stop> {
        let deadline = match phase {
            Phase::Startup | Phase::Login => Some(self.login_deadline),
            Phase::Running if self.inbox.is_empty() => self.idle_deadline(),
            Phase::Running => None,
        };
        let missing = want.saturating_sub(self.inbox.len());
        // Room for the whole message (it is within the limits), read as it comes.
        self.inbox.reserve(missing.clamp(1024, 8 << 20));
        let mailbox = match &self.handlers {
            Some(h)
                if phase == Phase::Running
                    && self.inbox.is_empty()
                    && self.between_transactions() =>
            {
                Some(h.connection.session.listener.mailbox().clone())
            }
            _ => None,
        };
        let woke = {
            let read = self.socket.get_mut().read_buf(&mut self.inbox);
            let waited = async {
                match &mailbox {
                    Some(mailbox) => tokio::select! {
                        n = read => Woke::Read(n),
                        () = mailbox.arrival() => Woke::Notified,
                    },
                    None => Woke::Read(read.await),
                }
            };
            match deadline {
                Some(at) => match tokio::time::timeout_at(at, waited).await {
                    Ok(woke) => woke,
                    Err(_) if phase == Phase::Running => {
                        let in_transaction = self.in_transaction();
                        return Err(Stop::Idle { in_transaction });
                    }
                    Err(_) => return Err(Stop::LoginTimeout),
                },
                None => waited.await,
            }
        };
        match woke {
            Woke::Notified => self
                .deliver_notifications(true)
                .await
                .map_err(|_| Stop::Closed),
            Woke::Read(Ok(0) | Err(_)) => Err(Stop::Closed),
            Woke::Read(Ok(_)) => Ok(()),
        }
    }

    fn awaiting_sync(&self) -> bool {
        matches!(self.socket.state(), PgWireConnectionState::AwaitingSync)
    }

    fn in_transaction(&self) -> bool {
        !matches!(
            self.socket.transaction_status(),
            pgwire::messages::response::TransactionStatus::Idle
        )
    }

    /// When an idle session is to be ended, if ever.
    fn idle_deadline(&self) -> Option<Instant> {
        if !matches!(self.socket.state(), PgWireConnectionState::ReadyForQuery) {
            return None;
        }
        let timeout = self.handlers.as_ref()?.idle_timeout(self.in_transaction());
        (!timeout.is_zero()).then(|| Instant::now() + timeout)
    }

    /// Ends a session idle past its timeout, telling the client why.
    async fn idle_end(&mut self, in_transaction: bool) -> std::io::Result<()> {
        let error = if in_transaction {
            PgError::new(
                code::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                "terminating connection due to idle-in-transaction timeout",
            )
        } else {
            PgError::new(
                code::IDLE_SESSION_TIMEOUT,
                "terminating connection due to idle-session timeout",
            )
        };
        self.end_with(error.into()).await
    }

    /// Reads and drops the `len` bytes of an oversized message, the inbox's first; false
    /// when the client went away meanwhile.
    async fn discard(&mut self, mut len: usize) -> bool {
        let buffered = len.min(self.inbox.len());
        self.inbox.advance(buffered);
        len -= buffered;
        self.shrink();
        let mut scratch = vec![0u8; 64 << 10];
        while len > 0 {
            let want = len.min(scratch.len());
            match self.socket.get_mut().read(&mut scratch[..want]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => len -= n,
            }
        }
        true
    }

    /// Answers an oversized message with 54000, leaving the session as an error in that
    /// message would.
    async fn refuse_oversized(&mut self, kind: u8, len: usize) -> std::io::Result<()> {
        let error = match kind {
            // The text of a Query is all of it but the type, the length and the final zero
            // byte; a Parse also holds names and types, so its size is an upper bound.
            b'Q' => crate::limits::too_long(len - 6, crate::limits::max_statement_bytes()),
            b'P' => crate::limits::too_long(len, crate::limits::max_statement_bytes()),
            _ => PgError::new(
                code::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "message is too long: {len} bytes, the limit is {} (max_message_size)",
                    self.limits.max_message
                ),
            ),
        };
        let extended = match self.socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => {
                // The COPY is over: what it read so far is thrown away.
                if let Some(handlers) = &self.handlers {
                    handlers.abandon_copy();
                }
                if !extended {
                    self.socket.set_state(PgWireConnectionState::ReadyForQuery);
                }
                extended
            }
            _ => kind != b'Q',
        };
        process_error(&mut self.socket, error.into(), extended).await
    }

    /// Gives back the inbox's memory after a large message.
    fn shrink(&mut self) {
        if self.inbox.capacity() > KEEP_BUFFER && self.inbox.len() <= KEEP_BUFFER / 2 {
            let mut small = BytesMut::with_capacity(KEEP_BUFFER / 8);
            small.extend_from_slice(&self.inbox);
            self.inbox = small;
        }
    }
}
