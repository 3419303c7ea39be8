//! PostgreSQL's session parameters (`SET`, `SHOW`, `RESET`, `current_setting`,
//! `set_config`, `pg_settings`): which ones Henge knows, the values it accepts and how it
//! writes them back, as PostgreSQL does.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use datafusion::arrow::array::timezone::Tz;

use super::{code, SqlStateError, USER, USER_OID};

/// The PostgreSQL version Henge reports, for clients that check it.
pub const SERVER_VERSION: &str = "16.0";
pub const SERVER_VERSION_NUM: &str = "160000";

/// What values a parameter takes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Reported but never changed.
    Fixed,
    Text,
    Bool,
    Integer {
        min: i64,
        max: i64,
    },
    /// One of these words (the first is what Henge can honour; the rest are PostgreSQL's
    /// other valid values, refused as unsupported).
    Choice {
        supported: &'static [&'static str],
        known: &'static [&'static str],
    },
    /// Milliseconds, or a number with a unit.
    Duration,
    TimeZone,
    DateStyle,
    Encoding,
    SearchPath,
}

/// One parameter Henge knows.
#[derive(Debug)]
struct Param {
    name: &'static str,
    default: &'static str,
    kind: Kind,
    /// Sent to the client in a ParameterStatus message whenever it changes.
    reported: bool,
    description: &'static str,
}

const ISOLATION: Kind = Kind::Choice {
    supported: &[
        "read committed",
        "read uncommitted",
        "repeatable read",
        "serializable",
    ],
    known: &[],
};

