//! Framing of what a client sends: bytes in, whole messages out, within limits, never a
//! panic. Pure (no I/O, nothing of Henge's but this file), so that the fuzzer
//! (`server/fuzz`) and the property tests (`crate::hostile`) drive exactly the code the
//! connection loop (`super::socket`) runs.
//!
//! A message is taken only once its announced length is within the limits of the
//! connection's phase: the startup packet 10,000 bytes and each login message 64 KiB (past
//! them the connection ends, as in PostgreSQL); a Query or Parse longer than the statement
//! limit, or any other message longer than the message limit, is reported as oversized
//! for the caller to drop as it arrives. The messages of the simple and extended query
//! protocols are read here: pgwire's readers of them trust the lengths inside the message
//! (and panic; the fuzzer found them) and replace invalid UTF-8 silently.

use std::panic::AssertUnwindSafe;

use bytes::{Buf, Bytes, BytesMut};
use pgwire::api::PgWireConnectionState;
use pgwire::error::PgWireError;
use pgwire::messages::extendedquery::Bind;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

/// The largest startup packet (PostgreSQL's MAX_STARTUP_PACKET_LENGTH).
const MAX_STARTUP_PACKET: usize = 10_000;
/// The largest message before the client has logged in (PostgreSQL's
/// PG_MAX_AUTH_TOKEN_LENGTH, with room for the header).
const MAX_LOGIN_MESSAGE: usize = 65_535 + 64;
/// What a Parse message may hold besides the statement text: names and parameter types.
const PARSE_OVERHEAD: usize = 1 << 20;

/// The largest messages a logged-in client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A statement's text (Query, Parse).
    pub max_statement: usize,
    /// Any other message.
    pub max_message: usize,
}

/// What the next bytes of the inbox hold.
#[derive(Debug)]
pub enum Next {
    /// More bytes are needed: at least this many in all.
    Incomplete(usize),
    /// A whole message.
    Message(PgWireFrontendMessage),
    /// A message longer than the limit; its `len` bytes (all of it) are to be dropped.
    Oversized { kind: u8, len: usize },
    /// A whole message with a string that is not UTF-8: refused (22021), in the simple or
    /// the extended protocol, and the session goes on.
    NotUtf8 { message: String, extended: bool },
}

/// A protocol violation that ends the connection, in PostgreSQL's words (08P01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

fn violation(message: impl Into<String>) -> Violation {
    Violation(message.into())
}

/// The connection's phase, as far as framing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The startup packet (or a cancel request): no type byte.
    Startup,
    /// Password messages.
    Login,
    /// Logged in.
    Running,
}

impl Phase {
    pub fn of(state: PgWireConnectionState) -> Phase {
        match state {
            PgWireConnectionState::AwaitingSslRequest | PgWireConnectionState::AwaitingStartup => {
                Phase::Startup
            }
            PgWireConnectionState::AuthenticationInProgress => Phase::Login,
            _ => Phase::Running,
        }
    }

    /// pgwire's decoding context for messages of this phase.
    pub fn context(self, version: ProtocolVersion) -> DecodeContext {
        let mut context = DecodeContext::new(version);
        context.awaiting_frontend_ssl = false;
        context.awaiting_frontend_startup = self == Phase::Startup;
        context
    }
}

/// The largest message of type `kind` a logged-in client may send.
fn limit_of(kind: u8, limits: &Limits) -> usize {
    match kind {
        b'Q' => limits.max_statement + 5 + 1,
        b'P' => limits.max_statement + PARSE_OVERHEAD,
        _ => limits.max_message,
    }
}

/// Frames the next message of `inbox`: takes it out and decodes it when it is whole and
/// within the limits.
pub fn next(
    inbox: &mut BytesMut,
    phase: Phase,
    context: &DecodeContext,
    limits: &Limits,
) -> Result<Next, Violation> {
    let (header, kind, limit) = match phase {
        Phase::Startup => (4, 0, MAX_STARTUP_PACKET),
        Phase::Login => (5, inbox.first().copied().unwrap_or(0), MAX_LOGIN_MESSAGE),
        Phase::Running => {
            let kind = inbox.first().copied().unwrap_or(0);
            (5, kind, limit_of(kind, limits))
        }
    };
    if inbox.len() < header {
        return Ok(Next::Incomplete(header));
    }
    let announced = u32::from_be_bytes([
        inbox[header - 4],
        inbox[header - 3],
        inbox[header - 2],
        inbox[header - 1],
    ]) as usize;
    if announced < 4 || (phase == Phase::Startup && announced < 8) {
        return Err(violation("invalid message length"));
    }
    // The whole message: the type byte, when there is one, and the announced length.
    let len = announced + header - 4;
    if announced > limit {
        return match phase {
            Phase::Running => Ok(Next::Oversized { kind, len }),
            _ => Err(violation("invalid message length")),
        };
    }
    if inbox.len() < len {
        return Ok(Next::Incomplete(len));
    }
    if phase == Phase::Login && !matches!(kind, b'p' | b'X') {
        return Err(violation(format!(
            "expected password response, got message type {kind}"
        )));
    }
    let mut frame = inbox.split_to(len);
    if phase == Phase::Running {
        if let Some(read) = reader_of(kind) {
            frame.advance(5);
            return match read(&mut Body(frame.freeze())) {
                Ok(message) => Ok(Next::Message(message)),
                Err(Bad::Violation(v)) => Err(v),
                Err(Bad::NotUtf8(message)) => Ok(Next::NotUtf8 {
                    message,
                    extended: kind != b'Q',
                }),
            };
        }
    }
    // pgwire reads the rest (startup, password, COPY and the bodiless messages); a whole
    // message, so "incomplete" is a lie in its length fields, and a panic of its reader
    // is caught as the violation it is.
    match std::panic::catch_unwind(AssertUnwindSafe(|| {
        PgWireFrontendMessage::decode(&mut frame, context)
    })) {
        Ok(Ok(Some(message))) => Ok(Next::Message(message)),
        Ok(Ok(None)) | Err(_) => Err(violation("invalid message format")),
        Ok(Err(PgWireError::InvalidMessageType(kind))) => {
            Err(violation(format!("invalid frontend message type {kind}")))
        }
        Ok(Err(e)) => Err(violation(e.to_string())),
    }
}

