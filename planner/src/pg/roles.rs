//! Roles in the catalogs: `pg_roles`, `pg_user`, `pg_authid`, `pg_shadow` and
//! `pg_auth_members` from Henge's own roles (the library's are another cluster's), and the
//! privilege inquiry functions `has_table_privilege`, `has_any_column_privilege`,
//! `has_schema_privilege` and `has_database_privilege` answering from the grants.
//!
//! No view shows a password: `pg_roles` and `pg_user` show `********`, as PostgreSQL does, and `pg_authid` and `pg_shadow`, where PostgreSQL shows superusers
//! the stored verifier, show NULL.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;
use henge_ingest::Engine;
use henge_storage::access::{Access, Privileges, RoleDef, PUBLIC};

use super::{no_such_function, Relations, Settings, SqlStateError};

/// The id under which grants on schema `public` are kept (table ids start at 1).
pub const SCHEMA_PUBLIC: u64 = 0;

/// The catalogs Henge adds to the library's `pg_catalog`.
pub const EXTRA_TABLES: [&str; 2] = ["pg_user", "pg_shadow"];

/// Whether `name` is one of pg_catalog's tables.
pub fn is_catalog_table(name: &str) -> bool {
    datafusion_pg_catalog::pg_catalog::PG_CATALOG_TABLES.contains(&name)
        || EXTRA_TABLES.contains(&name)
}

/// The catalog tables about roles, by name; `None` for other names.
pub fn catalog_table(name: &str, access: &Access) -> Option<Result<Arc<dyn TableProvider>>> {
    let roles: Vec<&RoleDef> = access.roles().collect();
    let batch = match name {
        "pg_roles" => pg_roles(&roles, true),
        "pg_authid" => pg_roles(&roles, false),
        "pg_user" | "pg_shadow" => pg_user(&roles, name == "pg_user"),
        "pg_auth_members" => pg_auth_members(access),
        _ => return None,
    };
    Some(batch.and_then(|batch| {
        Ok(
            Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?)
                as Arc<dyn TableProvider>,
        )
    }))
}

fn zone() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn bools(roles: &[&RoleDef], f: impl Fn(&RoleDef) -> bool) -> ArrayRef {
    Arc::new(BooleanArray::from(
        roles.iter().map(|r| f(r)).collect::<Vec<_>>(),
    ))
}

fn valid_until(roles: &[&RoleDef]) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from(roles.iter().map(|r| r.valid_until).collect::<Vec<_>>())
            .with_timezone("UTC"),
    )
}

fn oids(roles: &[&RoleDef]) -> ArrayRef {
    Arc::new(Int32Array::from(
        roles.iter().map(|r| r.oid as i32).collect::<Vec<_>>(),
    ))
}