/// Every parameter, by PostgreSQL's name (case is ignored when looking them up).
const PARAMS: &[Param] = &[
    Param {
        name: "application_name",
        default: "",
        kind: Kind::Text,
        reported: true,
        description: "Sets the application name to be reported in statistics and logs.",
    },
    Param {
        name: "block_size",
        default: "8192",
        kind: Kind::Fixed,
        reported: false,
        description: "Shows the size of a disk block.",
    },
    Param {
        name: "bytea_output",
        default: "hex",
        kind: Kind::Choice {
            supported: &["hex"],
            known: &["escape"],
        },
        reported: false,
        description: "Sets the output format for bytea.",
    },
    Param {
        name: "client_encoding",
        default: "UTF8",
        kind: Kind::Encoding,
        reported: true,
        description: "Sets the client's character set encoding.",
    },
    Param {
        name: "client_min_messages",
        default: "notice",
        kind: Kind::Choice {
            supported: &[
                "debug5", "debug4", "debug3", "debug2", "debug1", "debug", "log", "notice",
                "warning", "error",
            ],
            known: &[],
        },
        reported: false,
        description: "Sets the message levels that are sent to the client.",
    },
    Param {
        name: "DateStyle",
        default: "ISO, MDY",
        kind: Kind::DateStyle,
        reported: true,
        description: "Sets the display format for date and time values.",
    },
    Param {
        name: "default_transaction_isolation",
        default: "read committed",
        kind: ISOLATION,
        reported: false,
        description: "Sets the transaction isolation level of each new transaction.",
    },
    Param {
        name: "default_transaction_read_only",
        default: "off",
        kind: Kind::Bool,
        reported: true,
        description: "Sets the default read-only status of new transactions.",
    },
    Param {
        name: "extra_float_digits",
        default: "1",
        kind: Kind::Integer { min: -15, max: 3 },
        reported: false,
        description: "Sets the number of digits displayed for floating-point values.",
    },
    Param {
        name: "idle_in_transaction_session_timeout",
        default: "0",
        kind: Kind::Duration,
        reported: false,
        description: "Sets the maximum allowed idle time between queries, when in a transaction.",
    },
    Param {
        name: "idle_session_timeout",
        default: "0",
        kind: Kind::Duration,
        reported: false,
        description:
            "Sets the maximum allowed idle time between queries, when not in a transaction.",
    },
    Param {
        name: "in_hot_standby",
        default: "off",
        kind: Kind::Fixed,
        reported: true,
        description: "Shows whether hot standby is currently active.",
    },
    Param {
        name: "integer_datetimes",
        default: "on",
        kind: Kind::Fixed,
        reported: true,
        description: "Shows whether datetimes are integer based.",
    },
    Param {
        name: "IntervalStyle",
        default: "postgres",
        kind: Kind::Choice {
            supported: &["postgres"],
            known: &["postgres_verbose", "sql_standard", "iso_8601"],
        },
        reported: true,
        description: "Sets the display format for interval values.",
    },
    Param {
        name: "is_superuser",
        default: "on",
        kind: Kind::Fixed,
        reported: true,
        description: "Shows whether the current user is a superuser.",
    },
    Param {
        name: "lc_collate",
        default: "C",
        kind: Kind::Fixed,
        reported: false,
        description: "Shows the collation order locale.",
    },
    Param {
        name: "lc_ctype",
        default: "C",
        kind: Kind::Fixed,
        reported: false,
        description: "Shows the character classification and case conversion locale.",
    },
    Param {
        name: "lc_messages",
        default: "C",
        kind: Kind::Text,
        reported: false,
        description: "Sets the language in which messages are displayed.",
    },
    Param {
        name: "lc_monetary",
        default: "C",
        kind: Kind::Text,
        reported: false,
        description: "Sets the locale for formatting monetary amounts.",
    },
    Param {
        name: "lc_numeric",
        default: "C",
        kind: Kind::Text,
        reported: false,
        description: "Sets the locale for formatting numbers.",
    },
    Param {
        name: "lc_time",
        default: "C",
        kind: Kind::Text,
        reported: false,
        description: "Sets the locale for formatting date and time values.",
    },
    Param {
        name: "lock_timeout",
        default: "0",
        kind: Kind::Duration,
        reported: false,
        description: "Sets the maximum allowed duration of any wait for a lock.",
    },
    Param {
        name: "max_identifier_length",
        default: "63",
        kind: Kind::Fixed,
        reported: false,
        description: "Shows the maximum identifier length.",
    },
    Param {
        name: "row_security",
        default: "on",
        kind: Kind::Bool,
        reported: false,
        description: "Enable row security.",
    },
    Param {
        name: "search_path",
        default: "\"$user\", public",
        kind: Kind::SearchPath,
        reported: false,
        description: "Sets the schema search order for names that are not schema-qualified.",
    },
    Param {
        name: "server_encoding",
        default: "UTF8",
        kind: Kind::Fixed,
        reported: true,
        description: "Shows the server (database) character set encoding.",
    },
    Param {
        name: "server_version",
        default: SERVER_VERSION,
        kind: Kind::Fixed,
        reported: true,
        description: "Shows the server version.",
    },
    Param {
        name: "server_version_num",
        default: SERVER_VERSION_NUM,
        kind: Kind::Fixed,
        reported: false,
        description: "Shows the server version as an integer.",
    },
    Param {
        name: "role",
        default: "none",
        kind: Kind::Fixed,
        reported: false,
        description: "Sets the current role.",
    },
    Param {
        name: "session_authorization",
        default: "henge",
        kind: Kind::Fixed,
        reported: true,
        description: "Sets the session user name.",
    },
    Param {
        name: "standard_conforming_strings",
        default: "on",
        kind: Kind::Choice {
            supported: &["on"],
            known: &["off"],
        },
        reported: true,
        description: "Causes '...' strings to treat backslashes literally.",
    },
    Param {
        name: "statement_timeout",
        default: "0",
        kind: Kind::Duration,
        reported: false,
        description: "Sets the maximum allowed duration of any statement.",
    },
    Param {
        name: "TimeZone",
        default: "UTC",
        kind: Kind::TimeZone,
        reported: true,
        description: "Sets the time zone for displaying and interpreting time stamps.",
    },
    Param {
        name: "timezone_abbreviations",
        default: "Default",
        kind: Kind::Text,
        reported: false,
        description: "Selects a file of time zone abbreviations.",
    },
    Param {
        name: "transaction_isolation",
        default: "read committed",
        kind: ISOLATION,
        reported: false,
        description: "Sets the current transaction's isolation level.",
    },
    Param {
        name: "transaction_read_only",
        default: "off",
        kind: Kind::Bool,
        reported: false,
        description: "Sets the current transaction's read-only status.",
    },
];

