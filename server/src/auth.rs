//! Who may connect, and how they prove it: rules by client address (PostgreSQL's
//! pg_hba.conf in spirit) choosing `trust`, `scram-sha-256` or `reject`, and the
//! SCRAM-SHA-256 exchange (with channel binding, SCRAM-SHA-256-PLUS, over TLS) against the
//! verifiers of the role catalog.
//!
//! Failures look alike: an unknown role, a role without a password and a wrong password all
//! run the whole exchange (against a verifier no password matches) and end in 28P01
//! "password authentication failed for user …", after a delay that grows with the recent
//! failures from that address, so that guessing is slow. A role that may not log in
//! (NOLOGIN, an expired VALID UNTIL) is told so with 28000 only after its password was
//! right.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pgwire::api::auth::sasl::scram::{ScramServerAuth, ScramServerAuthWaitingForClientFinal};
use serde::Deserialize;

/// How a rule lets clients in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Method {
    /// No password: whoever connects is the role they name.
    #[serde(rename = "trust")]
    Trust,
    /// A SCRAM-SHA-256 exchange with the role's password.
    #[serde(rename = "scram-sha-256")]
    Scram,
    /// Refused.
    #[serde(rename = "reject")]
    Reject,
}

/// One rule: clients from `address` authenticate with `method`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `"loopback"`, `"all"`, an address or a CIDR block (`"10.0.0.0/8"`, `"::1/128"`).
    pub address: String,
    pub method: Method,
}

impl Rule {
    fn new(address: &str, method: Method) -> Rule {
        Rule {
            address: address.to_owned(),
            method,
        }
    }

    /// The rules of a server with no `[[auth]]` in its configuration: no password from
    /// this machine, SCRAM from anywhere else.
    pub fn defaults() -> Vec<Rule> {
        vec![
            Rule::new("loopback", Method::Trust),
            Rule::new("all", Method::Scram),
        ]
    }
}

/// The addresses a rule names.
enum Range {
    Loopback,
    All,
    Block(IpAddr, u8),
}

impl Range {
    /// Whether some address other than this machine's is in the range.
    fn reaches_beyond_loopback(&self) -> bool {
        match self {
            Range::Loopback => false,
            Range::All => true,
            Range::Block(IpAddr::V4(v4), bits) => !(v4.octets()[0] == 127 && *bits >= 8),
            Range::Block(IpAddr::V6(v6), bits) => !(v6.is_loopback() && *bits == 128),
        }
    }

    fn parse(text: &str) -> Result<Range, String> {
        let text = text.trim();
        match text {
            "loopback" | "localhost" => return Ok(Range::Loopback),
            "all" => return Ok(Range::All),
            _ => {}
        }
        let (ip, bits) = match text.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (text, None),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("invalid address \"{text}\" in an auth rule"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| format!("invalid prefix length in \"{text}\""))?,
            None => max,
        };
        Ok(Range::Block(ip, bits))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match self {
            Range::Loopback => ip.is_loopback(),
            Range::All => true,
            Range::Block(net, bits) => match (net, ip) {
                (IpAddr::V4(net), IpAddr::V4(ip)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                    u32::from(*net) & mask == u32::from(ip) & mask
                }
                (IpAddr::V6(net), IpAddr::V6(ip)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                    u128::from(*net) & mask == u128::from(ip) & mask
                }
                _ => false,
            },
        }
    }
}

/// The rules, their addresses read once.
pub struct Rules(Vec<(Range, Method)>);

impl Rules {
    /// Reads the rules' addresses; an error names one that cannot be read.
    pub fn new(rules: &[Rule]) -> Result<Rules, String> {
        rules
            .iter()
            .map(|r| Ok((Range::parse(&r.address)?, r.method)))
            .collect::<Result<_, String>>()
            .map(Rules)
    }

    /// The method the first matching rule gives a client from `ip`; `reject` when none
    /// does.
    pub fn method_for(&self, ip: IpAddr) -> Method {
        self.0
            .iter()
            .find(|(range, _)| range.contains(ip))
            .map_or(Method::Reject, |(_, method)| *method)
    }

    /// Whether the rules let a client from beyond this machine in without a password.
    pub fn trust_remote(&self) -> bool {
        self.0
            .iter()
            .any(|(range, method)| *method == Method::Trust && range.reaches_beyond_loopback())
    }
}

/// Recent failed logins by client address, for the delay before a failure is answered.
#[derive(Debug, Default)]
pub struct Failures {
    recent: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// How long failures are remembered.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(10);

impl Failures {
    /// Records a failure from `ip`; how long to wait before answering it: `base` for the
    /// first within a minute, doubling with each further one, at most ten seconds.
    pub fn failed(&self, ip: IpAddr, base: Duration) -> Duration {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        recent.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_MEMORY);
        // Bounded: a flood from many addresses forgets the oldest.
        if recent.len() >= 100_000 {
            recent.clear();
        }
        let entry = recent.entry(ip).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = entry.0.saturating_sub(1).min(16);
        base.saturating_mul(1 << doublings).min(MAX_DELAY.max(base))
    }
}

/// Where one connection's password exchange stands.
#[derive(Debug, Default)]
pub enum Exchange {
    /// Nothing asked yet (or trust).
    #[default]
    None,
    /// AuthenticationSASL sent; waiting for the client's first message.
    Started { secure: bool },
    /// The server's first message sent; waiting for the client's proof. `real` is false
    /// when the verifier was a stand-in (no such role, or no password).
    Proving {
        waiting: Box<ScramServerAuthWaitingForClientFinal>,
        real: bool,
    },
}

