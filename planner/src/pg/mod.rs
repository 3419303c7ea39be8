//! What PostgreSQL clients look for besides tables: the `pg_catalog` and
//! `information_schema` schemas, session parameters, and the system functions client
//! libraries call when they connect and introspect.
//!
//! `pg_catalog` comes from the `datafusion-pg-catalog` library, with `pg_settings` and
//! `pg_database` replaced by Henge's own; `information_schema` is Henge's
//! ([`information_schema`]), with PostgreSQL's type names. [`rewrite`] adapts the SQL
//! clients send for their catalog queries to what DataFusion plans.

pub mod arith;
pub mod arrays;
pub mod case;
pub mod character;
pub mod checked_sum;
pub mod datetime;
pub mod degrees;
pub mod display;
pub mod division;
pub mod encoding;
pub mod exact_aggregates;
pub mod extract;
pub mod float_cast;
pub mod formatting;
pub mod functions;
pub mod information_schema;
pub mod interval;
pub mod json;
pub mod jsonpath;
pub mod lateral;
pub mod math;
pub mod numbers;
pub mod numeric;
pub mod numeric_math;
pub mod operands;
pub mod ordered_set;
pub mod output;
pub mod random;
pub mod regex;
pub mod regression;
pub mod rewrite;
pub mod roles;
pub mod scale;
pub mod series;
pub mod settings;
pub mod similar;
pub mod srf;
pub mod strings;
pub mod subquery;
pub mod template;
pub mod types;
pub mod unify;
pub mod unscaled;
pub mod uuid;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, ListArray, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{CatalogProviderList, MemTable, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::TableType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use futures::TryStreamExt;
use henge_storage::TableDef;

use crate::session::CATALOG;
use crate::table::HengeTable;
pub use settings::Settings;

/// SQLSTATE codes of errors raised while planning or running catalog functions.
pub use henge_storage::sqlstate as code;
pub use henge_storage::SqlState;

/// The only role, owner of everything.
pub const USER: &str = "henge";
/// `pg_authid` OID of the bootstrap superuser in every PostgreSQL cluster.
pub const USER_OID: i32 = 10;

/// An error with the SQLSTATE the client should see; carried through DataFusion as an
/// external error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStateError {
    pub code: SqlState,
    pub message: String,
}