/// The parameter of `name`, in any case. Statements look several up each (the
/// transaction's read-only state, the time zone …): by name in a map, not along the list.
fn param(name: &str) -> Option<&'static Param> {
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<String, &'static Param>> =
        std::sync::OnceLock::new();
    let by_name = BY_NAME.get_or_init(|| {
        PARAMS
            .iter()
            .map(|p| (p.name.to_ascii_lowercase(), p))
            .collect()
    });
    match name.bytes().any(|b| b.is_ascii_uppercase()) {
        false => by_name.get(name).copied(),
        true => by_name.get(name.to_ascii_lowercase().as_str()).copied(),
    }
}

fn unrecognized(name: &str) -> SqlStateError {
    SqlStateError::new(
        code::UNDEFINED_OBJECT,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

fn invalid(name: &str, value: &str) -> SqlStateError {
    SqlStateError::new(
        code::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"{name}\": \"{value}\""),
    )
}

/// Who a session is: the role it logged in as and the role it acts as (`SET ROLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The role that logged in (`session_user`), by OID and name.
    pub session: (u32, String),
    /// The role set with `SET ROLE`, if any; `current_user` is this or the session's.
    pub role: Option<(u32, String)>,
    /// Whether the current user is a superuser (`is_superuser`).
    pub superuser: bool,
}

impl Default for Identity {
    fn default() -> Identity {
        Identity {
            session: (USER_OID as u32, USER.to_owned()),
            role: None,
            superuser: true,
        }
    }
}

impl Identity {
    /// The role whose privileges statements run with (`current_user`).
    pub fn current(&self) -> &(u32, String) {
        self.role.as_ref().unwrap_or(&self.session)
    }
}

/// One session's parameters. Custom (dotted) names hold any text.
#[derive(Debug, Default)]
pub struct Settings {
    identity: Mutex<Identity>,
    values: Mutex<BTreeMap<&'static str, String>>,
    /// The session's defaults where they are not PostgreSQL's: what the server's
    /// configuration and the client's startup message gave; RESET goes back to them.
    defaults: Mutex<BTreeMap<&'static str, String>>,
    custom: Mutex<BTreeMap<String, String>>,
    /// Counts changes, so plans made under other values can be told apart.
    epoch: std::sync::atomic::AtomicU64,
}

impl Settings {
    pub fn new() -> Settings {
        Settings::default()
    }

    /// How many changes the parameters have seen.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn changed(&self) {
        self.epoch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A setting kept elsewhere changed (DataFusion's own, `datafusion.*`, or Henge's
    /// `henge.*`): plans made before it are stale too.
    pub fn changed_elsewhere(&self) {
        self.changed();
    }

    /// Who the session is.
    pub fn identity(&self) -> Identity {
        self.identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets who the session is (at login, SET ROLE and SET SESSION AUTHORIZATION).
    pub fn set_identity(&self, identity: Identity) {
        *self.identity.lock().unwrap_or_else(|e| e.into_inner()) = identity;
        self.changed();
    }

    /// A parameter's current value, as SHOW writes it.
    pub fn get(&self, name: &str) -> Result<String, SqlStateError> {
        if let Some(p) = param(name) {
            match p.name {
                "session_authorization" => return Ok(self.identity().session.1),
                "is_superuser" => {
                    return Ok(if self.identity().superuser {
                        "on"
                    } else {
                        "off"
                    }
                    .into())
                }
                "role" => {
                    return Ok(self
                        .identity()
                        .role
                        .map_or_else(|| "none".to_owned(), |r| r.1))
                }
                _ => {}
            }
            let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(value) = values.get(p.name) {
                return Ok(value.clone());
            }
            // Outside a transaction that set its own, a transaction's characteristics are
            // the session's defaults.
            let default = match p.name {
                "transaction_isolation" => values.get("default_transaction_isolation"),
                "transaction_read_only" => values.get("default_transaction_read_only"),
                _ => None,
            };
            if let Some(default) = default {
                return Ok(default.clone());
            }
            let defaults = self.defaults.lock().unwrap_or_else(|e| e.into_inner());
            return Ok(defaults
                .get(p.name)
                .cloned()
                .unwrap_or_else(|| p.default.to_owned()));
        }
        let custom = self.custom.lock().unwrap_or_else(|e| e.into_inner());
        custom
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| unrecognized(name))
    }

    /// Sets a parameter from the text a client gave; the value is checked first and
    /// nothing changes when it is refused.
    pub fn set(&self, name: &str, value: &str) -> Result<(), SqlStateError> {
        match param(name) {
            Some(p) => {
                let value = canonical(p, value)?;
                self.values
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(p.name, value);
            }
            None if is_custom(name) => {
                self.custom
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_ascii_lowercase(), value.to_owned());
            }
            None => return Err(unrecognized(name)),
        }
        self.changed();
        Ok(())
    }

