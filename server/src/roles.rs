//! Roles and privileges in SQL, as PostgreSQL spells them: `CREATE ROLE | USER | GROUP`,
//! `ALTER ROLE` (attributes, password, `RENAME TO`), `DROP ROLE`, role membership
//! (`GRANT role TO role`, `REVOKE role FROM role`) and table privileges
//! (`GRANT SELECT ON t TO r`, `… ON ALL TABLES IN SCHEMA public …`, `REVOKE …`).
//!
//! These statements are parsed here rather than by sqlparser, whose forms follow other
//! databases; it also keeps passwords in our hands: a password is turned into a SCRAM
//! verifier as soon as it is read, never appears in an error, and `Debug` shows it as
//! `********`. Who may do what follows PostgreSQL 15: superusers anything, roles with
//! CREATEROLE manage the roles that are not superusers, a role changes its own password,
//! and privileges on a table are granted by its owner or by holders of the grant option.

use datafusion::arrow::array::timezone::Tz;
use datafusion::sql::sqlparser::ast::Ident;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use henge_storage::access::{Access, Membership, Privileges, RoleDef, BOOTSTRAP_SUPERUSER, PUBLIC};
use pgwire::api::results::{Response, Tag};

use crate::ddl::normalize;
use crate::error::{code, PgError};
use crate::session::Session;

/// A role or privilege statement.
#[derive(Debug, Clone)]
pub enum AccessCommand {
    /// `CREATE ROLE | USER | GROUP name [WITH] options` (USER adds LOGIN).
    CreateRole {
        name: String,
        user: bool,
        options: Vec<RoleOption>,
    },
    /// `ALTER ROLE name [WITH] options`.
    AlterRole {
        role: RoleSpec,
        options: Vec<RoleOption>,
    },
    /// `ALTER ROLE name RENAME TO new`.
    RenameRole { name: String, to: String },
    /// `DROP ROLE [IF EXISTS] name, …`.
    DropRoles { names: Vec<String>, if_exists: bool },
    /// `GRANT role, … TO member, … [WITH ADMIN OPTION]`.
    GrantRoles {
        roles: Vec<String>,
        members: Vec<RoleSpec>,
        admin: bool,
    },
    /// `REVOKE [ADMIN OPTION FOR] role, … FROM member, …`.
    RevokeRoles {
        roles: Vec<String>,
        members: Vec<RoleSpec>,
        admin_only: bool,
    },
    /// `GRANT privileges ON objects TO grantees [WITH GRANT OPTION]`.
    Grant {
        privileges: Privileges,
        objects: Objects,
        grantees: Vec<RoleSpec>,
        grant_option: bool,
    },
    /// `REVOKE [GRANT OPTION FOR] privileges ON objects FROM grantees`.
    Revoke {
        privileges: Privileges,
        objects: Objects,
        grantees: Vec<RoleSpec>,
        grant_option_only: bool,
        /// CASCADE: also revoke what the grantees granted on with the grant option lost.
        cascade: bool,
    },
    /// `ALTER TABLE | VIEW name OWNER TO role`.
    AlterOwner { relation: String, owner: RoleSpec },
}

/// A role as a statement names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleSpec {
    Named(String),
    Public,
    CurrentUser,
    SessionUser,
}

/// What a GRANT or REVOKE of privileges is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Objects {
    Tables(Vec<String>),
    AllTablesInSchemas(Vec<String>),
    Schemas(Vec<String>),
}

/// One role attribute.
#[derive(Clone, PartialEq, Eq)]
pub enum RoleOption {
    Superuser(bool),
    CreateDb(bool),
    CreateRole(bool),
    Inherit(bool),
    Login(bool),
    Replication(bool),
    BypassRls(bool),
    ConnectionLimit(i32),
    /// The SCRAM verifier to store, or none (`PASSWORD NULL`, or an empty password).
    Password(Option<String>),
    /// The timestamp with time zone as written (read in the session's TimeZone when the
    /// statement runs, as PostgreSQL reads it), or `infinity`.
    ValidUntil(String),
    /// `IN ROLE r, …`: the new role becomes a member of these.
    InRole(Vec<String>),
    /// `ROLE r, …` (or `USER r, …`): these become members of the new role.
    Members(Vec<String>),
    /// `ADMIN r, …`: members with the admin option.
    Admins(Vec<String>),
}

impl std::fmt::Debug for RoleOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoleOption::Password(Some(_)) => f.write_str("Password(********)"),
            RoleOption::Superuser(v) => write!(f, "Superuser({v})"),
            RoleOption::CreateDb(v) => write!(f, "CreateDb({v})"),
            RoleOption::CreateRole(v) => write!(f, "CreateRole({v})"),
            RoleOption::Inherit(v) => write!(f, "Inherit({v})"),
            RoleOption::Login(v) => write!(f, "Login({v})"),
            RoleOption::Replication(v) => write!(f, "Replication({v})"),
            RoleOption::BypassRls(v) => write!(f, "BypassRls({v})"),
            RoleOption::ConnectionLimit(v) => write!(f, "ConnectionLimit({v})"),
            RoleOption::Password(None) => f.write_str("Password(NULL)"),
            RoleOption::ValidUntil(v) => write!(f, "ValidUntil({v})"),
            RoleOption::InRole(v) => write!(f, "InRole({v:?})"),
            RoleOption::Members(v) => write!(f, "Members({v:?})"),
            RoleOption::Admins(v) => write!(f, "Admins({v:?})"),
        }
    }
}

