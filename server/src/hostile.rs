//! Hostile input, tested: whatever bytes a client sends, Henge's readers of them (the
//! SASL exchange, bound parameters, the statement limits) end in a value or an error,
//! never a panic. Each property runs on mutations of well-formed messages (bytes flipped,
//! lengths rewritten, cut short, garbage appended) and on plain random bytes, in every
//! state the protocol decoder can be in.
//!
//! Messages are framed as the connection's loop frames them ([`crate::wire::frame`]).
//! pgwire's own decoder panics on some inputs: its Bind and SASLInitialResponse readers
//! trust lengths the client gives that overrun the message (found here), so Henge reads
//! those two itself ([`crate::wire::frame::read_bind`], [`crate::auth::sasl_initial`]);
//! the framing also catches any other panic of pgwire's decoder and ends the connection
//! with 08P01. `tests/hostile.rs` drives the same inputs over real sockets.

#![cfg(test)]

use bytes::BytesMut;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

use crate::wire::frame::{self, Limits, Next, Phase};
use proptest::prelude::*;

/// A frontend message: type byte, length, body.
fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Well-formed messages of every kind a client sends.
fn samples() -> Vec<Vec<u8>> {
    let mut startup = Vec::new();
    let body = [
        196608u32.to_be_bytes().to_vec(),
        cstr("user"),
        cstr("henge"),
        cstr("database"),
        cstr("henge"),
        vec![0],
    ]
    .concat();
    startup.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    startup.extend_from_slice(&body);
    let ssl = [0, 0, 0, 8, 4, 210, 22, 47].to_vec();
    let cancel = [
        &[0, 0, 0, 16, 4, 210, 22, 46][..],
        &[0, 0, 0, 7, 1, 2, 3, 4],
    ]
    .concat();
    let parse = [
        cstr("s1"),
        cstr("SELECT $1::int + $2"),
        2i16.to_be_bytes().to_vec(),
        23u32.to_be_bytes().to_vec(),
        0u32.to_be_bytes().to_vec(),
    ]
    .concat();
    let bind = [
        cstr("p1"),
        cstr("s1"),
        1i16.to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        2i16.to_be_bytes().to_vec(),
        4i32.to_be_bytes().to_vec(),
        7i32.to_be_bytes().to_vec(),
        (-1i32).to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        0i16.to_be_bytes().to_vec(),
    ]
    .concat();
    let sasl_initial = [
        cstr("SCRAM-SHA-256"),
        20i32.to_be_bytes().to_vec(),
        b"n,,n=,r=abcdefghijkl".to_vec(),
    ]
    .concat();
    vec![
        startup,
        ssl,
        cancel,
        message(b'Q', &cstr("SELECT 1; SELECT 'x'")),
        message(b'P', &parse),
        message(b'B', &bind),
        message(b'E', &[cstr("p1"), 0i32.to_be_bytes().to_vec()].concat()),
        message(
            b'D',
            &[b'S'].iter().copied().chain(cstr("s1")).collect::<Vec<_>>(),
        ),
        message(
            b'C',
            &[b'P'].iter().copied().chain(cstr("p1")).collect::<Vec<_>>(),
        ),
        message(b'S', &[]),
        message(b'H', &[]),
        message(b'd', b"1\tabc\n"),
        message(b'c', &[]),
        message(b'f', &cstr("oops")),
        message(b'p', &sasl_initial),
        message(b'p', b"c=biws,r=abcdefghijkl,p=AAAA"),
        message(b'X', &[]),
    ]
}

/// The SSL negotiation's decoding (pgwire's, before Henge frames anything).
fn ssl_context() -> DecodeContext {
    let mut ssl = DecodeContext::new(ProtocolVersion::default());
    ssl.awaiting_frontend_ssl = true;
    ssl.awaiting_frontend_startup = true;
    ssl
}

/// Silences the panic messages of pgwire's decoder (which the framing catches).
fn quiet() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let theirs = info
                .location()
                .is_some_and(|l| l.file().contains("/bytes-") || l.file().contains("/pgwire-"));
            if !theirs {
                previous(info);
            }
        }));
    });
}

/// The next message as the connection's loop frames it, None when it would stop.
fn next(buf: &mut BytesMut, phase: Phase) -> Option<PgWireFrontendMessage> {
    quiet();
    loop {
        let limits = Limits {
            max_statement: 1 << 20,
            max_message: 1 << 20,
        };
        let context = phase.context(ProtocolVersion::default());
        match frame::next(buf, phase, &context, &limits) {
            Ok(Next::Message(message)) => return Some(message),
            Ok(Next::NotUtf8 { .. }) => continue,
            Ok(Next::Incomplete(_)) | Ok(Next::Oversized { .. }) | Err(_) => return None,
        }
    }
}

/// Decodes everything in `bytes` as the server would, in each phase of a connection,
/// following each password message into the SASL reads the login makes.
fn decode_all(bytes: &[u8]) {
    quiet();
    let mut ssl = BytesMut::from(bytes);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        PgWireFrontendMessage::decode(&mut ssl, &ssl_context())
    }));
    for phase in [Phase::Startup, Phase::Login, Phase::Running] {
        let mut buf = BytesMut::from(bytes);
        for _ in 0..64 {
            match next(&mut buf, phase) {
                Some(PgWireFrontendMessage::PasswordMessageFamily(p)) => {
                    if let Ok((_, data)) = crate::auth::sasl_initial(p) {
                        let _ = crate::scram::parse(&String::from_utf8_lossy(
                            data.as_deref().unwrap_or_default(),
                        ));
                    }
                }
                Some(PgWireFrontendMessage::Query(q)) => {
                    let _ = crate::limits::check(&q.query);
                }
                Some(_) => {}
                None => break,
            }
        }
    }
}