    /// Sets a parameter's default for this session (from the configuration or the startup
    /// message), checked as SET checks it: RESET and RESET ALL come back to it.
    pub fn set_default(&self, name: &str, value: &str) -> Result<(), SqlStateError> {
        let p = param(name).ok_or_else(|| unrecognized(name))?;
        let value = canonical(p, value)?;
        self.defaults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.name, value);
        self.changed();
        Ok(())
    }

    /// Puts a parameter back to its default (RESET).
    pub fn reset(&self, name: &str) -> Result<(), SqlStateError> {
        match param(name) {
            Some(p) if matches!(p.kind, Kind::Fixed) => return Err(cannot_change(p.name)),
            Some(p) => {
                self.values
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(p.name);
            }
            None if is_custom(name) => {
                self.custom
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&name.to_ascii_lowercase());
            }
            None => return Err(unrecognized(name)),
        }
        self.changed();
        Ok(())
    }

    /// RESET ALL: every changeable parameter back to its default, custom ones removed.
    pub fn reset_all(&self) {
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.custom
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.changed();
    }

    /// Every parameter the client is told of at startup, with its current value.
    pub fn reported(&self) -> Vec<(&'static str, String)> {
        PARAMS
            .iter()
            .filter(|p| p.reported)
            .map(|p| (p.name, self.get(p.name).unwrap_or_default()))
            .collect()
    }

    /// Every parameter: name, value and description (SHOW ALL, `pg_settings`).
    pub fn all(&self) -> Vec<(&'static str, String, &'static str, bool)> {
        PARAMS
            .iter()
            .map(|p| {
                (
                    p.name,
                    self.get(p.name).unwrap_or_default(),
                    p.description,
                    matches!(p.kind, Kind::Fixed),
                )
            })
            .collect()
    }

    /// `statement_timeout` as a duration; zero means none.
    pub fn statement_timeout(&self) -> Duration {
        self.duration("statement_timeout")
    }

    /// How long the session may sit idle between statements before it is ended:
    /// `idle_in_transaction_session_timeout` inside a transaction block,
    /// `idle_session_timeout` outside one; zero means forever.
    pub fn idle_timeout(&self, in_transaction: bool) -> Duration {
        self.duration(if in_transaction {
            "idle_in_transaction_session_timeout"
        } else {
            "idle_session_timeout"
        })
    }

    fn duration(&self, name: &str) -> Duration {
        self.get(name)
            .ok()
            .and_then(|v| duration_ms(&v).ok())
            .map_or(Duration::ZERO, Duration::from_millis)
    }

    /// The session's time zone (always valid: checked when set).
    pub fn time_zone(&self) -> Tz {
        Tz::from_str(&self.time_zone_name())
            .unwrap_or_else(|_| Tz::from_str("+00:00").expect("UTC offset"))
    }

    /// The session's time zone as Arrow names it: an IANA name, or an offset east of UTC.
    pub fn time_zone_name(&self) -> String {
        let name = self.get("TimeZone").unwrap_or_else(|_| "UTC".into());
        arrow_zone_name(&name)
    }

    /// The schemas of `search_path`, in order, with `$user` left in.
    pub fn search_path(&self) -> Vec<String> {
        split_search_path(&self.get("search_path").unwrap_or_default())
    }
}

/// How SHOW names its column: PostgreSQL's spelling of a known parameter (`TimeZone`),
/// otherwise the name in lower case.
pub fn display_name(name: &str) -> String {
    param(name).map_or_else(|| name.to_ascii_lowercase(), |p| p.name.to_owned())
}