/// `pg_roles` (`masked`: `********` for a password) or `pg_authid` (NULL).
fn pg_roles(roles: &[&RoleDef], masked: bool) -> Result<RecordBatch> {
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        roles.iter().map(|r| r.name.as_str()),
    ));
    // PostgreSQL's pg_roles shows the mask whether or not the role has a password.
    let passwords: ArrayRef = Arc::new(StringArray::from(
        roles
            .iter()
            .map(|_| masked.then_some("********"))
            .collect::<Vec<_>>(),
    ));
    let limits: ArrayRef = Arc::new(Int32Array::from(
        roles.iter().map(|r| r.connection_limit).collect::<Vec<_>>(),
    ));
    let mut fields = vec![
        Field::new("rolname", DataType::Utf8, false),
        Field::new("rolsuper", DataType::Boolean, false),
        Field::new("rolinherit", DataType::Boolean, false),
        Field::new("rolcreaterole", DataType::Boolean, false),
        Field::new("rolcreatedb", DataType::Boolean, false),
        Field::new("rolcanlogin", DataType::Boolean, false),
        Field::new("rolreplication", DataType::Boolean, false),
        Field::new("rolconnlimit", DataType::Int32, false),
        Field::new("rolpassword", DataType::Utf8, true),
        Field::new("rolvaliduntil", zone(), true),
        Field::new("rolbypassrls", DataType::Boolean, false),
    ];
    let mut columns = vec![
        names,
        bools(roles, |r| r.superuser),
        bools(roles, |r| r.inherit),
        bools(roles, |r| r.create_role),
        bools(roles, |r| r.create_db),
        bools(roles, |r| r.login),
        bools(roles, |r| r.replication),
        limits,
        passwords,
        valid_until(roles),
        bools(roles, |r| r.bypass_rls),
    ];
    if masked {
        let mut config = ListBuilder::new(StringBuilder::new());
        roles.iter().for_each(|_| config.append_null());
        fields.push(Field::new(
            "rolconfig",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ));
        columns.push(Arc::new(config.finish()));
        fields.push(Field::new("oid", DataType::Int32, false));
        columns.push(oids(roles));
    } else {
        // pg_authid's order: the OID first, rolbypassrls after rolreplication.
        let (field, column) = (fields.remove(10), columns.remove(10));
        fields.insert(7, field);
        columns.insert(7, column);
        fields.insert(0, Field::new("oid", DataType::Int32, false));
        columns.insert(0, oids(roles));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// `pg_user` (`masked`) or `pg_shadow`: the roles that can log in.
fn pg_user(roles: &[&RoleDef], masked: bool) -> Result<RecordBatch> {
    let users: Vec<&RoleDef> = roles.iter().copied().filter(|r| r.login).collect();
    let roles = users.as_slice();
    let mut config = ListBuilder::new(StringBuilder::new());
    roles.iter().for_each(|_| config.append_null());
    let schema = Schema::new(vec![
        Field::new("usename", DataType::Utf8, false),
        Field::new("usesysid", DataType::Int32, false),
        Field::new("usecreatedb", DataType::Boolean, false),
        Field::new("usesuper", DataType::Boolean, false),
        Field::new("userepl", DataType::Boolean, false),
        Field::new("usebypassrls", DataType::Boolean, false),
        Field::new("passwd", DataType::Utf8, true),
        Field::new("valuntil", zone(), true),
        Field::new(
            "useconfig",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                roles.iter().map(|r| r.name.as_str()),
            )),
            oids(roles),
            bools(roles, |r| r.create_db),
            bools(roles, |r| r.superuser),
            bools(roles, |r| r.replication),
            bools(roles, |r| r.bypass_rls),
            Arc::new(StringArray::from(
                roles
                    .iter()
                    .map(|_| masked.then_some("********"))
                    .collect::<Vec<_>>(),
            )),
            valid_until(roles),
            Arc::new(config.finish()),
        ],
    )?)
}

/// `pg_auth_members`: one row per membership.
fn pg_auth_members(access: &Access) -> Result<RecordBatch> {
    let members = &access.members;
    let int = |f: fn(&henge_storage::access::Membership) -> u32| -> ArrayRef {
        Arc::new(Int32Array::from(
            members.iter().map(|m| f(m) as i32).collect::<Vec<_>>(),
        ))
    };
    let schema = Schema::new(vec![
        Field::new("roleid", DataType::Int32, false),
        Field::new("member", DataType::Int32, false),
        Field::new("grantor", DataType::Int32, false),
        Field::new("admin_option", DataType::Boolean, false),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![
            int(|m| m.role),
            int(|m| m.member),
            int(|m| m.grantor),
            Arc::new(BooleanArray::from(
                members.iter().map(|m| m.admin).collect::<Vec<_>>(),
            )),
        ],
    )?)
}

/// Registers the privilege inquiry functions.
pub fn register(
    ctx: &SessionContext,
    engine: Arc<Engine>,
    settings: Arc<Settings>,
    relations: Relations,
) {
    for kind in [
        Inquiry::Table,
        Inquiry::AnyColumn,
        Inquiry::Schema,
        Inquiry::Database,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(HasPrivilege {
            kind,
            signature: Signature::user_defined(Volatility::Stable),
            engine: engine.clone(),
            settings: settings.clone(),
            relations: relations.clone(),
        }));
    }
}

/// What a `has_*_privilege` function asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Inquiry {
    Table,
    AnyColumn,
    Schema,
    Database,
}

