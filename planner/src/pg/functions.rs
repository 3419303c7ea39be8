//! PostgreSQL's system functions that clients call and DataFusion lacks (or has with
//! other answers): `version()`, `current_setting`, `set_config`, `current_user` and
//! friends, `pg_get_userbyid`, and the comment lookups (Henge keeps no comments).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::settings::{Settings, SERVER_VERSION};
use super::{Definitions, Relations, USER_OID};

/// What a function computes from one row of arguments.
pub type Body = Arc<dyn Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync>;
/// What a `void` function does with one row of arguments.
pub type Effect = Arc<dyn Fn(&[ScalarValue]) -> Result<()> + Send + Sync>;

/// A function evaluated row by row on scalar values: simple, and plenty for catalog and
/// session functions, which see a handful of rows.
pub struct RowFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    /// The extension type of the result (`void`), if any.
    extension: Option<&'static str>,
    /// The result's type from the arguments' types, where it depends on them.
    returns_of: Option<fn(&[DataType]) -> DataType>,
    body: Body,
}

impl RowFunction {
    /// A scalar function over `arguments` (each list one accepted signature).
    pub fn udf(
        name: &'static str,
        arguments: Vec<Vec<DataType>>,
        returns: DataType,
        volatility: Volatility,
        body: Body,
    ) -> ScalarUDF {
        let signature = Signature::one_of(
            arguments.into_iter().map(TypeSignature::Exact).collect(),
            volatility,
        );
        RowFunction::with_signature(name, signature, returns, body)
    }

    /// A scalar function with any signature.
    pub fn with_signature(
        name: &'static str,
        signature: Signature,
        returns: DataType,
        body: Body,
    ) -> ScalarUDF {
        ScalarUDF::new_from_impl(RowFunction {
            name,
            signature,
            returns,
            extension: None,
            returns_of: None,
            body,
        })
    }

    /// A scalar function whose result's type depends on its arguments' (`returns_of`);
    /// `coerced` is the types its arguments are cast to, or `None` where it takes none
    /// of those types.
    pub fn polymorphic(
        name: &'static str,
        returns_of: fn(&[DataType]) -> DataType,
        signature: Signature,
        body: Body,
    ) -> ScalarUDF {
        ScalarUDF::new_from_impl(RowFunction {
            name,
            signature,
            returns: DataType::Null,
            extension: None,
            returns_of: Some(returns_of),
            body,
        })
    }

    /// A function of no arguments answering a `name` (text typed as PostgreSQL's `name`,
    /// as the session functions `current_user` and `current_database()` are).
    pub fn name_udf(name: &'static str, body: Body) -> ScalarUDF {
        ScalarUDF::new_from_impl(RowFunction {
            name,
            signature: Signature::exact(Vec::new(), Volatility::Stable),
            returns: DataType::Utf8,
            extension: Some(henge_storage::schema::NAME_EXTENSION),
            returns_of: None,
            body,
        })
    }

    /// A function returning `void` (an empty text, typed as PostgreSQL's `void`), run for
    /// what it does.
    pub fn void_udf(
        name: &'static str,
        arguments: Vec<Vec<DataType>>,
        volatility: Volatility,
        body: Effect,
    ) -> ScalarUDF {
        let signature = Signature::one_of(
            arguments.into_iter().map(TypeSignature::Exact).collect(),
            volatility,
        );
        ScalarUDF::new_from_impl(RowFunction {
            name,
            signature,
            returns: DataType::Utf8,
            extension: Some(henge_storage::schema::VOID_EXTENSION),
            returns_of: None,
            body: Arc::new(move |args| {
                body(args)?;
                Ok(ScalarValue::Utf8(Some(String::new())))
            }),
        })
    }
}

impl std::fmt::Debug for RowFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.body, &other.body)
    }
}

impl Eq for RowFunction {}