/// PostgreSQL takes any two-part name as a custom ("placeholder") parameter.
fn is_custom(name: &str) -> bool {
    let mut parts = name.split('.');
    matches!((parts.next(), parts.next()), (Some(a), Some(b)) if !a.is_empty() && !b.is_empty())
}

fn cannot_change(name: &str) -> SqlStateError {
    SqlStateError::new(
        code::CANT_CHANGE_RUNTIME_PARAM,
        format!("parameter \"{name}\" cannot be changed"),
    )
}

/// Checks a value and writes it the way SHOW will.
fn canonical(p: &Param, value: &str) -> Result<String, SqlStateError> {
    let trimmed = value.trim();
    match p.kind {
        Kind::Fixed => Err(cannot_change(p.name)),
        Kind::Text => Ok(value.to_owned()),
        Kind::Bool => parse_bool(trimmed)
            .map(|b| if b { "on" } else { "off" }.to_owned())
            .ok_or_else(|| {
                SqlStateError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("parameter \"{}\" requires a Boolean value", p.name),
                )
            }),
        Kind::Integer { min, max } => {
            let n: i64 = trimmed.parse().map_err(|_| invalid(p.name, value))?;
            if !(min..=max).contains(&n) {
                return Err(SqlStateError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!(
                        "{n} is outside the valid range for parameter \"{}\" ({min} .. {max})",
                        p.name
                    ),
                ));
            }
            Ok(n.to_string())
        }
        Kind::Choice { supported, known } => {
            let lower = trimmed.to_ascii_lowercase();
            if let Some(v) = supported.iter().find(|v| **v == lower) {
                return Ok((*v).to_owned());
            }
            if known.contains(&lower.as_str()) {
                return Err(SqlStateError::new(
                    code::FEATURE_NOT_SUPPORTED,
                    format!(
                        "{} = {lower} is not supported; Henge supports {}",
                        p.name,
                        supported.join(", ")
                    ),
                ));
            }
            Err(invalid(p.name, value))
        }
        Kind::Duration => duration_ms(trimmed)
            .map(show_duration)
            .map_err(|e| match e {
                DurationError::Invalid => SqlStateError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!(
                        "invalid value for parameter \"{}\": \"{value}\" (valid units are \
                         \"us\", \"ms\", \"s\", \"min\", \"h\" and \"d\")",
                        p.name
                    ),
                ),
                DurationError::OutOfRange(ms) => SqlStateError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!(
                        "{ms} ms is outside the valid range for parameter \"{}\" (0 .. 2147483647)",
                        p.name
                    ),
                ),
            }),
        Kind::TimeZone => time_zone(trimmed).ok_or_else(|| {
            SqlStateError::new(
                code::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"TimeZone\": \"{value}\""),
            )
        }),
        Kind::DateStyle => date_style(trimmed).map_err(|unsupported| match unsupported {
            Some(style) => SqlStateError::new(
                code::FEATURE_NOT_SUPPORTED,
                format!("DateStyle {style} is not supported; Henge writes dates in ISO style"),
            ),
            None => invalid("DateStyle", value),
        }),
        Kind::Encoding => {
            // As PostgreSQL matches encoding names: letters and digits only, any case.
            let upper: String = trimmed
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_uppercase();
            match upper.as_str() {
                "UTF8" | "UNICODE" => Ok("UTF8".into()),
                // No conversion at all: the client takes the bytes as they are.
                "SQLASCII" => Ok("SQL_ASCII".into()),
                "LATIN1" | "LATIN2" | "LATIN9" | "WIN1252" | "WIN1251" | "EUCJP" | "SJIS"
                | "GBK" | "BIG5" | "EUCKR" | "KOI8R" | "ISO88591" => Err(SqlStateError::new(
                    code::FEATURE_NOT_SUPPORTED,
                    format!(
                        "conversion between {trimmed} and UTF8 is not supported; \
                             Henge speaks only UTF8"
                    ),
                )),
                _ => Err(invalid("client_encoding", value)),
            }
        }
        Kind::SearchPath => {
            let schemas = split_search_path(value);
            Ok(schemas
                .iter()
                .map(|s| {
                    let plain = !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        && !s.starts_with(|c: char| c.is_ascii_digit());
                    if plain {
                        s.clone()
                    } else {
                        format!("\"{}\"", s.replace('"', "\"\""))
                    }
                })
                .collect::<Vec<_>>()
                .join(", "))
        }
    }
}