impl Inquiry {
    fn name(self) -> &'static str {
        match self {
            Inquiry::Table => "has_table_privilege",
            Inquiry::AnyColumn => "has_any_column_privilege",
            Inquiry::Schema => "has_schema_privilege",
            Inquiry::Database => "has_database_privilege",
        }
    }

    /// The privilege of this name the inquiry knows.
    fn privilege(self, name: &str) -> Option<Privileges> {
        match self {
            Inquiry::Table => Privileges::named(name),
            Inquiry::AnyColumn => Privileges::named(name).filter(|p| {
                [
                    Privileges::SELECT,
                    Privileges::INSERT,
                    Privileges::UPDATE,
                    Privileges::REFERENCES,
                ]
                .contains(p)
            }),
            Inquiry::Schema => match name.to_ascii_uppercase().as_str() {
                "CREATE" => Some(Privileges::CREATE),
                "USAGE" => Some(Privileges::USAGE),
                _ => None,
            },
            Inquiry::Database => match name.to_ascii_uppercase().as_str() {
                "CREATE" => Some(Privileges::CREATE),
                "CONNECT" => Some(Privileges::CONNECT),
                "TEMP" | "TEMPORARY" => Some(Privileges::TEMPORARY),
                _ => None,
            },
        }
    }
}

/// `has_table_privilege([role,] table, privileges)` and its siblings.
struct HasPrivilege {
    kind: Inquiry,
    signature: Signature,
    engine: Arc<Engine>,
    settings: Arc<Settings>,
    relations: Relations,
}

impl std::fmt::Debug for HasPrivilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.name())
    }
}

impl PartialEq for HasPrivilege {
    fn eq(&self, other: &HasPrivilege) -> bool {
        self.kind == other.kind
    }
}

impl Eq for HasPrivilege {}

impl std::hash::Hash for HasPrivilege {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

/// The object an inquiry names: a relation of Henge's (by id), a system relation
/// everyone may read, or nothing (an OID no relation has).
enum Object {
    Relation(u64),
    System,
    Missing,
}

impl HasPrivilege {
    fn role(&self, access: &Access, value: Option<&ScalarValue>) -> Result<Option<u32>> {
        Ok(match value {
            None => Some(self.settings.identity().current().0),
            Some(ScalarValue::Utf8(Some(name))) => {
                if name.eq_ignore_ascii_case("public") {
                    Some(PUBLIC)
                } else {
                    Some(
                        access
                            .role_named(name)
                            .ok_or_else(|| {
                                SqlStateError::new(
                                    "42704",
                                    format!("role \"{name}\" does not exist"),
                                )
                            })?
                            .oid,
                    )
                }
            }
            Some(ScalarValue::Int64(Some(oid))) => u32::try_from(*oid)
                .ok()
                .filter(|oid| access.role(*oid).is_some()),
            _ => None,
        })
    }

    fn object(&self, value: &ScalarValue) -> Result<Object> {
        let (schema, name) = match value {
            ScalarValue::Utf8(Some(text)) => {
                let parts = split_name(text);
                match parts.as_slice() {
                    [name] => (None, name.clone()),
                    [schema, name] => (Some(schema.clone()), name.clone()),
                    [_, schema, name] => (Some(schema.clone()), name.clone()),
                    _ => {
                        return Err(SqlStateError::new(
                            "42601",
                            format!("improper relation name (too many dotted names): {text}"),
                        )
                        .into())
                    }
                }
            }
            ScalarValue::Int64(Some(oid)) => {
                let known = i32::try_from(*oid).ok().and_then(|oid| {
                    self.relations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&oid)
                        .cloned()
                });
                match known {
                    Some((schema, name)) => (Some(schema), name),
                    None => return Ok(Object::Missing),
                }
            }
            _ => return Ok(Object::Missing),
        };
        let ours = schema
            .as_deref()
            .is_none_or(|s| s == crate::session::SCHEMA);
        if ours {
            if let Some(table) = self.engine.table(&name) {
                return Ok(Object::Relation(table.def.id));
            }
            if let Some(view) = self.engine.view(&name) {
                return Ok(Object::Relation(view.id));
            }
        }
        let system = match schema.as_deref() {
            Some("pg_catalog" | "information_schema" | crate::system::SYSTEM_SCHEMA) => true,
            None => is_catalog_table(&name),
            _ => false,
        };
        if system {
            return Ok(Object::System);
        }
        let shown = match value {
            ScalarValue::Utf8(Some(text)) => text.clone(),
            _ => name,
        };
        Err(SqlStateError::new("42P01", format!("relation \"{shown}\" does not exist")).into())
    }