impl Hash for RowFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.returns_of {
            Some(of) => of(arg_types),
            None => self.returns.clone(),
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let field = Field::new(self.name, self.return_type(&types)?, true);
        Ok(Arc::new(match self.extension {
            Some(name) => field.with_metadata(
                [(
                    henge_storage::schema::EXTENSION_NAME_KEY.to_owned(),
                    name.to_owned(),
                )]
                .into(),
            ),
            None => field,
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        if all_scalar {
            let values = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(_) => unreachable!("checked above"),
                })
                .collect::<Vec<_>>();
            let out = (self.body)(&values)?;
            // A function without arguments still answers once per row.
            return if args.args.is_empty() {
                Ok(ColumnarValue::Array(
                    out.to_array_of_size(args.number_rows)?,
                ))
            } else {
                Ok(ColumnarValue::Scalar(out))
            };
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            let values = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<Result<Vec<_>>>()?;
            out.push((self.body)(&values)?);
        }
        let array = if out.is_empty() {
            datafusion::arrow::array::new_empty_array(args.return_field.data_type())
        } else {
            ScalarValue::iter_to_array(out)?
        };
        Ok(ColumnarValue::Array(array))
    }
}

fn string(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.clone(),
        _ => None,
    }
}

fn boolean(value: &ScalarValue) -> Option<bool> {
    match value {
        ScalarValue::Boolean(b) => *b,
        _ => None,
    }
}

fn oid(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => *v,
        ScalarValue::UInt32(v) => v.map(i64::from),
        _ => None,
    }
}

