//! Session statements: SET, SHOW and RESET of PostgreSQL's parameters, `SET TIME ZONE`,
//! `SET NAMES`, `SET [SESSION CHARACTERISTICS AS] TRANSACTION`, `SET ROLE`, `DISCARD`,
//! `CLOSE`, and `LISTEN`/`UNLISTEN`/`NOTIFY` (see [`crate::notify`]).
//!
//! Values live in the session's [`Settings`](henge_planner::Settings). After any change
//! the connection passes those that change how queries run on to DataFusion (`TimeZone`,
//! `search_path`; see `Session::apply_settings`).

use datafusion::sql::sqlparser::ast::{
    CloseCursor, ContextModifier, Expr, Reset, ResetStatement, Set,
    SetSessionAuthorizationParamKind, Statement, TransactionAccessMode, TransactionIsolationLevel,
    TransactionMode, UnaryOperator, Value,
};
use henge_planner::pg::settings::Settings;
use pgwire::api::results::{Response, Tag};

use crate::error::{code, PgError};
use crate::notify;
use crate::session::Session;

fn tag(name: &str) -> Response {
    Response::Execution(Tag::new(name))
}

/// The text a SET value stands for: `'x'`, `x`, `42`, `-1`, or a list joined with commas.
/// `None` for DEFAULT.
fn value_text(values: &[Expr], keep_quotes: bool) -> Option<String> {
    let one = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.to_string(),
            Value::Boolean(b) => if *b { "on" } else { "off" }.to_owned(),
            other => other.to_string(),
        },
        // search_path keeps a quoted name's quotes (they keep its case); elsewhere a
        // quoted identifier is just the text.
        Expr::Identifier(i) if i.quote_style == Some('"') && keep_quotes => {
            format!("\"{}\"", i.value)
        }
        Expr::Identifier(i) if i.quote_style.is_some() => i.value.clone(),
        Expr::Identifier(i) => i.value.clone(),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => format!("-{expr}"),
        other => other.to_string(),
    };
    match values {
        [Expr::Identifier(i)]
            if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") =>
        {
            None
        }
        values => Some(values.iter().map(one).collect::<Vec<_>>().join(", ")),
    }
}

/// Whether a parameter name belongs to DataFusion or Henge (handled elsewhere).
pub fn is_engine_setting(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("datafusion.") || name.starts_with("henge.")
}

/// PostgreSQL's parameter name for a SHOW or SET target (`SHOW TIME ZONE`,
/// `SHOW TRANSACTION ISOLATION LEVEL`).
pub fn parameter_name(words: &str) -> String {
    let lower = words.to_ascii_lowercase();
    match lower.as_str() {
        "time zone" | "time.zone" => "timezone".into(),
        "transaction isolation level" | "transaction.isolation.level" => {
            "transaction_isolation".into()
        }
        "session authorization" | "session.authorization" => "session_authorization".into(),
        _ => lower,
    }
}

fn isolation(level: &TransactionIsolationLevel) -> &'static str {
    match level {
        TransactionIsolationLevel::ReadUncommitted => "read uncommitted",
        TransactionIsolationLevel::ReadCommitted => "read committed",
        TransactionIsolationLevel::RepeatableRead => "repeatable read",
        TransactionIsolationLevel::Serializable => "serializable",
        TransactionIsolationLevel::Snapshot => "repeatable read",
    }
}

/// Applies transaction modes to the current transaction or, with `session`, to later
/// ones.
pub fn transaction_modes(
    settings: &Settings,
    modes: &[TransactionMode],
    session: bool,
) -> Result<(), PgError> {
    let (isolation_name, read_only_name) = if session {
        (
            "default_transaction_isolation",
            "default_transaction_read_only",
        )
    } else {
        ("transaction_isolation", "transaction_read_only")
    };
    for mode in modes {
        match mode {
            TransactionMode::IsolationLevel(level) => {
                settings.set(isolation_name, isolation(level))?;
            }
            TransactionMode::AccessMode(TransactionAccessMode::ReadOnly) => {
                settings.set(read_only_name, "on")?;
            }
            TransactionMode::AccessMode(TransactionAccessMode::ReadWrite) => {
                settings.set(read_only_name, "off")?;
            }
        }
    }
    Ok(())
}