impl SqlStateError {
    pub fn new(code: impl Into<SqlState>, message: impl Into<String>) -> SqlStateError {
        SqlStateError {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SqlStateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqlStateError {}

impl From<SqlStateError> for DataFusionError {
    fn from(e: SqlStateError) -> DataFusionError {
        DataFusionError::External(Box::new(e))
    }
}

/// What `datafusion_pg_catalog::setup_pg_catalog` installs, over static tables decoded
/// once for every session: its own decodes them (megabytes of rows, most of a login's
/// time) for each session it is called for.
fn install_library(ctx: &SessionContext) -> Result<()> {
    use datafusion_pg_catalog::pg_catalog::{self as library, *};
    let tables = shared_static_tables()?;
    let schema = PgCatalogSchemaProvider::try_new(
        ctx.state().catalog_list().clone(),
        tables.clone(),
        EmptyContextProvider,
    )?;
    ctx.catalog(CATALOG)
        .ok_or_else(|| DataFusionError::Internal(format!("catalog {CATALOG} missing")))?
        .register_schema("pg_catalog", Arc::new(schema))?;
    let privileges = [
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "has_any_column_privilege",
    ]
    .map(has_privilege_udf::create_has_privilege_udf);
    let functions = [
        library::create_current_database_udf(CATALOG),
        library::create_current_schema_udf(),
        library::create_current_schemas_udf(),
        library::create_pg_get_userbyid_udf(),
    ]
    .into_iter()
    .chain(privileges)
    .chain([
        library::create_pg_table_is_visible(),
        format_type::create_format_type_udf(),
        library::create_session_user_udf(),
        pg_get_expr_udf::create_pg_get_expr_udf(),
        library::create_pg_get_partkeydef_udf(),
        library::create_pg_relation_is_publishable_udf(),
        library::create_pg_get_statisticsobjdef_columns_udf(),
        library::create_pg_encoding_to_char_udf(),
        library::create_pg_backend_pid_udf(),
        library::create_pg_relation_size_udf(),
        library::create_pg_total_relation_size_udf(),
        library::create_pg_stat_get_numscans(),
        library::create_pg_get_constraintdef(),
        library::create_pg_get_partition_ancestors_udf(),
        quote_ident_udf::create_quote_ident_udf(),
        quote_ident_udf::create_parse_ident_udf(),
        array_bounds_udf::create_array_upper_udf(),
        array_bounds_udf::create_array_lower_udf(),
    ]);
    for function in functions {
        ctx.register_udf(function);
    }
    ctx.register_udtf("pg_get_keywords", tables.pg_get_keywords.clone());
    // The library's names of oid types (`regclass` …), as its setup sets them.
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        *state = SessionStateBuilder::new_from_existing(state.clone())
            .with_type_planner(Arc::new(oid_type_planner::PgOidTypePlanner))
            .build();
    }
    generate_series_arg_coercion::CoerceIntArgsToBigInt::widen(ctx);
    Ok(())
}

/// The library's static pg_catalog tables (pg_type, pg_proc, pg_am …), decoded once.
fn shared_static_tables() -> Result<Arc<datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables>> {
    use datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables;
    static TABLES: std::sync::OnceLock<Arc<PgCatalogStaticTables>> = std::sync::OnceLock::new();
    if let Some(tables) = TABLES.get() {
        return Ok(tables.clone());
    }
    let tables = Arc::new(PgCatalogStaticTables::try_new()?);
    Ok(TABLES.get_or_init(|| tables).clone())
}

/// Takes a session's schemas out of its catalogs when the session ends. The catalog
/// tables read the session's catalog list, which holds them: without this the cycle kept
/// every ended session's context alive (the library's static pg_catalog tables alone are
/// megabytes), and memory grew with each login.
pub fn uninstall(ctx: &SessionContext) {
    for name in ctx.catalog_names() {
        if let Some(catalog) = ctx.catalog(&name) {
            for schema in catalog.schema_names() {
                let _ = catalog.deregister_schema(&schema, true);
            }
        }
    }
}

/// Adds `pg_catalog`, `information_schema` and PostgreSQL's system functions to a
/// session's context. `settings` are the session's parameters; `definitions` finds the
/// query of a view.
pub fn install(
    ctx: &SessionContext,
    settings: Arc<Settings>,
    definitions: Definitions,
    engine: Arc<henge_ingest::Engine>,
) -> Result<()> {
    // The library's role tables are replaced by Henge's own (see `roles`).
    install_library(ctx)?;
    // The catalog library sets a type planner of its own; ours hands it the types that
    // are not Henge's. Setting one rebuilds the session state, which registers its
    // functions again in no particular order, so this comes before Henge's functions
    // replace DataFusion's of the same names.
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        let mut builder = SessionStateBuilder::new_from_existing(state.clone());
        let others = builder.type_planner().clone();
        *state = builder
            .with_type_planner(Arc::new(types::PgTypes {
                others,
                settings: settings.clone(),
            }))
            .build();
    }
    let relations = Relations::default();
    let catalog = ctx
        .catalog(CATALOG)
        .ok_or_else(|| DataFusionError::Internal(format!("catalog {CATALOG} missing")))?;
    let library = catalog
        .schema("pg_catalog")
        .ok_or_else(|| DataFusionError::Internal("pg_catalog missing".into()))?;
    catalog.register_schema(
        "pg_catalog",
        Arc::new(PgCatalog {
            library,
            settings: settings.clone(),
            catalogs: ctx.state().catalog_list().clone(),
            relations: relations.clone(),
            engine: engine.clone(),
        }),
    )?;
    catalog.register_schema(
        information_schema::SCHEMA,
        Arc::new(information_schema::InformationSchema::new(
            ctx.state().catalog_list().clone(),
            engine.clone(),
            settings.clone(),
        )),
    )?;
    roles::register(ctx, engine.clone(), settings.clone(), relations.clone());
    functions::register(ctx, settings.clone(), relations, definitions, engine);
    similar::register(ctx);
    interval::register(ctx);
    json::register(ctx);
    jsonpath::register(ctx);
    uuid::register(ctx);
    extract::register(ctx);
    character::register(ctx);
    strings::register(ctx);
    case::register(ctx);
    math::register(ctx);
    degrees::register(ctx);
    scale::register(ctx);
    formatting::register(ctx);
    datetime::register(ctx, settings.clone());
    series::register(ctx, settings.clone());
    srf::register(ctx);
    regex::register(ctx);
    ordered_set::register(ctx);
    checked_sum::register(ctx);
    arrays::register(ctx);
    encoding::register(ctx);
    exact_aggregates::register(ctx);
    regression::register(ctx);
    random::register(ctx);
    rewrite::register(ctx);
    crate::druid::register(ctx);
    crate::druid::register_aggregates(ctx);
    // PostgreSQL's `every` is SQL's name for `bool_and`.
    ctx.register_udaf(
        datafusion::functions_aggregate::bool_and_or::bool_and_udaf()
            .as_ref()
            .clone()
            .with_aliases(["every"]),
    );

    Ok(())
}

/// The library's `pg_catalog`, with Henge's own `pg_settings` and `pg_database`, and
/// Henge's column types in `pg_attribute`.
#[derive(Debug)]
struct PgCatalog {
    library: Arc<dyn SchemaProvider>,
    settings: Arc<Settings>,
    catalogs: Arc<dyn CatalogProviderList>,
    /// The schema and name of each relation OID `pg_class` last listed, for
    /// `pg_table_is_visible` and `::regclass::text`.
    relations: Relations,
    /// Where the roles are.
    engine: Arc<henge_ingest::Engine>,
}

/// Runs a function's `kernel` on its arguments as arrays: all scalars in, a scalar out.
pub(crate) fn on_arrays(
    args: &datafusion::logical_expr::ScalarFunctionArgs,
    kernel: impl FnOnce(
        &[datafusion::arrow::array::ArrayRef],
    ) -> Result<datafusion::arrow::array::ArrayRef>,
) -> Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::logical_expr::ColumnarValue;
    let scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = ColumnarValue::values_to_arrays(&args.args)?;
    let out = kernel(&arrays)?;
    Ok(match scalar {
        true => ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?),
        false => ColumnarValue::Array(out),
    })
}