/// PostgreSQL's Boolean spellings, including unique prefixes.
pub fn parse_bool(text: &str) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    let is_prefix = |word: &str| !lower.is_empty() && word.starts_with(lower.as_str());
    match lower.as_str() {
        "1" | "on" => Some(true),
        "0" | "off" => Some(false),
        "o" => None,
        _ if is_prefix("true") || is_prefix("yes") => Some(true),
        _ if is_prefix("false") || is_prefix("no") => Some(false),
        _ => None,
    }
}

/// A zone as `SET TimeZone` and `AT TIME ZONE` read it (an IANA name in any case, a UTC
/// alias or a POSIX offset), or `None` if it is none of these.
pub fn parse_zone(text: &str) -> Option<Tz> {
    Tz::from_str(&arrow_zone_name(&time_zone(text)?)).ok()
}

/// A zone name as SHOW writes it, as Arrow names it.
fn arrow_zone_name(name: &str) -> String {
    match name {
        "UTC" => "+00:00".into(),
        other => posix_offset(other).unwrap_or_else(|| other.to_owned()),
    }
}

/// A time zone name, as SHOW writes it: IANA names with their canonical case, UTC aliases
/// as `UTC`, and offsets as given.
fn time_zone(text: &str) -> Option<String> {
    if ["utc", "gmt", "z", "zulu", "etc/utc", "universal"]
        .iter()
        .any(|u| text.eq_ignore_ascii_case(u))
    {
        return Some("UTC".into());
    }
    if text.starts_with(['+', '-']) {
        return posix_offset(text).map(|_| text.to_owned());
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(text))
        .map(|tz| tz.name().to_owned())
}

/// A POSIX offset (`+05:30` is five and a half hours *west* of Greenwich, as in
/// PostgreSQL) as Arrow's offset east of UTC (`-05:30`); `None` if it is not one.
fn posix_offset(text: &str) -> Option<String> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => ('-', &text[1..]),
        b'-' => ('+', &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        None => (rest.parse::<u32>().ok()?, 0),
    };
    if hours > 15 || minutes > 59 {
        return None;
    }
    let east = format!("{sign}{hours:02}:{minutes:02}");
    Tz::from_str(&east).ok().map(|_| east)
}

/// DateStyle: output style (only ISO is written) and field order for input.
fn date_style(text: &str) -> Result<String, Option<String>> {
    let mut order = "MDY";
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word.to_ascii_uppercase().as_str() {
            "ISO" => {}
            "MDY" | "US" | "NONEUROPEAN" => order = "MDY",
            "DMY" | "EUROPEAN" => order = "DMY",
            "YMD" => order = "YMD",
            "POSTGRES" | "SQL" | "GERMAN" => return Err(Some(word.to_owned())),
            _ => return Err(None),
        }
    }
    Ok(format!("ISO, {order}"))
}

fn split_search_path(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut name = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        name.push('"');
                    } else {
                        break;
                    }
                } else {
                    name.push(c);
                }
            }
            while chars.peek().is_some_and(|c| *c != ',') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                name.push(c);
                chars.next();
            }
            name = name.trim().to_lowercase();
        }
        if !name.is_empty() {
            out.push(name);
        }
        if chars.next().is_none() {
            break;
        }
    }
    out
}

enum DurationError {
    Invalid,
    OutOfRange(f64),
}

/// A timeout in milliseconds, read as PostgreSQL does: a whole number of milliseconds, or
/// a number with a unit (`us`, `ms`, `s`, `min`, `h`, `d`).
/// A duration in PostgreSQL's form ("30s", "5min", a number of milliseconds), as the
/// configuration gives timeouts; None when it is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    duration_ms(text).ok().map(Duration::from_millis)
}

fn duration_ms(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| DurationError::Invalid)?;
    let scale = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1_000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(DurationError::Invalid),
    };
    let ms = (number * scale).round();
    if !(0.0..=i32::MAX as f64).contains(&ms) {
        return Err(DurationError::OutOfRange(ms));
    }
    Ok(ms as u64)
}