/// Runs a session statement; `None` when the statement is not one.
pub async fn run(session: &Session, statement: &Statement) -> Option<Result<Response, PgError>> {
    let settings = &session.settings;
    Some(match statement {
        Statement::Set(Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        }) if !is_engine_setting(&variable.to_string()) => {
            let name = parameter_name(&variable.to_string());
            let local = matches!(scope, Some(ContextModifier::Local));
            session
                .remember_local(&name, local)
                .and_then(|apply| {
                    if !apply {
                        return Ok(());
                    }
                    match value_text(values, name == "search_path") {
                        Some(value) => settings.set(&name, &value),
                        None => settings.reset(&name),
                    }
                    .map_err(PgError::from)
                })
                .map(|_| tag("SET"))
        }
        Statement::Set(Set::SetTimeZone { value, local }) => {
            match session.remember_local("TimeZone", *local) {
                Ok(true) => {}
                Ok(false) => return Some(Ok(tag("SET"))),
                Err(e) => return Some(Err(e)),
            }
            let text = value_text(std::slice::from_ref(value), false);
            match text.as_deref() {
                None => settings.reset("TimeZone"),
                Some(local) if local.eq_ignore_ascii_case("local") => settings.reset("TimeZone"),
                Some(zone) => settings.set("TimeZone", zone),
            }
            .map_err(PgError::from)
            .map(|_| tag("SET"))
        }
        Statement::Set(Set::SetNames { charset_name, .. }) => settings
            .set("client_encoding", &charset_name.value)
            .map_err(PgError::from)
            .map(|_| tag("SET")),
        Statement::Set(Set::SetNamesDefault {}) => settings
            .reset("client_encoding")
            .map_err(PgError::from)
            .map(|_| tag("SET")),
        Statement::Set(Set::SetTransaction {
            modes,
            snapshot: None,
            session: is_session,
        }) => transaction_modes(settings, modes, *is_session).map(|_| tag("SET")),
        Statement::Set(Set::SetRole { role_name, .. }) => {
            set_role(session, role_name.as_ref()).map(|_| tag("SET"))
        }
        Statement::Set(Set::SetSessionAuthorization(param)) => match &param.kind {
            SetSessionAuthorizationParamKind::Default => Ok(tag("SET")),
            SetSessionAuthorizationParamKind::User(user)
                if crate::ddl::normalize(user) == settings.identity().session.1 =>
            {
                Ok(tag("SET"))
            }
            SetSessionAuthorizationParamKind::User(_) => Err(PgError::unsupported(
                "SET SESSION AUTHORIZATION to another role is not supported (use SET ROLE)",
            )),
        },
        Statement::Reset(ResetStatement { reset }) => match reset {
            Reset::ALL => {
                settings.reset_all();
                Ok(tag("RESET"))
            }
            Reset::ConfigurationParameter(name)
                if name.to_string().eq_ignore_ascii_case("role") =>
            {
                set_role(session, None).map(|_| tag("RESET"))
            }
            Reset::ConfigurationParameter(name) if !is_engine_setting(&name.to_string()) => {
                settings
                    .reset(&parameter_name(&name.to_string()))
                    .map_err(PgError::from)
                    .map(|_| tag("RESET"))
            }
            Reset::ConfigurationParameter(_) => return None,
        },
        Statement::Discard { object_type } => {
            let what = object_type.to_string().to_ascii_uppercase();
            if what == "ALL" {
                settings.reset_all();
            }
            Ok(tag(&format!("DISCARD {what}")))
        }
        // Henge has no cursors: CLOSE ALL closes nothing; a named one does not exist.
        Statement::Close { cursor } => match cursor {
            CloseCursor::All => Ok(tag("CLOSE CURSOR ALL")),
            CloseCursor::Specific { name } => Err(PgError::new(
                code::INVALID_CURSOR_NAME,
                format!("cursor \"{}\" does not exist", name.value),
            )),
        },
        // Applied when the transaction commits (see `notify`).
        Statement::LISTEN { channel } => notify::channel_name(channel).map(|name| {
            session.listener.listen(&name);
            tag("LISTEN")
        }),
        Statement::UNLISTEN { channel } => notify::channel_name(channel).map(|name| {
            let all = channel.quote_style.is_none() && channel.value == "*";
            session.listener.unlisten((!all).then_some(name.as_str()));
            tag("UNLISTEN")
        }),
        Statement::NOTIFY { channel, payload } => notify::channel_name(channel).and_then(|name| {
            session
                .listener
                .notify(&name, payload.as_deref().unwrap_or(""))
                .map(|()| tag("NOTIFY"))
        }),
        _ => return None,
    })
}

/// What SHOW answers: the SQL of a one-row query naming the column as PostgreSQL does.
pub fn show_sql(settings: &Settings, name: &str) -> Result<String, PgError> {
    let quote = |s: &str| s.replace('\'', "''");
    if name.eq_ignore_ascii_case("all") {
        let rows = settings
            .all()
            .into_iter()
            .map(|(name, value, description, _)| {
                format!(
                    "('{}', '{}', '{}')",
                    quote(name),
                    quote(&value),
                    quote(description)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Ok(format!(
            "SELECT column1 AS name, column2 AS setting, column3 AS description FROM (VALUES {rows})"
        ));
    }
    let value = settings.get(name)?;
    let column = henge_planner::pg::settings::display_name(name);
    Ok(format!(
        "SELECT '{}' AS \"{}\"",
        quote(&value),
        column.replace('"', "\"\"")
    ))
}

/// `SET ROLE name` (the session's privileges become that role's, which the session user
/// must be a member of) or `SET ROLE NONE`.
fn set_role(
    session: &Session,
    role: Option<&datafusion::sql::sqlparser::ast::Ident>,
) -> Result<(), PgError> {
    let mut identity = session.settings.identity();
    let access = session.shared.engine.access();
    let name = role.map(crate::ddl::normalize);
    match name.as_deref() {
        None | Some("none") => {
            identity.role = None;
        }
        Some(name) => {
            let target = access.role_named(name).ok_or_else(|| {
                PgError::new(
                    code::UNDEFINED_OBJECT,
                    format!("role \"{name}\" does not exist"),
                )
            })?;
            let session_role = identity.session.0;
            if !access.is_superuser(session_role) && !access.is_member(session_role, target.oid) {
                return Err(PgError::new(
                    code::INSUFFICIENT_PRIVILEGE,
                    format!("permission denied to set role \"{name}\""),
                ));
            }
            identity.role = Some((target.oid, target.name.clone()));
        }
    }
    identity.superuser = access.is_superuser(identity.current().0);
    session.settings.set_identity(identity);
    Ok(())
}