/// What `version()` answers: PostgreSQL's form, which drivers parse for the version.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (Henge {}) on {}-unknown-linux-gnu, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// Registers the functions on a session's context.
pub fn register(
    ctx: &SessionContext,
    settings: Arc<Settings>,
    relations: Relations,
    definitions: Definitions,
    engine: Arc<henge_ingest::Engine>,
) {
    let text = DataType::Utf8;
    // A view's query, by OID (of a relation pg_class has listed) or by name; NULL for
    // anything that is not a view, as PostgreSQL answers. The second argument (pretty
    // printing, or a wrap column) changes nothing: the query is shown as it was stored.
    let view_relations = relations.clone();
    ctx.register_udf(RowFunction::udf(
        "pg_get_viewdef",
        vec![
            vec![DataType::Int64],
            vec![DataType::Int64, DataType::Boolean],
            vec![DataType::Int64, DataType::Int32],
            vec![text.clone()],
            vec![text.clone(), DataType::Boolean],
        ],
        text.clone(),
        Volatility::Stable,
        Arc::new(move |args| {
            let named = match &args[0] {
                ScalarValue::Utf8(name) => name.as_ref().map(|name| match name.split_once('.') {
                    Some((schema, name)) => (schema.to_owned(), name.to_owned()),
                    None => (crate::SCHEMA.to_owned(), name.clone()),
                }),
                other => oid(other).and_then(|id| {
                    let relations = view_relations.lock().unwrap_or_else(|e| e.into_inner());
                    i32::try_from(id)
                        .ok()
                        .and_then(|id| relations.get(&id).cloned())
                }),
            };
            Ok(ScalarValue::Utf8(
                named.and_then(|(schema, name)| definitions(&schema, &name)),
            ))
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "version",
        vec![vec![]],
        text.clone(),
        Volatility::Stable,
        Arc::new(|_| Ok(ScalarValue::Utf8(Some(version_string())))),
    ));
    for name in [
        "current_user",
        "session_user",
        "user",
        "current_role",
        "henge_current_user",
    ] {
        let identity = settings.clone();
        ctx.register_udf(RowFunction::name_udf(
            name,
            Arc::new(move |_| {
                let who = identity.identity();
                let role = match name {
                    "session_user" => who.session,
                    _ => who.current().clone(),
                };
                Ok(ScalarValue::Utf8(Some(role.1)))
            }),
        ));
    }
    // `oid::regclass::text` (see rewrite::oid_alias_text): the relation's name, qualified
    // when its schema is not searched; the number when pg_class has not listed it.
    let named_relations = relations.clone();
    let name_path = settings.clone();
    ctx.register_udf(RowFunction::udf(
        "pg_relation_name",
        vec![vec![DataType::Int64]],
        text.clone(),
        Volatility::Stable,
        Arc::new(move |args| {
            let Some(id) = oid(&args[0]) else {
                return Ok(ScalarValue::Utf8(None));
            };
            let relations = named_relations.lock().unwrap_or_else(|e| e.into_inner());
            let name = match i32::try_from(id).ok().and_then(|id| relations.get(&id)) {
                Some((schema, name)) => {
                    let searched = schema == "pg_catalog"
                        || name_path.search_path().iter().any(|s| s == schema);
                    if searched {
                        name.clone()
                    } else {
                        format!("{schema}.{name}")
                    }
                }
                None => id.to_string(),
            };
            Ok(ScalarValue::Utf8(Some(name)))
        }),
    ));
    // Visible: in a schema of search_path, or in pg_catalog (always searched).
    let visible_relations = relations;
    let path = settings.clone();
    ctx.register_udf(RowFunction::udf(
        "pg_table_is_visible",
        vec![vec![DataType::Int64]],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(move |args| {
            let Some(id) = oid(&args[0]) else {
                return Ok(ScalarValue::Boolean(None));
            };
            let relations = visible_relations.lock().unwrap_or_else(|e| e.into_inner());
            let Some((schema, _)) = i32::try_from(id).ok().and_then(|id| relations.get(&id)) else {
                return Ok(ScalarValue::Boolean(None));
            };
            let visible = schema == "pg_catalog"
                || path.search_path().iter().any(|s| {
                    s == schema || (s == "$user" && *schema == path.identity().current().1)
                });
            Ok(ScalarValue::Boolean(Some(visible)))
        }),
    ));
    // The schemas of search_path that exist, as current_schemas and current_schema
    // answer (pg_catalog first when implicit schemas are asked for).
    let catalogs = ctx.state().catalog_list().clone();
    let schemas_of = {
        let settings = settings.clone();
        move |implicit: bool| -> Vec<String> {
            let catalog = catalogs.catalog(crate::session::CATALOG);
            let exists = |s: &str| catalog.as_ref().is_some_and(|c| c.schema(s).is_some());
            let mut out: Vec<String> = Vec::new();
            if implicit {
                out.push("pg_catalog".into());
            }
            for schema in settings.search_path() {
                let schema = if schema == "$user" {
                    settings.identity().current().1.clone()
                } else {
                    schema
                };
                if exists(&schema) && !out.contains(&schema) {
                    out.push(schema);
                }
            }
            out
        }
    };
    let schemas = Arc::new(schemas_of);
    let list = schemas.clone();
    ctx.register_udf(RowFunction::udf(
        "current_schemas",
        vec![vec![DataType::Boolean]],
        DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new(
            "item",
            DataType::Utf8,
            true,
        ))),
        Volatility::Stable,
        Arc::new(move |args| {
            let implicit = boolean(&args[0]).unwrap_or(false);
            let values: Vec<ScalarValue> = list(implicit)
                .into_iter()
                .map(|s| ScalarValue::Utf8(Some(s)))
                .collect();
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &values,
                &DataType::Utf8,
            )))
        }),
    ));
    ctx.register_udf(RowFunction::name_udf(
        "current_schema",
        Arc::new(move |_| Ok(ScalarValue::Utf8(schemas(false).into_iter().next()))),
    ));
    ctx.register_udf(RowFunction::name_udf(
        "current_database",
        Arc::new(|_| Ok(ScalarValue::Utf8(Some(crate::session::CATALOG.to_owned())))),
    ));
    let current = settings.clone();
    ctx.register_udf(RowFunction::udf(
        "current_setting",
        vec![vec![text.clone()], vec![text.clone(), DataType::Boolean]],
        text.clone(),
        Volatility::Stable,
        Arc::new(move |args| {
            let Some(name) = string(&args[0]) else {
                return Ok(ScalarValue::Utf8(None));
            };
            let missing_ok = args.get(1).and_then(boolean).unwrap_or(false);
            match current.get(&name) {
                Ok(value) => Ok(ScalarValue::Utf8(Some(value))),
                Err(_) if missing_ok => Ok(ScalarValue::Utf8(None)),
                Err(e) => Err(e.into()),
            }
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "set_config",
        vec![vec![text.clone(), text.clone(), DataType::Boolean]],
        text.clone(),
        Volatility::Volatile,
        Arc::new(move |args| {
            let (Some(name), Some(value)) = (string(&args[0]), string(&args[1])) else {
                return Ok(ScalarValue::Utf8(None));
            };
            settings.set(&name, &value)?;
            Ok(ScalarValue::Utf8(Some(settings.get(&name)?)))
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "pg_get_userbyid",
        vec![vec![DataType::Int64]],
        text.clone(),
        Volatility::Stable,
        Arc::new(move |args| {
            Ok(ScalarValue::Utf8(oid(&args[0]).map(|id| {
                // The library's catalogs give some owners as 0: the bootstrap superuser.
                let id = if id == 0 { i64::from(USER_OID) } else { id };
                u32::try_from(id)
                    .ok()
                    .and_then(|id| engine.read_access(|a| a.role(id).map(|r| r.name.clone())))
                    .unwrap_or_else(|| format!("unknown (OID={id})"))
            })))
        }),
    ));
    // Henge stores no expressions (defaults, constraints, index predicates); what the
    // catalogs hold is returned as it is, NULL as NULL.
    ctx.register_udf(RowFunction::udf(
        "pg_get_expr",
        vec![
            vec![text.clone(), DataType::Int64],
            vec![text.clone(), DataType::Int64, DataType::Boolean],
        ],
        text.clone(),
        Volatility::Stable,
        Arc::new(|args| Ok(ScalarValue::Utf8(string(&args[0])))),
    ));
    // Henge has no sequences, and no collations but the default.
    ctx.register_udf(RowFunction::udf(
        "pg_get_serial_sequence",
        vec![vec![text.clone(), text.clone()]],
        text.clone(),
        Volatility::Stable,
        Arc::new(|_| Ok(ScalarValue::Utf8(None))),
    ));
    ctx.register_udf(RowFunction::udf(
        "pg_collation_is_visible",
        vec![vec![DataType::Int64]],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(|args| Ok(ScalarValue::Boolean(oid(&args[0]).map(|_| true)))),
    ));
    // `pg_regtype_found(oid, name)`: the OID a `'name'::regtype` found, or PostgreSQL's
    // error for a type that does not exist (the lookup alone would be NULL).
    ctx.register_udf(RowFunction::udf(
        "pg_regtype_found",
        vec![
            vec![DataType::Int32, text.clone()],
            vec![DataType::Int64, text.clone()],
        ],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(|args| match (oid(&args[0]), &args[1]) {
            (Some(id), _) => Ok(ScalarValue::Int32(i32::try_from(id).ok())),
            (None, ScalarValue::Utf8(Some(name))) => Err(super::SqlStateError::new(
                "42704",
                format!("type \"{name}\" does not exist"),
            )
            .into()),
            (None, _) => Ok(ScalarValue::Int32(None)),
        }),
    ));
    // `pg_regclass_found(oid, name)`: the OID a `'name'::regclass` found (typed
    // `regclass`), or PostgreSQL's error for a relation that does not exist.
    ctx.register_udf(ScalarUDF::new_from_impl(RowFunction {
        name: "pg_regclass_found",
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Int32, text.clone()]),
                TypeSignature::Exact(vec![DataType::Int64, text.clone()]),
            ],
            Volatility::Stable,
        ),
        returns: DataType::Int32,
        extension: Some(henge_storage::schema::REGCLASS_EXTENSION),
        returns_of: None,
        body: Arc::new(|args| match (oid(&args[0]), &args[1]) {
            (Some(id), _) => Ok(ScalarValue::Int32(i32::try_from(id).ok())),
            (None, ScalarValue::Utf8(Some(name))) => Err(super::SqlStateError::new(
                "42P01",
                format!("relation \"{name}\" does not exist"),
            )
            .into()),
            (None, _) => Ok(ScalarValue::Int32(None)),
        }),
    }));
    // The name of the argument's type as PostgreSQL prints a regtype.
    ctx.register_udf(ScalarUDF::new_from_impl(PgTypeof {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    // Any integer, not only `integer` columns (the library's takes only those).
    ctx.register_udf(RowFunction::udf(
        "pg_encoding_to_char",
        vec![vec![DataType::Int64]],
        text.clone(),
        Volatility::Stable,
        Arc::new(|args| {
            Ok(ScalarValue::Utf8(oid(&args[0]).map(|id| {
                match id {
                    0 => "SQL_ASCII",
                    6 => "UTF8",
                    _ => "",
                }
                .to_owned()
            })))
        }),
    ));
    // num_nulls(…) and num_nonnulls(…): how many arguments are (not) NULL.
    for (name, nulls) in [("num_nulls", true), ("num_nonnulls", false)] {
        ctx.register_udf(RowFunction::with_signature(
            name,
            Signature::variadic_any(Volatility::Immutable),
            DataType::Int32,
            Arc::new(move |args| {
                let n = args.iter().filter(|a| a.is_null() == nulls).count();
                Ok(ScalarValue::Int32(Some(n as i32)))
            }),
        ));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(ColumnSize {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(
        datafusion::logical_expr::async_udf::AsyncScalarUDF::new(Arc::new(Sleep {
            signature: Signature::exact(vec![DataType::Float64], Volatility::Volatile),
        })),
    ));
    // Henge keeps no comments on objects.
    let no_comment: Body = Arc::new(|_| Ok(ScalarValue::Utf8(None)));
    ctx.register_udf(RowFunction::udf(
        "col_description",
        vec![vec![DataType::Int64, DataType::Int64]],
        text.clone(),
        Volatility::Stable,
        no_comment.clone(),
    ));
    ctx.register_udf(RowFunction::udf(
        "obj_description",
        vec![vec![DataType::Int64], vec![DataType::Int64, text.clone()]],
        text.clone(),
        Volatility::Stable,
        no_comment.clone(),
    ));
    ctx.register_udf(RowFunction::udf(
        "shobj_description",
        vec![vec![DataType::Int64, text.clone()]],
        text,
        Volatility::Stable,
        no_comment,
    ));
}

/// Registers the functions that know the connection: `pg_backend_pid()`, and
/// `pg_cancel_backend(pid)`, which asks `cancel` to stop that backend's running query.
/// `inet_server_port()` and `inet_client_port()` answer `ports` (the server's, the
/// client's).
pub fn register_backend(
    ctx: &SessionContext,
    pid: i32,
    ports: (Option<u16>, Option<u16>),
    cancel: impl Fn(i32) -> Result<bool> + Send + Sync + 'static,
) {
    ctx.register_udf(RowFunction::udf(
        "pg_backend_pid",
        vec![vec![]],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |_| Ok(ScalarValue::Int32(Some(pid)))),
    ));
    for (name, port) in [("inet_server_port", ports.0), ("inet_client_port", ports.1)] {
        ctx.register_udf(RowFunction::udf(
            name,
            vec![vec![]],
            DataType::Int32,
            Volatility::Stable,
            Arc::new(move |_| Ok(ScalarValue::Int32(port.map(i32::from)))),
        ));
    }
    ctx.register_udf(RowFunction::udf(
        "pg_cancel_backend",
        vec![vec![DataType::Int32]],
        DataType::Boolean,
        Volatility::Volatile,
        Arc::new(move |args| {
            Ok(ScalarValue::Boolean(match &args[0] {
                ScalarValue::Int32(Some(pid)) => Some(cancel(*pid)?),
                _ => None,
            }))
        }),
    ));
}

/// `txid_current()`: the open transaction's id, given at its first call (every later call
/// in the transaction answers the same), and `txid_current_if_assigned()`, NULL before.
/// Ids grow through the server's life from the time it started (in milliseconds), so
/// they keep growing across restarts unless more than a thousand a second are taken.
pub fn register_transaction_id(ctx: &SessionContext, current: Arc<std::sync::Mutex<Option<i64>>>) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: std::sync::OnceLock<AtomicI64> = std::sync::OnceLock::new();
    let assigned = current.clone();
    ctx.register_udf(RowFunction::udf(
        "txid_current",
        vec![vec![]],
        DataType::Int64,
        Volatility::Volatile,
        Arc::new(move |_| {
            let mut id = current.lock().unwrap_or_else(|e| e.into_inner());
            let id = *id.get_or_insert_with(|| {
                NEXT.get_or_init(|| {
                    let started = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(1, |d| d.as_millis() as i64);
                    AtomicI64::new(started)
                })
                .fetch_add(1, Ordering::Relaxed)
            });
            Ok(ScalarValue::Int64(Some(id)))
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "txid_current_if_assigned",
        vec![vec![]],
        DataType::Int64,
        Volatility::Volatile,
        Arc::new(move |_| {
            Ok(ScalarValue::Int64(
                *assigned.lock().unwrap_or_else(|e| e.into_inner()),
            ))
        }),
    ));
}

/// `pg_typeof(x)`: the name of its argument's type, from the argument's field (whose
/// extension type tells `json` and `jsonb` from text).
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let field = &args.arg_fields[0];
        let name = match super::types::extension(field) {
            Some(_) => super::types::of_field(field).data_type,
            None => type_name(field.data_type()),
        };
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

/// `pg_typeof`'s name for a type: SQL's (`integer`, `timestamp without time zone`), with
/// `[]` for arrays.
fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("{}[]", type_name(f.data_type()))
        }
        DataType::Null => "unknown".into(),
        other => super::types::of_arrow(other).data_type,
    }
}

/// `pg_column_size(x)`: the bytes a value of a fixed-width type takes. The size of a
/// variable-width value depends on how PostgreSQL would hold it (its header, compression),
/// which Henge does not mimic: those are refused.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ColumnSize {
    signature: Signature,
}