/// Why a message body cannot be read.
#[derive(Debug)]
pub enum Bad {
    /// Its lengths or terminators are wrong: the connection cannot go on.
    Violation(Violation),
    /// A string in it is not UTF-8: the message is refused, the session goes on.
    NotUtf8(String),
}

impl From<Violation> for Bad {
    fn from(v: Violation) -> Bad {
        Bad::Violation(v)
    }
}

/// The body of one message, read field by field, every length checked against what is
/// there (pgwire's readers of these messages trust them, and panic).
pub struct Body(pub Bytes);

fn malformed() -> Bad {
    Bad::Violation(violation("invalid message format"))
}

impl Body {
    fn need(&self, n: usize) -> Result<(), Bad> {
        if self.0.remaining() < n {
            return Err(malformed());
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, Bad> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }

    fn u16(&mut self) -> Result<u16, Bad> {
        self.need(2)?;
        Ok(self.0.get_u16())
    }

    fn i16(&mut self) -> Result<i16, Bad> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }

    fn i32(&mut self) -> Result<i32, Bad> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }

    fn u32(&mut self) -> Result<u32, Bad> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes, Bad> {
        self.need(n)?;
        Ok(self.0.split_to(n))
    }

    /// A zero-terminated string, in UTF-8.
    fn string(&mut self) -> Result<String, Bad> {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Bad::Violation(violation("invalid string in message")))?;
        let text = self.0.split_to(end);
        self.0.advance(1);
        match std::str::from_utf8(&text) {
            Ok(text) => Ok(text.to_owned()),
            Err(e) => {
                let bad: Vec<String> = text[e.valid_up_to()..]
                    .iter()
                    .take(e.error_len().unwrap_or(1))
                    .map(|b| format!("0x{b:02x}"))
                    .collect();
                Err(Bad::NotUtf8(format!(
                    "invalid byte sequence for encoding \"UTF8\": {}",
                    bad.join(" ")
                )))
            }
        }
    }

    /// A name: empty is the unnamed statement or portal.
    fn name(&mut self) -> Result<Option<String>, Bad> {
        self.string().map(|s| Some(s).filter(|s| !s.is_empty()))
    }

    /// A count of `each`-byte items (unsigned 16-bit, as PostgreSQL reads them), no more
    /// than the body holds.
    fn count(&mut self, each: usize) -> Result<usize, Bad> {
        let n = usize::from(self.u16()?);
        self.need(n.saturating_mul(each))?;
        Ok(n)
    }

    fn codes(&mut self) -> Result<Vec<i16>, Bad> {
        let n = self.count(2)?;
        (0..n).map(|_| self.i16()).collect()
    }
}

type Reader = fn(&mut Body) -> Result<PgWireFrontendMessage, Bad>;

/// Henge's own reader of a logged-in client's message of type `kind`, where it has one.
fn reader_of(kind: u8) -> Option<Reader> {
    use pgwire::messages::extendedquery::{Close, Describe, Execute, Parse};
    use pgwire::messages::simplequery::Query;
    use PgWireFrontendMessage as M;
    Some(match kind {
        b'Q' => |b| Ok(M::Query(Query::new(b.string()?))),
        b'P' => |b| {
            let name = b.name()?;
            let query = b.string()?;
            let n = b.count(4)?;
            let types = (0..n).map(|_| b.u32()).collect::<Result<_, _>>()?;
            Ok(M::Parse(Parse::new(name, query, types)))
        },
        b'B' => |b| read_bind(b).map(M::Bind),
        b'D' => |b| Ok(M::Describe(Describe::new(b.u8()?, b.name()?))),
        b'E' => |b| Ok(M::Execute(Execute::new(b.name()?, b.i32()?))),
        b'C' => |b| Ok(M::Close(Close::new(b.u8()?, b.name()?))),
        _ => return None,
    })
}

/// Reads a Bind message's body.
pub fn read_bind(body: &mut Body) -> Result<Bind, Bad> {
    let portal = body.name()?;
    let statement = body.name()?;
    let parameter_formats = body.codes()?;
    let n = body.count(4)?;
    let mut parameters = Vec::with_capacity(n);
    for _ in 0..n {
        match body.i32()? {
            -1 => parameters.push(None),
            len => {
                let len = usize::try_from(len).map_err(|_| malformed())?;
                parameters.push(Some(body.bytes(len)?));
            }
        }
    }
    let result_formats = body.codes()?;
    Ok(Bind::new(
        portal,
        statement,
        parameter_formats,
        parameters,
        result_formats,
    ))
}