/// The mechanism and data of a client's first SASL message, read defensively: pgwire's
/// own reader trusts the length the client gives and panics on one that overruns the
/// message (found by the mutation tests in `hostile.rs`).
pub fn sasl_initial(
    message: pgwire::messages::startup::PasswordMessageFamily,
) -> Result<(String, Option<bytes::Bytes>), String> {
    use pgwire::messages::startup::PasswordMessageFamily;
    let PasswordMessageFamily::Raw(mut body) = message else {
        return message
            .into_sasl_initial_response()
            .map(|m| (m.auth_method, m.data))
            .map_err(|e| e.to_string());
    };
    let end = body
        .iter()
        .position(|&b| b == 0)
        .ok_or("the SASL mechanism is not terminated")?;
    let mechanism = String::from_utf8(body.split_to(end).to_vec())
        .map_err(|_| "the SASL mechanism is not UTF-8")?;
    let _ = body.split_to(1);
    if body.len() < 4 {
        return Err("the SASL message is cut short".into());
    }
    let length = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let _ = body.split_to(4);
    let data = match length {
        -1 => None,
        n if n >= 0 && n as usize <= body.len() => Some(body.split_to(n as usize).freeze()),
        _ => return Err("the SASL data length does not fit the message".into()),
    };
    Ok((mechanism, data))
}

/// The SCRAM authenticators, made once: one for plain connections, and with TLS one bound
/// to the certificate (SCRAM-SHA-256-PLUS). A client on a plain socket cannot bind, and
/// one on TLS that could but did not is refused by the bound one.
pub struct Scram {
    plain: ScramServerAuth,
    bound: Option<ScramServerAuth>,
}

impl Scram {
    /// The authenticators; `certificate_pem` is the TLS certificate chain, if TLS is on.
    pub fn new(certificate_pem: Option<&[u8]>) -> Result<Scram, String> {
        let mut plain = ScramServerAuth::new();
        plain.set_iterations(crate::scram::ITERATIONS);
        let bound = match certificate_pem {
            Some(pem) => {
                let mut bound = plain.clone();
                bound.configure_certificate(pem).map_err(|e| {
                    format!("the TLS certificate cannot be used for channel binding: {e}")
                })?;
                Some(bound)
            }
            None => None,
        };
        Ok(Scram { plain, bound })
    }

    /// The authenticator for a connection, over TLS (`secure`) or not.
    pub fn for_connection(&self, secure: bool) -> &ScramServerAuth {
        match (&self.bound, secure) {
            (Some(bound), true) => bound,
            _ => &self.plain,
        }
    }

    /// The SASL mechanisms offered on a connection.
    pub fn mechanisms(&self, secure: bool) -> Vec<String> {
        let mut mechanisms = vec!["SCRAM-SHA-256".to_owned()];
        if secure && self.bound.is_some() {
            mechanisms.insert(0, "SCRAM-SHA-256-PLUS".to_owned());
        }
        mechanisms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn rules(rules: &[Rule]) -> Rules {
        Rules::new(rules).unwrap()
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let defaults = rules(&Rule::defaults());
        assert_eq!(defaults.method_for(ip("127.0.0.1")), Method::Trust);
        assert_eq!(defaults.method_for(ip("::1")), Method::Trust);
        assert_eq!(defaults.method_for(ip("10.1.2.3")), Method::Scram);
        let some = rules(&[
            Rule::new("10.0.0.0/8", Method::Scram),
            Rule::new("192.168.1.7", Method::Trust),
        ]);
        assert_eq!(some.method_for(ip("10.200.0.1")), Method::Scram);
        assert_eq!(some.method_for(ip("::ffff:10.0.0.1")), Method::Scram);
        assert_eq!(some.method_for(ip("192.168.1.7")), Method::Trust);
        assert_eq!(some.method_for(ip("192.168.1.8")), Method::Reject);
        assert_eq!(some.method_for(ip("127.0.0.1")), Method::Reject);
    }

    #[test]
    fn trust_beyond_this_machine_is_noticed() {
        assert!(!rules(&Rule::defaults()).trust_remote());
        assert!(!rules(&[Rule::new("127.0.0.0/8", Method::Trust)]).trust_remote());
        assert!(rules(&[Rule::new("0.0.0.0/0", Method::Trust)]).trust_remote());
        assert!(rules(&[Rule::new("10.0.0.1", Method::Trust)]).trust_remote());
        assert!(Rules::new(&[Rule::new("10.0.0.0/33", Method::Trust)]).is_err());
        assert!(Rules::new(&[Rule::new("nowhere", Method::Trust)]).is_err());
    }

    #[test]
    fn failures_slow_down_and_are_forgotten() {
        let failures = Failures::default();
        let base = Duration::from_millis(100);
        assert_eq!(failures.failed(ip("10.0.0.1"), base), base);
        assert_eq!(failures.failed(ip("10.0.0.1"), base), base * 2);
        assert_eq!(failures.failed(ip("10.0.0.1"), base), base * 4);
        assert_eq!(failures.failed(ip("10.0.0.2"), base), base);
        for _ in 0..20 {
            failures.failed(ip("10.0.0.1"), base);
        }
        assert_eq!(failures.failed(ip("10.0.0.1"), base), MAX_DELAY);
    }
}