impl ScalarUDFImpl for ColumnSize {
    fn name(&self) -> &str {
        "pg_column_size"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, Int32Array};
        let field = &args.arg_fields[0];
        let size = match (super::types::extension(field), field.data_type()) {
            // An untyped NULL: NULL.
            (None, DataType::Null) => {
                return Ok(ColumnarValue::Scalar(ScalarValue::Int32(None)));
            }
            (Some(henge_storage::schema::UUID_EXTENSION), _) => 16,
            (None, DataType::Boolean) => 1,
            (None, DataType::Int16) => 2,
            (None, DataType::Int32 | DataType::Float32 | DataType::Date32) => 4,
            (None, DataType::Int64 | DataType::Float64 | DataType::Timestamp(..)) => 8,
            (None, DataType::Time64(_)) => 8,
            (None, DataType::Interval(_)) => 16,
            _ => {
                return Err(super::SqlStateError::new(
                    "0A000",
                    format!(
                        "pg_column_size of a {} value is not supported",
                        super::types::of_field(field).data_type
                    ),
                )
                .into())
            }
        };
        let sized = |valid: bool| valid.then_some(size);
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(v) => {
                ColumnarValue::Scalar(ScalarValue::Int32(sized(!v.is_null())))
            }
            ColumnarValue::Array(a) => ColumnarValue::Array(Arc::new(
                (0..a.len())
                    .map(|i| sized(a.is_valid(i)))
                    .collect::<Int32Array>(),
            )),
        })
    }
}