/// A text argument's value; `None` for NULL (or a value that is not text).
pub(crate) fn text_arg(value: &datafusion::scalar::ScalarValue) -> Option<&str> {
    use datafusion::scalar::ScalarValue;
    match value {
        ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => s.as_deref(),
        _ => None,
    }
}

/// An integer argument's value, of any integer type; `None` for NULL.
pub(crate) fn integer_arg(value: &datafusion::scalar::ScalarValue) -> Option<i64> {
    match value.cast_to(&DataType::Int64) {
        Ok(datafusion::scalar::ScalarValue::Int64(n)) => n,
        _ => None,
    }
}

/// PostgreSQL's error for a call no function of that name takes (42883).
/// The argument types `udaf` (DataFusion's own aggregate, which Henge's wraps) coerces
/// `arg_types` to.
pub(crate) fn inner_coercion(
    udaf: &datafusion::logical_expr::AggregateUDF,
    arg_types: &[DataType],
) -> datafusion::error::Result<Vec<DataType>> {
    let fields: Vec<datafusion::arrow::datatypes::FieldRef> = arg_types
        .iter()
        .map(|t| {
            std::sync::Arc::new(datafusion::arrow::datatypes::Field::new(
                "arg",
                t.clone(),
                true,
            ))
        })
        .collect();
    let coerced =
        datafusion::logical_expr::type_coercion::functions::fields_with_udf(&fields, udaf)?;
    Ok(coerced.iter().map(|f| f.data_type().clone()).collect())
}

pub(crate) fn no_such_function(name: &str, arg_types: &[DataType]) -> DataFusionError {
    let types = arg_types
        .iter()
        .map(|t| types::of_arrow(t).data_type)
        .collect::<Vec<_>>()
        .join(", ");
    SqlStateError::new("42883", format!("function {name}({types}) does not exist")).into()
}

/// The query of the view of a schema and name (`None` for anything else).
pub type Definitions = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

/// Relation OIDs, with the schema each is in and its name.
pub type Relations = Arc<std::sync::Mutex<HashMap<i32, (String, String)>>>;

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.library.table_names();
        names.extend(roles::EXTRA_TABLES.iter().map(|n| n.to_string()));
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match name.to_ascii_lowercase().as_str() {
            "pg_settings" => Ok(Some(pg_settings(&self.settings)?)),
            "pg_database" => Ok(Some(pg_database()?)),
            "pg_views" => self.views().await.map(Some),
            "pg_attribute" => self.computed("pg_attribute").await.map(Some),
            "pg_class" => self.computed("pg_class").await.map(Some),
            "pg_tables" => self.computed("pg_tables").await.map(Some),
            lower => match roles::catalog_table(lower, &self.engine.access()) {
                Some(table) => table.map(Some),
                None => self.library.table(name).await,
            },
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.library.table_exist(name) || roles::EXTRA_TABLES.contains(&name)
    }
}