    /// The privileges asked for, and whether the right to grant them is asked.
    fn wanted(&self, text: &str) -> Result<Vec<(Privileges, bool)>> {
        text.split(',')
            .map(|item| {
                let item = item.trim();
                let upper = item.to_ascii_uppercase();
                let (name, grant) = match upper.strip_suffix("WITH GRANT OPTION") {
                    Some(name) => (name.trim_end().to_owned(), true),
                    None => (upper.clone(), false),
                };
                self.kind
                    .privilege(&name)
                    .map(|p| (p, grant))
                    .ok_or_else(|| {
                        SqlStateError::new(
                            "22023",
                            format!("unrecognized privilege type: \"{item}\""),
                        )
                        .into()
                    })
            })
            .collect()
    }

    fn answer(&self, access: &Access, args: &[ScalarValue]) -> Result<Option<bool>> {
        if args.iter().any(ScalarValue::is_null) {
            return Ok(None);
        }
        let (role, object, wanted) = match args {
            [object, wanted] => (self.role(access, None)?, object, wanted),
            [role, object, wanted] => (self.role(access, Some(role))?, object, wanted),
            _ => return Ok(None),
        };
        let Some(role) = role else {
            return Ok(None);
        };
        let ScalarValue::Utf8(Some(wanted)) = wanted else {
            return Ok(None);
        };
        let wanted = self.wanted(wanted)?;
        let superuser = access.is_superuser(role);
        let held = |id: u64, grant: bool| {
            if grant {
                access.grantable(role, id)
            } else {
                access.privileges(role, id)
            }
        };
        Ok(Some(match self.kind {
            Inquiry::Table | Inquiry::AnyColumn => match self.object(object)? {
                Object::Missing => return Ok(None),
                Object::System => wanted
                    .iter()
                    .any(|&(p, grant)| superuser || (p == Privileges::SELECT && !grant)),
                Object::Relation(id) => {
                    wanted.iter().any(|&(p, grant)| held(id, grant).contains(p))
                }
            },
            Inquiry::Schema => {
                let ScalarValue::Utf8(Some(schema)) = object else {
                    return Ok(None);
                };
                let schema = split_name(schema).pop().unwrap_or_default();
                if schema == crate::session::SCHEMA {
                    wanted.iter().any(|&(p, grant)| {
                        superuser
                            || (p == Privileges::USAGE && !grant)
                            || held(SCHEMA_PUBLIC, grant).contains(p)
                    })
                } else {
                    // The system schemas: everyone may use them, only superusers create.
                    wanted
                        .iter()
                        .any(|&(p, grant)| superuser || (p == Privileges::USAGE && !grant))
                }
            }
            Inquiry::Database => wanted
                .iter()
                .any(|&(p, grant)| superuser || (p != Privileges::CREATE && !grant)),
        }))
    }
}

/// The parts of a possibly qualified, possibly quoted name, folded as PostgreSQL folds
/// unquoted identifiers.
fn split_name(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            c if quoted => current.push(c),
            c => current.extend(c.to_lowercase()),
        }
    }
    parts.push(current);
    parts
}

impl ScalarUDFImpl for HasPrivilege {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(2..=3).contains(&arg_types.len()) {
            return Err(no_such_function(self.kind.name(), arg_types));
        }
        arg_types
            .iter()
            .map(|t| match t {
                t if t.is_integer() => Ok(DataType::Int64),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
                    Ok(DataType::Utf8)
                }
                _ => Err(no_such_function(self.kind.name(), arg_types)),
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // One look at the grants for the whole batch.
        let access = self.engine.access();
        let mut out = Vec::with_capacity(rows);
        for row in 0..arrays.first().map_or(0, |a| a.len()) {
            let values = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<Result<Vec<_>>>()?;
            out.push(self.answer(&access, &values)?);
        }
        let array = BooleanArray::from(out);
        Ok(match scalar {
            true => ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?),
            false => ColumnarValue::Array(Arc::new(array)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::split_name;

    #[test]
    fn names_are_split_and_folded_as_postgresql_does() {
        assert_eq!(split_name("T"), vec!["t"]);
        assert_eq!(split_name("public.Events"), vec!["public", "events"]);
        assert_eq!(split_name("\"My.Table\""), vec!["My.Table"]);
        assert_eq!(split_name("\"a\"\"b\""), vec!["a\"b"]);
    }
}