/// `pg_sleep(seconds)`: waits, without holding a thread; a cancel or `statement_timeout`
/// ends the wait with the statement.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sleep {
    signature: Signature,
}

impl ScalarUDFImpl for Sleep {
    fn name(&self) -> &str {
        "pg_sleep"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true).with_metadata(
                [(
                    henge_storage::schema::EXTENSION_NAME_KEY.to_owned(),
                    henge_storage::schema::VOID_EXTENSION.to_owned(),
                )]
                .into(),
            ),
        ))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(datafusion::error::DataFusionError::Internal(
            "pg_sleep runs only asynchronously".into(),
        ))
    }
}

#[async_trait::async_trait]
impl datafusion::logical_expr::async_udf::AsyncScalarUDFImpl for Sleep {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{AsArray, StringArray};
        use datafusion::arrow::datatypes::Float64Type;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let seconds = arrays[0].as_primitive::<Float64Type>();
        // Each row's wait in turn, as PostgreSQL calls it once per row.
        for s in seconds.iter().flatten() {
            if s > 0.0 {
                let wait =
                    std::time::Duration::try_from_secs_f64(s).unwrap_or(std::time::Duration::MAX);
                tokio::time::sleep(wait).await;
            }
        }
        let rows = args.number_rows.max(seconds.len());
        Ok(ColumnarValue::Array(Arc::new(
            (0..rows).map(|_| Some("")).collect::<StringArray>(),
        )))
    }
}