impl PgCatalog {
    /// `pg_views`: every view of the database's schemas, with its query.
    async fn views(&self) -> Result<Arc<dyn TableProvider>> {
        let (mut schemas, mut names, mut definitions) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(catalog) = self.catalogs.catalog(CATALOG) {
            let mut schema_names = catalog.schema_names();
            schema_names.sort();
            for schema_name in schema_names {
                if schema_name == "pg_catalog" || schema_name == information_schema::SCHEMA {
                    continue;
                }
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                let mut table_names = schema.table_names();
                table_names.sort();
                for name in table_names {
                    // A view that no longer plans is left out, as information_schema does.
                    let Ok(Some(table)) = schema.table(&name).await else {
                        continue;
                    };
                    // The system tables are views without a query: not a user's views.
                    let definition = table.get_table_definition();
                    if table.table_type() != TableType::View || definition.is_none() {
                        continue;
                    }
                    schemas.push(schema_name.clone());
                    definitions.push(definition.map(str::to_owned));
                    names.push(name);
                }
            }
        }
        let owners: Vec<String> = schemas
            .iter()
            .zip(&names)
            .map(|(schema, name)| self.owner_name(schema, name))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("schemaname", DataType::Utf8, true),
            Field::new("viewname", DataType::Utf8, true),
            Field::new("viewowner", DataType::Utf8, true),
            Field::new("definition", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(schemas)),
                Arc::new(StringArray::from(names)),
                Arc::new(StringArray::from(owners)),
                Arc::new(StringArray::from(definitions)),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }

    /// `pg_attribute` or `pg_class`, computed when scanned: the library's `pg_class` lists
    /// every table's columns through this schema while it holds its OID lock, so nothing
    /// may be read here until then.
    async fn computed(&self, name: &'static str) -> Result<Arc<dyn TableProvider>> {
        let library = self
            .library
            .table(name)
            .await?
            .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog.{name} missing")))?;
        let stream = Computed {
            table: name,
            schema: library.schema(),
            catalog: Arc::new(PgCatalog {
                library: self.library.clone(),
                settings: self.settings.clone(),
                catalogs: self.catalogs.clone(),
                relations: self.relations.clone(),
                engine: self.engine.clone(),
            }),
        };
        Ok(Arc::new(StreamingTable::try_new(
            stream.schema.clone(),
            vec![Arc::new(stream)],
        )?))
    }

    /// The library's `pg_class`, noting each relation's schema and name, with each
    /// relation's owner (the bootstrap superuser's for the system's).
    async fn classes(&self) -> Result<Vec<RecordBatch>> {
        let (classes, names) = self.relation_names().await?;
        let owners = classes
            .iter()
            .map(|batch| {
                let oids = int32(batch, "oid")?;
                let owners: Int32Array = (0..batch.num_rows())
                    .map(|row| {
                        let name = names.get(&oids.value(row));
                        Some(name.map_or(USER_OID, |(schema, name)| self.owner_oid(schema, name)))
                    })
                    .collect();
                let mut columns = batch.columns().to_vec();
                columns[batch.schema().index_of("relowner")?] = Arc::new(owners);
                Ok(RecordBatch::try_new(batch.schema(), columns)?)
            })
            .collect::<Result<Vec<_>>>()?;
        *self.relations.lock().unwrap_or_else(|e| e.into_inner()) = names;
        Ok(owners)
    }

    /// The OID of the role owning a relation (the bootstrap superuser for the system's).
    fn owner_oid(&self, schema: &str, name: &str) -> i32 {
        if schema != crate::SCHEMA {
            return USER_OID;
        }
        let id = self
            .engine
            .table(name)
            .map(|t| t.def.id)
            .or_else(|| self.engine.view(name).map(|v| v.id));
        id.map_or(USER_OID, |id| {
            self.engine.read_access(|a| a.owner(id)) as i32
        })
    }