/// Whether the next words of `parser` start a statement this module parses.
pub fn starts(parser: &Parser) -> bool {
    let word = |n: usize| match parser.peek_nth_token(n).token {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    match word(0).as_str() {
        "GRANT" | "REVOKE" => true,
        "CREATE" | "DROP" => matches!(word(1).as_str(), "ROLE" | "USER" | "GROUP"),
        "ALTER" => match word(1).as_str() {
            "ROLE" | "USER" | "GROUP" => true,
            // ALTER TABLE | VIEW name OWNER TO …
            "TABLE" | "VIEW" => (2..8).any(|n| word(n) == "OWNER" && word(n + 1) == "TO"),
            _ => false,
        },
        _ => false,
    }
}

/// Parses the statement [`starts`] recognised. Errors never quote what follows PASSWORD.
pub fn parse(parser: &mut Parser) -> Result<AccessCommand, PgError> {
    let mut p = Words { parser };
    let first = p.next_word()?;
    match first.as_str() {
        "CREATE" => {
            let kind = p.next_word()?;
            let name = p.role_name()?;
            p.word("WITH");
            let options = p.options()?;
            Ok(AccessCommand::CreateRole {
                name,
                user: kind == "USER",
                options,
            })
        }
        "ALTER" => {
            let kind = p.next_word()?;
            if kind == "TABLE" || kind == "VIEW" {
                let relation = p.object_name()?;
                p.expect("OWNER")?;
                p.expect("TO")?;
                let owner = p.role_spec()?;
                return Ok(AccessCommand::AlterOwner { relation, owner });
            }
            let role = p.role_spec()?;
            if p.word("RENAME") {
                p.expect("TO")?;
                let to = p.role_name()?;
                let RoleSpec::Named(name) = role else {
                    return Err(PgError::unsupported(
                        "only a role named by name can be renamed",
                    ));
                };
                return Ok(AccessCommand::RenameRole { name, to });
            }
            if p.peek_is("SET") || p.peek_is("RESET") || p.peek_is("IN") {
                return Err(PgError::unsupported(
                    "per-role configuration (ALTER ROLE … SET) is not supported",
                ));
            }
            p.word("WITH");
            let options = p.options()?;
            if options.is_empty() {
                return Err(p.syntax_error());
            }
            Ok(AccessCommand::AlterRole { role, options })
        }
        "DROP" => {
            p.next_word()?;
            let if_exists = p.word("IF") && p.expect("EXISTS").is_ok();
            let names = p.list(|p| p.role_name())?;
            Ok(AccessCommand::DropRoles { names, if_exists })
        }
        "GRANT" | "REVOKE" => {
            let grant = first == "GRANT";
            let option_only = !grant
                && (p.words(&["GRANT", "OPTION", "FOR"]) || p.words(&["ADMIN", "OPTION", "FOR"]));
            // Privileges on objects have ON after them; role names do not.
            if p.privileges_follow() {
                let privileges = p.privileges()?;
                p.expect("ON")?;
                let objects = p.objects()?;
                p.expect(if grant { "TO" } else { "FROM" })?;
                let grantees = p.list(|p| p.role_spec())?;
                let grant_option = grant && p.words(&["WITH", "GRANT", "OPTION"]);
                let cascade = p.granted_by_and_behaviour()?;
                Ok(match grant {
                    true => AccessCommand::Grant {
                        privileges,
                        objects,
                        grantees,
                        grant_option,
                    },
                    false => AccessCommand::Revoke {
                        privileges,
                        objects,
                        grantees,
                        grant_option_only: option_only,
                        cascade,
                    },
                })
            } else {
                let roles = p.list(|p| p.role_name())?;
                p.expect(if grant { "TO" } else { "FROM" })?;
                let members = p.list(|p| p.role_spec())?;
                let admin = grant && p.words(&["WITH", "ADMIN", "OPTION"]);
                p.granted_by_and_behaviour()?;
                Ok(match grant {
                    true => AccessCommand::GrantRoles {
                        roles,
                        members,
                        admin,
                    },
                    false => AccessCommand::RevokeRoles {
                        roles,
                        members,
                        admin_only: option_only,
                    },
                })
            }
        }
        _ => Err(p.syntax_error()),
    }
}

/// sqlparser's parser, read word by word.
struct Words<'a, 'b> {
    parser: &'a mut Parser<'b>,
}

impl Words<'_, '_> {
    fn syntax_error(&self) -> PgError {
        match self.parser.peek_token().token {
            Token::EOF => PgError::syntax("syntax error at end of input"),
            // A string constant may be a password: it is not repeated.
            Token::SingleQuotedString(_) => {
                PgError::syntax("syntax error at or near a string constant")
            }
            t => PgError::syntax(format!("syntax error at or near \"{t}\"")),
        }
    }

    fn peek_nth_is(&self, n: usize, word: &str) -> bool {
        matches!(self.parser.peek_nth_token(n).token,
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
    }

    /// Whether ON comes before TO or FROM: privileges on objects, not role names.
    fn privileges_follow(&self) -> bool {
        for n in 0.. {
            if self.peek_nth_is(n, "ON") {
                return true;
            }
            if self.peek_nth_is(n, "TO")
                || self.peek_nth_is(n, "FROM")
                || self.parser.peek_nth_token(n).token == Token::EOF
            {
                return false;
            }
        }
        false
    }

    fn peek_is(&self, word: &str) -> bool {
        self.peek_nth_is(0, word)
    }

    /// Consumes `word` if it comes next.
    fn word(&mut self, word: &str) -> bool {
        let found = self.peek_is(word);
        if found {
            self.parser.next_token();
        }
        found
    }

    /// Consumes `words` if they all come next.
    fn words(&mut self, words: &[&str]) -> bool {
        let found = words
            .iter()
            .enumerate()
            .all(|(n, w)| self.peek_nth_is(n, w));
        if found {
            words.iter().for_each(|_| {
                self.parser.next_token();
            });
        }
        found
    }

    fn expect(&mut self, word: &str) -> Result<(), PgError> {
        if self.word(word) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn next_word(&mut self) -> Result<String, PgError> {
        match self.parser.peek_token().token {
            Token::Word(w) if w.quote_style.is_none() => {
                self.parser.next_token();
                Ok(w.value.to_ascii_uppercase())
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn identifier(&mut self) -> Result<Ident, PgError> {
        match self.parser.peek_token().token {
            Token::Word(w) => {
                self.parser.next_token();
                Ok(w.into_ident(self.parser.peek_token().span))
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn role_name(&mut self) -> Result<String, PgError> {
        let ident = self.identifier()?;
        Ok(normalize(&ident))
    }

    fn role_spec(&mut self) -> Result<RoleSpec, PgError> {
        self.word("GROUP");
        let ident = self.identifier()?;
        if ident.quote_style.is_none() {
            match ident.value.to_ascii_uppercase().as_str() {
                "PUBLIC" => return Ok(RoleSpec::Public),
                "CURRENT_USER" | "CURRENT_ROLE" => return Ok(RoleSpec::CurrentUser),
                "SESSION_USER" => return Ok(RoleSpec::SessionUser),
                _ => {}
            }
        }
        Ok(RoleSpec::Named(normalize(&ident)))
    }

    fn object_name(&mut self) -> Result<String, PgError> {
        let name = self
            .parser
            .parse_object_name(false)
            .map_err(|e: ParserError| PgError::syntax(e.to_string()))?;
        crate::ddl::table_name(&name)
    }

    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, PgError>,
    ) -> Result<Vec<T>, PgError> {
        let mut items = vec![item(self)?];
        while self.parser.consume_token(&Token::Comma) {
            items.push(item(self)?);
        }
        Ok(items)
    }

    fn string(&mut self) -> Result<String, PgError> {
        match self.parser.peek_token().token {
            Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => {
                self.parser.next_token();
                Ok(s)
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn integer(&mut self) -> Result<i64, PgError> {
        let negative = self.parser.consume_token(&Token::Minus);
        match self.parser.peek_token().token {
            Token::Number(n, _) => {
                self.parser.next_token();
                let value: i64 = n.parse().map_err(|_| {
                    PgError::new(
                        code::INVALID_PARAMETER_VALUE,
                        format!("invalid connection limit: {n}"),
                    )
                })?;
                Ok(if negative { -value } else { value })
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn options(&mut self) -> Result<Vec<RoleOption>, PgError> {
        let mut options = Vec::new();
        while let Token::Word(w) = self.parser.peek_token().token {
            if w.quote_style.is_some() {
                return Err(self.syntax_error());
            }
            let upper = w.value.to_ascii_uppercase();
            let flag = |name: &str| -> Option<bool> {
                if upper == name {
                    Some(true)
                } else if upper.strip_prefix("NO") == Some(name) {
                    Some(false)
                } else {
                    None
                }
            };
            let simple = [
                ("SUPERUSER", RoleOption::Superuser as fn(bool) -> RoleOption),
                ("CREATEDB", RoleOption::CreateDb),
                ("CREATEROLE", RoleOption::CreateRole),
                ("INHERIT", RoleOption::Inherit),
                ("LOGIN", RoleOption::Login),
                ("REPLICATION", RoleOption::Replication),
                ("BYPASSRLS", RoleOption::BypassRls),
            ]
            .iter()
            .find_map(|(name, make)| flag(name).map(make));
            if let Some(option) = simple {
                self.parser.next_token();
                options.push(option);
                continue;
            }
            self.parser.next_token();
            let option = match upper.as_str() {
                "CONNECTION" => {
                    self.expect("LIMIT")?;
                    let limit = self.integer()?;
                    let limit =
                        i32::try_from(limit)
                            .ok()
                            .filter(|&l| l >= -1)
                            .ok_or_else(|| {
                                PgError::new(
                                    code::INVALID_PARAMETER_VALUE,
                                    format!("invalid connection limit: {limit}"),
                                )
                            })?;
                    RoleOption::ConnectionLimit(limit)
                }
                "ENCRYPTED" | "PASSWORD" => {
                    if upper == "ENCRYPTED" {
                        self.expect("PASSWORD")?;
                    }
                    if self.word("NULL") {
                        RoleOption::Password(None)
                    } else {
                        let text = self.string().map_err(|_| {
                            PgError::syntax(
                                "PASSWORD must be followed by a string constant or NULL",
                            )
                        })?;
                        RoleOption::Password(stored_password(&text))
                    }
                }
                "UNENCRYPTED" => {
                    return Err(PgError::unsupported(
                        "UNENCRYPTED PASSWORD is no longer supported",
                    ))
                }
                "VALID" => {
                    self.expect("UNTIL")?;
                    let text = self.string()?;
                    RoleOption::ValidUntil(text)
                }
                "IN" => {
                    if !self.word("ROLE") {
                        self.expect("GROUP")?;
                    }
                    RoleOption::InRole(self.list(|p| p.role_name())?)
                }
                "ROLE" | "USER" => RoleOption::Members(self.list(|p| p.role_name())?),
                "ADMIN" => RoleOption::Admins(self.list(|p| p.role_name())?),
                "SYSID" => {
                    self.integer()?;
                    continue;
                }
                _ => {
                    return Err(PgError::syntax(format!(
                        "unrecognized role option \"{}\"",
                        w.value
                    )))
                }
            };
            options.push(option);
        }
        match self.parser.peek_token().token {
            Token::EOF | Token::SemiColon => Ok(options),
            _ => Err(self.syntax_error()),
        }
    }

    fn privileges(&mut self) -> Result<Privileges, PgError> {
        if self.word("ALL") {
            self.word("PRIVILEGES");
            return Ok(Privileges::ALL
                .union(Privileges::CREATE)
                .union(Privileges::USAGE));
        }
        let mut privileges = Privileges::NONE;
        for name in self.list(|p| p.next_word())? {
            if self.parser.peek_token().token == Token::LParen {
                return Err(PgError::unsupported("column privileges are not supported"));
            }
            let privilege = match name.as_str() {
                "CREATE" => Privileges::CREATE,
                "USAGE" => Privileges::USAGE,
                name => Privileges::named(name).ok_or_else(|| {
                    PgError::syntax(format!(
                        "unrecognized privilege type \"{}\"",
                        name.to_lowercase()
                    ))
                })?,
            };
            privileges = privileges.union(privilege);
        }
        Ok(privileges)
    }

    fn objects(&mut self) -> Result<Objects, PgError> {
        if self.words(&["ALL", "TABLES", "IN", "SCHEMA"]) {
            return Ok(Objects::AllTablesInSchemas(self.list(|p| p.role_name())?));
        }
        if self.word("SCHEMA") {
            return Ok(Objects::Schemas(self.list(|p| p.role_name())?));
        }
        for kind in [
            "SEQUENCE",
            "DATABASE",
            "FUNCTION",
            "PROCEDURE",
            "ROUTINE",
            "TYPE",
            "DOMAIN",
            "LANGUAGE",
            "TABLESPACE",
            "FOREIGN",
            "LARGE",
            "PARAMETER",
        ] {
            if self.peek_is(kind) {
                return Err(PgError::unsupported(format!(
                    "privileges on {} are not supported",
                    kind.to_lowercase()
                )));
            }
        }
        self.word("TABLE");
        Ok(Objects::Tables(self.list(|p| p.object_name())?))
    }

    /// `[GRANTED BY role] [CASCADE | RESTRICT]`: whether CASCADE was given.
    fn granted_by_and_behaviour(&mut self) -> Result<bool, PgError> {
        if self.words(&["GRANTED", "BY"]) {
            let by = self.role_spec()?;
            if by != RoleSpec::CurrentUser {
                return Err(PgError::unsupported(
                    "GRANTED BY a role other than the current user is not supported",
                ));
            }
        }
        let cascade = !self.word("RESTRICT") && self.word("CASCADE");
        match self.parser.peek_token().token {
            Token::EOF | Token::SemiColon => Ok(cascade),
            _ => Err(self.syntax_error()),
        }
    }
}

/// What a `PASSWORD '…'` stores: a SCRAM verifier given as it is (pg_dump writes them),
/// otherwise the verifier of the text; an empty password clears it, as in PostgreSQL.
fn stored_password(text: &str) -> Option<String> {
    if text.is_empty() {
        None
    } else if crate::scram::is_verifier(text) {
        Some(text.to_owned())
    } else {
        Some(crate::scram::verifier(text))
    }
}

/// `VALID UNTIL '…'`: a timestamp with time zone (without an offset, in the session's
/// `zone`), or `infinity` (`i64::MAX`); microseconds since the epoch.
fn valid_until(text: &str, zone: &Tz) -> Result<i64, PgError> {
    if text.trim().eq_ignore_ascii_case("infinity") {
        return Ok(i64::MAX);
    }
    let local = henge_ingest::value::local_offset(zone);
    henge_ingest::value::parse_timestamptz_local(text, local).map_err(|e| {
        PgError::new(
            code::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type timestamp with time zone: \"{text}\" ({e})"),
        )
    })
}

fn no_such_role(name: &str) -> PgError {
    PgError::new(
        code::UNDEFINED_OBJECT,
        format!("role \"{name}\" does not exist"),
    )
}

fn denied(message: impl Into<String>) -> PgError {
    PgError::new(code::INSUFFICIENT_PRIVILEGE, message)
}

fn reserved(name: &str) -> Result<(), PgError> {
    if name == "public" || name == "none" || name.starts_with("pg_") {
        return Err(
            PgError::new("42939", format!("role name \"{name}\" is reserved"))
                .with_detail("Role names starting with \"pg_\" are reserved."),
        );
    }
    Ok(())
}

/// The OID of a role a statement names.
fn resolve(access: &Access, session: &Session, spec: &RoleSpec) -> Result<u32, PgError> {
    let identity = session.settings.identity();
    match spec {
        RoleSpec::Public => Ok(PUBLIC),
        RoleSpec::CurrentUser => Ok(identity.current().0),
        RoleSpec::SessionUser => Ok(identity.session.0),
        RoleSpec::Named(name) => access
            .role_named(name)
            .map(|r| r.oid)
            .ok_or_else(|| no_such_role(name)),
    }
}

fn named(access: &Access, name: &str) -> Result<u32, PgError> {
    access
        .role_named(name)
        .map(|r| r.oid)
        .ok_or_else(|| no_such_role(name))
}

fn tag(tag: &str) -> Response {
    Response::Execution(Tag::new(tag))
}

/// Runs a role or privilege statement as the session's current user.
pub fn execute(session: &Session, command: &AccessCommand) -> Result<Response, PgError> {
    let me = session.settings.identity().current().0;
    let engine = &session.shared.engine;
    let zone = session.settings.time_zone();
    let response = match command {
        AccessCommand::CreateRole {
            name,
            user,
            options,
        } => {
            reserved(name)?;
            engine.update_access(|access| -> Result<(), PgError> {
                let actor = Actor::of(access, me);
                if !actor.superuser && !actor.create_role {
                    return Err(denied("permission denied to create role"));
                }
                if access.role_named(name).is_some() {
                    return Err(PgError::new(
                        "42710",
                        format!("role \"{name}\" already exists"),
                    ));
                }
                let mut def = RoleDef::new(name.clone());
                def.login = *user;
                apply(&mut def, options, &actor, true, &zone)?;
                let oid = access.add_role(def);
                for option in options {
                    match option {
                        RoleOption::InRole(roles) => {
                            for role in roles {
                                let role = named(access, role)?;
                                add_member(access, &actor, role, oid, false)?;
                            }
                        }
                        RoleOption::Members(members) | RoleOption::Admins(members) => {
                            let admin = matches!(option, RoleOption::Admins(_));
                            for member in members {
                                let member = named(access, member)?;
                                add_member(access, &actor, oid, member, admin)?;
                            }
                        }
                        _ => {}
                    }
                }
                Ok(())
            })?;
            tracing::info!(role = %name, "role created");
            tag("CREATE ROLE")
        }
        AccessCommand::AlterRole { role, options } => {
            engine.update_access(|access| -> Result<(), PgError> {
                let actor = Actor::of(access, me);
                let oid = resolve(access, session, role)?;
                let target = access
                    .role(oid)
                    .cloned()
                    .ok_or_else(|| no_such_role("public"))?;
                let only_password = options.iter().all(|o| matches!(o, RoleOption::Password(_)));
                let allowed = actor.superuser
                    || (actor.create_role && !target.superuser)
                    || (oid == me && only_password);
                if !allowed {
                    return Err(denied(if target.superuser {
                        "must be superuser to alter superuser roles or change superuser attribute"
                            .to_owned()
                    } else {
                        format!("permission denied to alter role \"{}\"", target.name)
                    }));
                }
                if options.iter().any(|o| {
                    matches!(
                        o,
                        RoleOption::InRole(_) | RoleOption::Members(_) | RoleOption::Admins(_)
                    )
                }) {
                    return Err(PgError::syntax(
                        "IN ROLE, ROLE and ADMIN are options of CREATE ROLE only",
                    ));
                }
                let mut def = target.clone();
                apply(&mut def, options, &actor, false, &zone)?;
                if oid == BOOTSTRAP_SUPERUSER && !def.superuser {
                    return Err(denied(
                        "permission denied: bootstrap user must be superuser",
                    ));
                }
                *access
                    .role_mut(oid)
                    .ok_or_else(|| no_such_role(&target.name))? = def;
                Ok(())
            })?;
            refresh_superuser(session);
            tag("ALTER ROLE")
        }
        AccessCommand::RenameRole { name, to } => {
            reserved(to)?;
            let identity = session.settings.identity();
            engine.update_access(|access| -> Result<(), PgError> {
                let actor = Actor::of(access, me);
                let oid = named(access, name)?;
                let target = access
                    .role(oid)
                    .cloned()
                    .ok_or_else(|| no_such_role(name))?;
                if oid == identity.session.0 {
                    return Err(PgError::unsupported("session user cannot be renamed"));
                }
                if oid == me {
                    return Err(PgError::unsupported("current user cannot be renamed"));
                }
                if !(actor.superuser || (actor.create_role && !target.superuser)) {
                    return Err(denied(format!(
                        "permission denied to rename role \"{name}\""
                    )));
                }
                if access.role_named(to).is_some() {
                    return Err(PgError::new(
                        "42710",
                        format!("role \"{to}\" already exists"),
                    ));
                }
                if let Some(def) = access.role_mut(oid) {
                    def.name = to.clone();
                }
                Ok(())
            })?;
            tag("ALTER ROLE")
        }
        AccessCommand::DropRoles { names, if_exists } => {
            let identity = session.settings.identity();
            let relations = relation_names(session);
            let mut skipped = Vec::new();
            engine.update_access(|access| -> Result<(), PgError> {
                let actor = Actor::of(access, me);
                if !actor.superuser && !actor.create_role {
                    return Err(denied("permission denied to drop role"));
                }
                for name in names {
                    let Some(target) = access.role_named(name).cloned() else {
                        if *if_exists {
                            skipped.push(name.clone());
                            continue;
                        }
                        return Err(no_such_role(name));
                    };
                    if target.oid == BOOTSTRAP_SUPERUSER {
                        return Err(PgError::new(
                            code::DEPENDENT_OBJECTS_STILL_EXIST,
                            format!("cannot drop role {name} because it is required by the database system"),
                        ));
                    }
                    if target.oid == identity.session.0 {
                        return Err(PgError::new("55006", "session user cannot be dropped"));
                    }
                    if target.oid == me {
                        return Err(PgError::new("55006", "current user cannot be dropped"));
                    }
                    if target.superuser && !actor.superuser {
                        return Err(denied("must be superuser to drop superusers"));
                    }
                    let mut details: Vec<String> = access
                        .owned_by(target.oid)
                        .into_iter()
                        .map(|id| format!("owner of {}", relations(id)))
                        .collect();
                    details.extend(
                        access
                            .grants
                            .iter()
                            .filter(|g| g.grantee == target.oid || g.grantor == target.oid)
                            .map(|g| format!("privileges for {}", relations(g.relation))),
                    );
                    if !details.is_empty() {
                        return Err(PgError::new(
                            code::DEPENDENT_OBJECTS_STILL_EXIST,
                            format!("role \"{name}\" cannot be dropped because some objects depend on it"),
                        )
                        .with_detail(details.join("\n")));
                    }
                    access.remove_role(target.oid);
                }
                Ok(())
            })?;
            for name in skipped {
                session.notice(format!("role \"{name}\" does not exist, skipping"));
            }
            tag("DROP ROLE")
        }
        AccessCommand::GrantRoles {
            roles,
            members,
            admin,
        } => {
            engine.update_access(|access| -> Result<(), PgError> {
                let actor = Actor::of(access, me);
                for role in roles {
                    let role = named(access, role)?;
                    for member in members {
                        let member = resolve(access, session, member)?;
                        if member == PUBLIC {
                            return Err(PgError::new(
                                code::UNDEFINED_OBJECT,
                                "role \"public\" does not exist",
                            ));
                        }
                        add_member(access, &actor, role, member, *admin)?;
                    }
                }
                Ok(())
            })?;
            tag("GRANT ROLE")
        }
        AccessCommand::RevokeRoles {
            roles,
            members,
            admin_only,
        } => {
            let mut warnings = Vec::new();
            engine.update_access(|access| -> Result<(), PgError> {
                let actor = Actor::of(access, me);
                for role_name in roles {
                    let role = named(access, role_name)?;
                    may_administer(access, &actor, role)?;
                    for member in members {
                        let member_oid = resolve(access, session, member)?;
                        let before = access.members.len();
                        if *admin_only {
                            access
                                .members
                                .iter_mut()
                                .filter(|m| m.role == role && m.member == member_oid)
                                .for_each(|m| m.admin = false);
                        } else {
                            access
                                .members
                                .retain(|m| !(m.role == role && m.member == member_oid));
                        }
                        if !admin_only && access.members.len() == before {
                            let member_name = access
                                .role(member_oid)
                                .map_or("public".to_owned(), |r| r.name.clone());
                            warnings.push(format!(
                                "role \"{member_name}\" is not a member of role \"{role_name}\""
                            ));
                        }
                    }
                }
                Ok(())
            })?;
            for warning in warnings {
                session.warning(code::WARNING, warning);
            }
            tag("REVOKE ROLE")
        }
        AccessCommand::Grant {
            privileges,
            objects,
            grantees,
            grant_option,
        } => {
            change_privileges(
                session,
                me,
                *privileges,
                objects,
                grantees,
                Change::Grant {
                    with_grant_option: *grant_option,
                },
            )?;
            tag("GRANT")
        }
        AccessCommand::Revoke {
            privileges,
            objects,
            grantees,
            grant_option_only,
            cascade,
        } => {
            change_privileges(
                session,
                me,
                *privileges,
                objects,
                grantees,
                Change::Revoke {
                    grant_option_only: *grant_option_only,
                    cascade: *cascade,
                },
            )?;
            tag("REVOKE")
        }
        AccessCommand::AlterOwner { relation, owner } => {
            let id = relation_id(session, relation)?;
            engine.update_access(|access| -> Result<(), PgError> {
                let actor = Actor::of(access, me);
                let new_owner = resolve(access, session, owner)?;
                if new_owner == PUBLIC {
                    return Err(no_such_role("public"));
                }
                if !actor.superuser {
                    if !access.owns(me, id) {
                        return Err(not_owner(relation));
                    }
                    if !access.is_member(me, new_owner) {
                        let name = access
                            .role(new_owner)
                            .map(|r| r.name.clone())
                            .unwrap_or_default();
                        return Err(denied(format!("must be able to SET ROLE \"{name}\"")));
                    }
                }
                access.set_owner(id, new_owner);
                Ok(())
            })?;
            tag("ALTER TABLE")
        }
    };
    Ok(response)
}

/// The role running a statement, as far as managing roles goes.
struct Actor {
    oid: u32,
    superuser: bool,
    create_role: bool,
}

impl Actor {
    fn of(access: &Access, oid: u32) -> Actor {
        let role = access.role(oid);
        Actor {
            oid,
            superuser: role.is_some_and(|r| r.superuser),
            create_role: role.is_some_and(|r| r.create_role),
        }
    }
}

/// Applies attribute options to a role definition, checking that the actor may set them.
fn apply(
    def: &mut RoleDef,
    options: &[RoleOption],
    actor: &Actor,
    creating: bool,
    zone: &Tz,
) -> Result<(), PgError> {
    let mut seen = std::collections::HashSet::new();
    for option in options {
        if !seen.insert(std::mem::discriminant(option)) {
            return Err(PgError::syntax("conflicting or redundant options"));
        }
        let needs_superuser = |what: &str| -> Result<(), PgError> {
            if actor.superuser {
                Ok(())
            } else {
                Err(denied(format!(
                    "must be superuser to {} {what}",
                    if creating { "create" } else { "change" }
                )))
            }
        };
        match option {
            RoleOption::Superuser(v) => {
                needs_superuser("superusers")?;
                def.superuser = *v;
            }
            RoleOption::Replication(v) => {
                needs_superuser("replication users")?;
                def.replication = *v;
            }
            RoleOption::BypassRls(v) => {
                needs_superuser("bypassrls users")?;
                def.bypass_rls = *v;
            }
            RoleOption::CreateDb(v) => def.create_db = *v,
            RoleOption::CreateRole(v) => def.create_role = *v,
            RoleOption::Inherit(v) => def.inherit = *v,
            RoleOption::Login(v) => def.login = *v,
            RoleOption::ConnectionLimit(v) => def.connection_limit = *v,
            RoleOption::Password(v) => def.password = v.clone(),
            RoleOption::ValidUntil(text) => def.valid_until = Some(valid_until(text, zone)?),
            RoleOption::InRole(_) | RoleOption::Members(_) | RoleOption::Admins(_) => {}
        }
    }
    Ok(())
}

/// Whether the actor may grant or revoke membership in `role`.
fn may_administer(access: &Access, actor: &Actor, role: u32) -> Result<(), PgError> {
    let target = access.role(role);
    let superuser_role = target.is_some_and(|r| r.superuser);
    let admin = access
        .members
        .iter()
        .any(|m| m.role == role && m.member == actor.oid && m.admin);
    let allowed = actor.superuser || (!superuser_role && (actor.create_role || admin));
    if allowed {
        return Ok(());
    }
    let name = target.map(|r| r.name.clone()).unwrap_or_default();
    Err(denied(if superuser_role {
        "must be superuser to alter superusers".to_owned()
    } else {
        format!("must have admin option on role \"{name}\"")
    }))
}

/// Makes `member` a member of `role`, refusing loops.
fn add_member(
    access: &mut Access,
    actor: &Actor,
    role: u32,
    member: u32,
    admin: bool,
) -> Result<(), PgError> {
    may_administer(access, actor, role)?;
    let name = |oid: u32| access.role(oid).map(|r| r.name.clone()).unwrap_or_default();
    if access.is_member(role, member) {
        return Err(PgError::new(
            "0LP01",
            format!(
                "role \"{}\" is a member of role \"{}\"",
                name(role),
                name(member)
            ),
        ));
    }
    match access
        .members
        .iter_mut()
        .find(|m| m.role == role && m.member == member)
    {
        Some(m) => m.admin |= admin,
        None => access.members.push(Membership {
            role,
            member,
            admin,
            grantor: actor.oid,
        }),
    }
    Ok(())
}

fn not_owner(relation: &str) -> PgError {
    denied(format!("must be owner of table {relation}"))
}

/// The id of a table or view of this name.
fn relation_id(session: &Session, name: &str) -> Result<u64, PgError> {
    let engine = &session.shared.engine;
    engine
        .table(name)
        .map(|t| t.def.id)
        .or_else(|| engine.view(name).map(|v| v.id))
        .ok_or_else(|| {
            PgError::new(
                code::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            )
        })
}

/// Names relations by id, for messages ("table t", "view v").
fn relation_names(session: &Session) -> impl Fn(u64) -> String {
    let engine = &session.shared.engine;
    let mut names: std::collections::HashMap<u64, String> = engine
        .tables()
        .into_iter()
        .map(|t| (t.def.id, format!("table {}", t.def.name)))
        .collect();
    names.extend(
        engine
            .views()
            .into_iter()
            .map(|v| (v.id, format!("view {}", v.name))),
    );
    names.insert(
        henge_planner::pg::roles::SCHEMA_PUBLIC,
        "schema public".to_owned(),
    );
    move |id| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("relation {id}"))
    }
}

/// What a GRANT or REVOKE of privileges does.
#[derive(Debug, Clone, Copy)]
enum Change {
    Grant {
        with_grant_option: bool,
    },
    Revoke {
        grant_option_only: bool,
        cascade: bool,
    },
}

/// GRANT or REVOKE privileges on tables or schemas.
fn change_privileges(
    session: &Session,
    me: u32,
    privileges: Privileges,
    objects: &Objects,
    grantees: &[RoleSpec],
    change: Change,
) -> Result<(), PgError> {
    let grant = matches!(change, Change::Grant { .. });
    let engine = &session.shared.engine;
    let table_bits = Privileges::ALL;
    let schema_bits = Privileges::CREATE.union(Privileges::USAGE);
    // The relations, with the privileges that apply to each kind.
    let (targets, applicable): (Vec<(u64, String)>, Privileges) = match objects {
        Objects::Tables(names) => (
            names
                .iter()
                .map(|n| relation_id(session, n).map(|id| (id, n.clone())))
                .collect::<Result<_, _>>()?,
            table_bits,
        ),
        Objects::AllTablesInSchemas(schemas) => {
            let mut targets = Vec::new();
            for schema in schemas {
                if schema != henge_planner::SCHEMA {
                    return Err(PgError::new(
                        "3F000",
                        format!("schema \"{schema}\" does not exist"),
                    ));
                }
                targets.extend(
                    engine
                        .tables()
                        .into_iter()
                        .map(|t| (t.def.id, t.def.name.clone())),
                );
                targets.extend(engine.views().into_iter().map(|v| (v.id, v.name)));
            }
            (targets, table_bits)
        }
        Objects::Schemas(schemas) => {
            for schema in schemas {
                if schema != henge_planner::SCHEMA {
                    return Err(PgError::unsupported(format!(
                        "privileges on schema \"{schema}\" are not supported (only public's)"
                    )));
                }
            }
            (
                vec![(henge_planner::pg::roles::SCHEMA_PUBLIC, "public".to_owned())],
                schema_bits,
            )
        }
    };
    let all = privileges.contains(table_bits.union(schema_bits));
    let wanted = if all { applicable } else { privileges };
    if !applicable.contains(wanted) {
        let kind = if matches!(objects, Objects::Schemas(_)) {
            "schema"
        } else {
            "relation"
        };
        let name = privilege_names(wanted.minus(applicable));
        return Err(PgError::new(
            "0LP01",
            format!("invalid privilege type {name} for {kind}"),
        ));
    }
    let mut warnings = Vec::new();
    engine.update_access(|access| -> Result<(), PgError> {
        let superuser = access.is_superuser(me);
        let grantees: Vec<u32> = grantees
            .iter()
            .map(|g| resolve(access, session, g))
            .collect::<Result<_, _>>()?;
        for (id, name) in &targets {
            // As in PostgreSQL: a role with no privilege on the object is refused; one
            // with privileges but not the right to grant them is warned, and grants (or
            // revokes) only those it may.
            let full = superuser || access.owns(me, *id);
            let can = if full {
                wanted
            } else {
                access.grantable(me, *id)
            };
            if !full && access.privileges(me, *id).is_empty() {
                return Err(denied(match objects {
                    Objects::Schemas(_) => format!("permission denied for schema {name}"),
                    _ => format!("permission denied for table {name}"),
                }));
            }
            let effective = Privileges(wanted.0 & can.0);
            let (state, verb) = if grant {
                (code::PRIVILEGE_NOT_GRANTED, "were granted")
            } else {
                (code::PRIVILEGE_NOT_REVOKED, "could be revoked")
            };
            if effective.is_empty() {
                warnings.push((state, format!("no privileges {verb} for \"{name}\"")));
            } else if effective != wanted {
                warnings.push((state, format!("not all privileges {verb} for \"{name}\"")));
            }
            // Grants by a superuser, or by a member of the owner, are the owner's, as in
            // PostgreSQL.
            let grantor = if full { access.owner(*id) } else { me };
            if effective.is_empty() {
                continue;
            }
            for &grantee in &grantees {
                match change {
                    Change::Grant { with_grant_option } => {
                        access.grant(*id, grantee, grantor, effective, with_grant_option)
                    }
                    Change::Revoke {
                        grant_option_only, ..
                    } => access.revoke(*id, grantee, grantor, effective, grant_option_only),
                }
            }
            // What the grantees granted with a grant option they no longer hold: PostgreSQL's
            // dependent privileges, revoked too with CASCADE, and refused without.
            if let Change::Revoke { cascade, .. } = change {
                loop {
                    let dependent = access.dependent_grants(*id);
                    if dependent.is_empty() {
                        break;
                    }
                    if !cascade {
                        return Err(PgError::new(
                            code::DEPENDENT_OBJECTS_STILL_EXIST,
                            "dependent privileges exist",
                        )
                        .with_hint("Use CASCADE to revoke them too."));
                    }
                    for (grantee, grantor, privileges) in dependent {
                        access.revoke(*id, grantee, grantor, privileges, false);
                    }
                }
            }
        }
        Ok(())
    })?;
    for (state, warning) in warnings {
        session.warning(state, warning);
    }
    Ok(())
}

/// The SQL names of privileges, as an error lists them.
fn privilege_names(privileges: Privileges) -> String {
    let mut names: Vec<&str> = Privileges::NAMED
        .iter()
        .filter(|(p, _, _)| privileges.contains(*p))
        .map(|(_, n, _)| *n)
        .collect();
    if privileges.contains(Privileges::CREATE) {
        names.push("CREATE");
    }
    if privileges.contains(Privileges::USAGE) {
        names.push("USAGE");
    }
    names.join(", ")
}

/// After ALTER ROLE: the session's `is_superuser` follows its role's attribute.
fn refresh_superuser(session: &Session) {
    let mut identity = session.settings.identity();
    let superuser = session
        .shared
        .engine
        .access()
        .is_superuser(identity.current().0);
    if identity.superuser != superuser {
        identity.superuser = superuser;
        session.settings.set_identity(identity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

    fn parsed(sql: &str) -> Result<AccessCommand, PgError> {
        let dialect = PostgreSqlDialect {};
        let mut parser = Parser::new(&dialect).try_with_sql(sql).unwrap();
        assert!(starts(&parser), "{sql}");
        parse(&mut parser)
    }

    #[test]
    fn role_statements_are_read_as_postgresql_writes_them() {
        let AccessCommand::CreateRole { name, user, options } =
            parsed("CREATE USER \"Alice\" WITH CONNECTION LIMIT 3 VALID UNTIL 'infinity' NOSUPERUSER IN ROLE analysts").unwrap()
        else {
            panic!()
        };
        assert_eq!((name.as_str(), user), ("Alice", true));
        assert_eq!(
            options,
            vec![
                RoleOption::ConnectionLimit(3),
                RoleOption::ValidUntil("infinity".into()),
                RoleOption::Superuser(false),
                RoleOption::InRole(vec!["analysts".into()]),
            ]
        );
        assert!(matches!(
            parsed("ALTER ROLE bob RENAME TO robert").unwrap(),
            AccessCommand::RenameRole { .. }
        ));
        assert!(matches!(
            parsed("DROP ROLE IF EXISTS a, b").unwrap(),
            AccessCommand::DropRoles { if_exists: true, names } if names == ["a", "b"]
        ));
        assert!(matches!(
            parsed("GRANT analysts TO alice, CURRENT_USER WITH ADMIN OPTION").unwrap(),
            AccessCommand::GrantRoles { admin: true, members, .. } if members[1] == RoleSpec::CurrentUser
        ));
        assert!(matches!(
            parsed("GRANT SELECT, INSERT ON TABLE t, u TO PUBLIC WITH GRANT OPTION").unwrap(),
            AccessCommand::Grant { grant_option: true, objects: Objects::Tables(t), .. } if t == ["t", "u"]
        ));
        assert!(matches!(
            parsed("REVOKE GRANT OPTION FOR ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM r CASCADE").unwrap(),
            AccessCommand::Revoke { grant_option_only: true, objects: Objects::AllTablesInSchemas(_), .. }
        ));
    }

    #[test]
    fn passwords_become_verifiers_and_never_show() {
        let AccessCommand::CreateRole { options, .. } =
            parsed("CREATE ROLE r LOGIN PASSWORD 'hunter2'").unwrap()
        else {
            panic!()
        };
        let RoleOption::Password(Some(verifier)) = &options[1] else {
            panic!()
        };
        assert!(crate::scram::verify(verifier, "hunter2"));
        assert!(!format!("{options:?}").contains("hunter2"));
        assert!(!format!("{options:?}").contains(verifier.as_str()));
        // Already a verifier: kept as it is.
        let sql = format!("ALTER ROLE r PASSWORD '{verifier}'");
        let AccessCommand::AlterRole { options, .. } = parsed(&sql).unwrap() else {
            panic!()
        };
        assert_eq!(options, vec![RoleOption::Password(Some(verifier.clone()))]);
        // A misplaced password is not repeated in the error.
        let e = parsed("CREATE ROLE r PASSWORD 'hunter2' 'again'").unwrap_err();
        assert!(
            !e.message.contains("hunter2") && !e.message.contains("again"),
            "{}",
            e.message
        );
    }
}