/// How SHOW writes a timeout: in the largest unit that divides it, `0` when off.
fn show_duration(ms: u64) -> String {
    if ms == 0 {
        return "0".into();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("min", 60_000),
        ("s", 1_000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &Settings, name: &str, value: &str) -> Result<String, &'static str> {
        s.set(name, value).map_err(|e| e.code.code())?;
        s.get(name).map_err(|e| e.code.code())
    }

    #[test]
    fn values_are_checked_and_written_as_postgresql_shows_them() {
        let s = Settings::new();
        assert_eq!(s.get("timezone").unwrap(), "UTC");
        assert_eq!(
            set(&s, "TIMEZONE", "europe/berlin"),
            Ok("Europe/Berlin".into())
        );
        assert_eq!(set(&s, "timezone", "Mars/Base"), Err("22023"));
        assert_eq!(s.get("TimeZone").unwrap(), "Europe/Berlin");
        assert_eq!(set(&s, "timezone", "+05:30"), Ok("+05:30".into()));
        // POSIX: west of Greenwich.
        assert_eq!(s.time_zone_name(), "-05:30");
        assert_eq!(
            set(&s, "client_encoding", "SQL_ASCII"),
            Ok("SQL_ASCII".into())
        );
        assert_eq!(set(&s, "DateStyle", "iso"), Ok("ISO, MDY".into()));
        assert_eq!(set(&s, "datestyle", "ISO, DMY"), Ok("ISO, DMY".into()));
        assert_eq!(set(&s, "datestyle", "German"), Err("0A000"));
        assert_eq!(set(&s, "datestyle", "sideways"), Err("22023"));
        assert_eq!(set(&s, "extra_float_digits", "3"), Ok("3".into()));
        assert_eq!(set(&s, "extra_float_digits", "4"), Err("22023"));
        assert_eq!(set(&s, "transaction_read_only", "y"), Ok("on".into()));
        assert_eq!(set(&s, "transaction_read_only", "maybe"), Err("22023"));
        assert_eq!(set(&s, "client_encoding", "utf-8"), Ok("UTF8".into()));
        // asyncpg sends the value quoted.
        assert_eq!(set(&s, "client_encoding", "'utf-8'"), Ok("UTF8".into()));
        assert_eq!(set(&s, "client_encoding", "LATIN1"), Err("0A000"));
        assert_eq!(set(&s, "standard_conforming_strings", "off"), Err("0A000"));
        assert_eq!(set(&s, "server_version", "17"), Err("55P02"));
        assert_eq!(set(&s, "no_such_thing", "1"), Err("42704"));
        assert_eq!(set(&s, "myapp.user_id", "42"), Ok("42".into()));
        assert_eq!(
            s.get("myapp.other").map_err(|e| e.code.code()),
            Err("42704")
        );
        assert_eq!(
            set(&s, "search_path", "\"$user\",public, \"My Schema\""),
            Ok("\"$user\", public, \"My Schema\"".into())
        );
        assert_eq!(s.search_path(), ["$user", "public", "My Schema"]);
        assert_eq!(set(&s, "statement_timeout", "90s"), Ok("90s".into()));
        assert_eq!(s.statement_timeout(), Duration::from_secs(90));
        assert_eq!(set(&s, "statement_timeout", "1500"), Ok("1500ms".into()));
        assert_eq!(set(&s, "statement_timeout", "2 fortnights"), Err("22023"));
        assert_eq!(set(&s, "statement_timeout", "-1"), Err("22023"));
        assert_eq!(set(&s, "lock_timeout", "2min"), Ok("2min".into()));
    }

    #[test]
    fn reset_puts_back_defaults() {
        let s = Settings::new();
        s.set("application_name", "psql").unwrap();
        s.set("extra_float_digits", "3").unwrap();
        s.set("x.y", "z").unwrap();
        let before = s.epoch();
        s.reset_all();
        assert!(s.epoch() > before);
        assert_eq!(s.get("application_name").unwrap(), "");
        assert_eq!(s.get("extra_float_digits").unwrap(), "1");
        assert!(s.get("x.y").is_err());
        assert_eq!(
            s.reset("server_version").map_err(|e| e.code.code()),
            Err("55P02")
        );
    }
}