    /// The name of the role owning a relation.
    fn owner_name(&self, schema: &str, name: &str) -> String {
        let oid = self.owner_oid(schema, name) as u32;
        self.engine
            .read_access(|a| a.role(oid).map(|r| r.name.clone()))
            .unwrap_or_else(|| USER.to_owned())
    }

    /// The library's `pg_tables`, with each table's owner.
    async fn tables_with_owners(&self) -> Result<Vec<RecordBatch>> {
        self.read("pg_tables")
            .await?
            .into_iter()
            .map(|batch| {
                let schemas = strings(&batch, "schemaname")?;
                let names = strings(&batch, "tablename")?;
                let owners: StringArray = (0..batch.num_rows())
                    .map(|row| Some(self.owner_name(schemas.value(row), names.value(row))))
                    .collect();
                let mut columns = batch.columns().to_vec();
                columns[batch.schema().index_of("tableowner")?] = Arc::new(owners);
                Ok(RecordBatch::try_new(batch.schema(), columns)?)
            })
            .collect()
    }

    /// The library's `pg_class`, and the schema and name of each relation in it.
    async fn relation_names(&self) -> Result<(Vec<RecordBatch>, HashMap<i32, (String, String)>)> {
        let mut namespaces: HashMap<i32, String> = HashMap::new();
        for batch in self.read("pg_namespace").await? {
            let oid = int32(&batch, "oid")?;
            let name = strings(&batch, "nspname")?;
            for row in 0..batch.num_rows() {
                namespaces.insert(oid.value(row), name.value(row).to_owned());
            }
        }
        let classes = self.read("pg_class").await?;
        let mut names = HashMap::new();
        for batch in &classes {
            let oid = int32(batch, "oid")?;
            let namespace = int32(batch, "relnamespace")?;
            let name = strings(batch, "relname")?;
            for row in 0..batch.num_rows() {
                if let Some(schema) = namespaces.get(&namespace.value(row)) {
                    names.insert(oid.value(row), (schema.clone(), name.value(row).to_owned()));
                }
            }
        }
        Ok((classes, names))
    }

    async fn read(&self, name: &str) -> Result<Vec<RecordBatch>> {
        let table = self
            .library
            .table(name)
            .await?
            .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog.{name} missing")))?;
        SessionContext::new().read_table(table)?.collect().await
    }

    /// The library's `pg_attribute`, which knows only Arrow types, with each Henge
    /// column's declared type: `varchar(n)` and `numeric(p,s)` with their modifiers, and
    /// NOT NULL.
    async fn attributes(&self) -> Result<Vec<RecordBatch>> {
        let attributes = self.read("pg_attribute").await?;
        let (_, relations) = self.relation_names().await?;
        let catalog = self.catalogs.catalog(CATALOG);
        let mut defs: HashMap<i32, Option<TableDef>> = HashMap::new();
        let mut patched = Vec::with_capacity(attributes.len());
        for batch in attributes {
            let relid = int32(&batch, "attrelid")?;
            let names = strings(&batch, "attname")?;
            let mut typid = int32(&batch, "atttypid")?.iter().collect::<Vec<_>>();
            let mut typmod = int32(&batch, "atttypmod")?.iter().collect::<Vec<_>>();
            let mut notnull = batch
                .column_by_name("attnotnull")
                .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
                .ok_or_else(|| DataFusionError::Internal("pg_attribute.attnotnull".into()))?
                .iter()
                .collect::<Vec<_>>();
            for row in 0..batch.num_rows() {
                let rel = relid.value(row);
                if let std::collections::hash_map::Entry::Vacant(slot) = defs.entry(rel) {
                    let mut def = None;
                    if let (Some((schema, table)), Some(catalog)) = (relations.get(&rel), &catalog)
                    {
                        if let Some(provider) = catalog.schema(schema) {
                            if let Some(t) = provider.table(table).await? {
                                def = t.downcast_ref::<HengeTable>().map(|h| h.def().clone());
                            }
                        }
                    }
                    slot.insert(def);
                }
                let Some(Some(def)) = defs.get(&rel) else {
                    continue;
                };
                let Some(column) = def.columns.iter().find(|c| c.name == names.value(row)) else {
                    continue;
                };
                let (oid, modifier) = types::pg_attribute_type(&column.ty);
                typid[row] = Some(oid);
                typmod[row] = Some(modifier);
                notnull[row] = Some(!column.nullable);
            }
            let mut columns = batch.columns().to_vec();
            let schema = batch.schema();
            for (name, array) in [
                ("atttypid", Arc::new(Int32Array::from(typid)) as ArrayRef),
                ("atttypmod", Arc::new(Int32Array::from(typmod))),
                ("attnotnull", Arc::new(BooleanArray::from(notnull))),
            ] {
                let i = schema.index_of(name)?;
                columns[i] = array;
            }
            patched.push(RecordBatch::try_new(schema, columns)?);
        }
        Ok(patched)
    }
}