/// A mutation of a message.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Length(usize, u32),
    Cut(usize),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (0usize..2, any::<u32>()).prop_map(|(i, n)| Mutation::Length(i, n)),
        any::<usize>().prop_map(Mutation::Cut),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Append),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Flip(i, b) if !bytes.is_empty() => {
                let i = i % bytes.len();
                bytes[i] ^= b | 1;
            }
            Mutation::Length(offset, n) if bytes.len() >= offset + 4 => {
                bytes[*offset..offset + 4].copy_from_slice(&n.to_be_bytes());
            }
            Mutation::Cut(i) if !bytes.is_empty() => bytes.truncate(i % bytes.len()),
            Mutation::Append(more) => bytes.extend_from_slice(more),
            _ => {}
        }
    }
    bytes
}

#[test]
fn a_sasl_length_past_the_message_is_an_error() {
    use pgwire::messages::startup::PasswordMessageFamily;
    let body = [
        cstr("SCRAM-SHA-256"),
        1_000_000i32.to_be_bytes().to_vec(),
        b"n,,".to_vec(),
    ]
    .concat();
    let raw = PasswordMessageFamily::Raw(BytesMut::from(&body[..]));
    assert!(crate::auth::sasl_initial(raw).is_err());
    let cut = PasswordMessageFamily::Raw(BytesMut::from(&cstr("SCRAM-SHA-256")[..]));
    assert!(crate::auth::sasl_initial(cut).is_err());
    let body = [
        cstr("SCRAM-SHA-256"),
        3i32.to_be_bytes().to_vec(),
        b"n,,".to_vec(),
    ]
    .concat();
    let good = PasswordMessageFamily::Raw(BytesMut::from(&body[..]));
    let (mechanism, data) = crate::auth::sasl_initial(good).unwrap();
    assert_eq!(
        (mechanism.as_str(), data.as_deref()),
        ("SCRAM-SHA-256", Some(&b"n,,"[..]))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_messages_never_panic(
        which in 0usize..17,
        mutations in proptest::collection::vec(mutation(), 1..6),
        tail in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let samples = samples();
        let mut bytes = mutate(samples[which % samples.len()].clone(), &mutations);
        bytes.extend_from_slice(&tail);
        decode_all(&bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn binary_parameters_of_any_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..40),
        oid in prop::sample::select(vec![16u32, 17, 20, 21, 23, 25, 114, 700, 701, 1043, 1082, 1083, 1114, 1184, 1186, 1700, 2950, 3802]),
        binary in any::<bool>(),
    ) {
        let ty = pgwire::api::Type::from_oid(oid).unwrap_or(pgwire::api::Type::TEXT);
        let zone: datafusion::arrow::array::timezone::Tz = "UTC".parse().expect("UTC");
        let _ = crate::params::decode(Some(&bytes), binary, Some(&ty), None, &zone);
    }
}

#[test]
fn the_samples_are_well_formed() {
    // Each sample alone decodes to a message in the state it is meant for.
    for bytes in samples() {
        let ssl = matches!(
            PgWireFrontendMessage::decode(&mut BytesMut::from(&bytes[..]), &ssl_context()),
            Ok(Some(PgWireFrontendMessage::SslNegotiation(
                pgwire::messages::SslNegotiationMetaMessage::PostgresSsl(_)
            )))
        );
        let framed = [Phase::Startup, Phase::Login, Phase::Running]
            .into_iter()
            .any(|phase| next(&mut BytesMut::from(&bytes[..]), phase).is_some());
        assert!(ssl || framed, "{bytes:?}");
    }
}

#[test]
fn a_bind_may_carry_more_than_32767_parameters() {
    // Counts are unsigned 16-bit on the wire, as PostgreSQL reads them.
    let mut body = b"\0\0".to_vec();
    body.extend_from_slice(&0u16.to_be_bytes());
    body.extend_from_slice(&40_000u16.to_be_bytes());
    for _ in 0..40_000 {
        body.extend_from_slice(&(-1i32).to_be_bytes());
    }
    body.extend_from_slice(&0u16.to_be_bytes());
    let bind = frame::read_bind(&mut frame::Body(bytes::Bytes::from(body))).unwrap();
    assert_eq!(bind.parameters.len(), 40_000);
}

#[test]
fn henge_reads_a_bind_as_pgwire_writes_it() {
    use pgwire::messages::extendedquery::Bind;
    use pgwire::messages::Message;
    let bind = Bind::new(
        Some("p1".into()),
        None,
        vec![1, 0],
        vec![
            Some(bytes::Bytes::from_static(b"\0\0\0\x07")),
            None,
            Some(bytes::Bytes::new()),
        ],
        vec![1],
    );
    let mut wire = BytesMut::new();
    bind.encode(&mut wire).unwrap();
    match next(&mut wire, Phase::Running) {
        Some(PgWireFrontendMessage::Bind(read)) => assert_eq!(read, bind),
        other => panic!("{other:?}"),
    }
    assert!(wire.is_empty());
}