/// The scan of `pg_attribute` or `pg_class`.
#[derive(Debug)]
struct Computed {
    table: &'static str,
    schema: SchemaRef,
    catalog: Arc<PgCatalog>,
}

impl PartitionStream for Computed {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let catalog = self.catalog.clone();
        let table = self.table;
        let batches = futures::stream::once(async move {
            match table {
                "pg_class" => catalog.classes().await,
                "pg_tables" => catalog.tables_with_owners().await,
                _ => catalog.attributes().await,
            }
        })
        .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
        .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

fn int32<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int32Array> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog column {name}")))
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog column {name}")))
}

fn text(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

/// `pg_settings`: the session's parameters, as SHOW ALL lists them.
fn pg_settings(settings: &Settings) -> Result<Arc<dyn TableProvider>> {
    let all = settings.all();
    let names = [
        "name",
        "setting",
        "unit",
        "category",
        "short_desc",
        "extra_desc",
        "context",
        "vartype",
        "source",
        "min_val",
        "max_val",
        "enumvals",
        "boot_val",
        "reset_val",
        "sourcefile",
    ];
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    for (name, value, description, fixed) in all {
        let row = [
            Some(name.to_owned()),
            Some(value),
            None,
            None,
            Some(description.to_owned()),
            None,
            Some(if fixed { "internal" } else { "user" }.to_owned()),
            Some("string".to_owned()),
            Some("default".to_owned()),
            None,
            None,
            None,
            None,
            None,
            None,
        ];
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value);
        }
    }
    let rows = columns.first().map_or(0, Vec::len);
    let mut fields: Vec<Field> = names
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, true))
        .collect();
    let mut arrays: Vec<ArrayRef> = columns.into_iter().map(text).collect();
    fields.push(Field::new("sourceline", DataType::Int32, true));
    arrays.push(Arc::new(Int32Array::from(vec![None; rows])));
    fields.push(Field::new("pending_restart", DataType::Boolean, false));
    arrays.push(Arc::new(BooleanArray::from(vec![false; rows])));
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// `pg_database`: the one database, `henge`.
fn pg_database() -> Result<Arc<dyn TableProvider>> {
    let int = |v: i32| Arc::new(Int32Array::from(vec![v])) as ArrayRef;
    let string = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let acl_item = Arc::new(Field::new("item", DataType::Utf8, true));
    let schema = Arc::new(Schema::new(vec![
        Field::new("oid", DataType::Int32, false),
        Field::new("datname", DataType::Utf8, false),
        Field::new("datdba", DataType::Int32, false),
        Field::new("encoding", DataType::Int32, false),
        Field::new("datlocprovider", DataType::Utf8, false),
        Field::new("datistemplate", DataType::Boolean, false),
        Field::new("datallowconn", DataType::Boolean, false),
        Field::new("datconnlimit", DataType::Int32, false),
        Field::new("datfrozenxid", DataType::Int32, false),
        Field::new("datminmxid", DataType::Int32, false),
        Field::new("dattablespace", DataType::Int32, false),
        Field::new("datcollate", DataType::Utf8, false),
        Field::new("datctype", DataType::Utf8, false),
        Field::new("daticulocale", DataType::Utf8, true),
        Field::new("daticurules", DataType::Utf8, true),
        Field::new("datcollversion", DataType::Utf8, true),
        Field::new("datacl", DataType::List(acl_item.clone()), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            int(16384),
            string(CATALOG),
            int(USER_OID),
            int(6), // UTF8
            string("c"),
            Arc::new(BooleanArray::from(vec![false])),
            Arc::new(BooleanArray::from(vec![true])),
            int(-1),
            int(0),
            int(1),
            int(1663), // pg_default
            string("C"),
            string("C"),
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(ListArray::new_null(acl_item, 1)),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
