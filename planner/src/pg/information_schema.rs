//! `information_schema` as PostgreSQL has it: `schemata`, `tables`, `columns` and `views`
//! with PostgreSQL's type names (`bigint`, `timestamp without time zone` …), plus
//! DataFusion's own `df_settings`, `routines` and `parameters` (which its SHOW reads).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemTable, SchemaProvider, TableProvider,
};
use datafusion::error::Result;
use datafusion::logical_expr::TableType;

use super::types::{of_column, of_field, TypeInfo};
use super::USER;
use crate::table::HengeTable;

/// The schema's name.
pub const SCHEMA: &str = "information_schema";

/// Tables Henge builds itself; the rest come from DataFusion.
const OWN: [&str; 6] = [
    "schemata",
    "tables",
    "columns",
    "views",
    "table_privileges",
    "role_table_grants",
];
const DATAFUSION: [&str; 3] = ["df_settings", "routines", "parameters"];

/// Column names and whether each is an integer (`cardinal_number`); the rest are text.
const SCHEMATA: &[(&str, bool)] = &[
    ("catalog_name", false),
    ("schema_name", false),
    ("schema_owner", false),
    ("default_character_set_catalog", false),
    ("default_character_set_schema", false),
    ("default_character_set_name", false),
    ("sql_path", false),
];

const TABLES: &[(&str, bool)] = &[
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("table_type", false),
    ("self_referencing_column_name", false),
    ("reference_generation", false),
    ("user_defined_type_catalog", false),
    ("user_defined_type_schema", false),
    ("user_defined_type_name", false),
    ("is_insertable_into", false),
    ("is_typed", false),
    ("commit_action", false),
];

const VIEWS: &[(&str, bool)] = &[
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("view_definition", false),
    ("check_option", false),
    ("is_updatable", false),
    ("is_insertable_into", false),
    ("is_trigger_updatable", false),
    ("is_trigger_deletable", false),
    ("is_trigger_insertable_into", false),
];

const COLUMNS: &[(&str, bool)] = &[
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("column_name", false),
    ("ordinal_position", true),
    ("column_default", false),
    ("is_nullable", false),
    ("data_type", false),
    ("character_maximum_length", true),
    ("character_octet_length", true),
    ("numeric_precision", true),
    ("numeric_precision_radix", true),
    ("numeric_scale", true),
    ("datetime_precision", true),
    ("interval_type", false),
    ("interval_precision", true),
    ("character_set_catalog", false),
    ("character_set_schema", false),
    ("character_set_name", false),
    ("collation_catalog", false),
    ("collation_schema", false),
    ("collation_name", false),
    ("domain_catalog", false),
    ("domain_schema", false),
    ("domain_name", false),
    ("udt_catalog", false),
    ("udt_schema", false),
    ("udt_name", false),
    ("scope_catalog", false),
    ("scope_schema", false),
    ("scope_name", false),
    ("maximum_cardinality", true),
    ("dtd_identifier", false),
    ("is_self_referencing", false),
    ("is_identity", false),
    ("identity_generation", false),
    ("identity_start", false),
    ("identity_increment", false),
    ("identity_maximum", false),
    ("identity_minimum", false),
    ("identity_cycle", false),
    ("is_generated", false),
    ("generation_expression", false),
    ("is_updatable", false),
];

const TABLE_PRIVILEGES: &[(&str, bool)] = &[
    ("grantor", false),
    ("grantee", false),
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("privilege_type", false),
    ("is_grantable", false),
    ("with_hierarchy", false),
];

fn layout(name: &str) -> Option<&'static [(&'static str, bool)]> {
    match name {
        "table_privileges" | "role_table_grants" => Some(TABLE_PRIVILEGES),
        "schemata" => Some(SCHEMATA),
        "tables" => Some(TABLES),
        "columns" => Some(COLUMNS),
        "views" => Some(VIEWS),
        _ => None,
    }
}

fn arrow_schema(layout: &[(&str, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        layout
            .iter()
            .map(|(name, int)| {
                let ty = if *int {
                    DataType::Int32
                } else {
                    DataType::Utf8
                };
                Field::new(*name, ty, true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// A value of a row being built.
#[derive(Clone)]
enum Cell {
    Text(Option<String>),
    Int(Option<i32>),
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(Some(s.into()))
}

const NULL: Cell = Cell::Text(None);

/// Rows of one table, column by column.
struct Rows {
    layout: &'static [(&'static str, bool)],
    cells: Vec<Vec<Cell>>,
}

impl Rows {
    fn new(layout: &'static [(&'static str, bool)]) -> Rows {
        Rows {
            layout,
            cells: vec![Vec::new(); layout.len()],
        }
    }

    /// Adds a row given by column name; columns not named are NULL.
    fn push(&mut self, values: &[(&str, Cell)]) {
        for (i, (name, _)) in self.layout.iter().enumerate() {
            let value = values
                .iter()
                .find(|(n, _)| n == name)
                .map_or(NULL, |(_, v)| v.clone());
            self.cells[i].push(value);
        }
    }

    fn into_table(self) -> Result<Arc<dyn TableProvider>> {
        let schema = arrow_schema(self.layout);
        let arrays = self
            .cells
            .into_iter()
            .zip(self.layout)
            .map(|(cells, (_, int))| -> ArrayRef {
                if *int {
                    Arc::new(Int32Array::from_iter(cells.into_iter().map(|c| match c {
                        Cell::Int(v) => v,
                        Cell::Text(_) => None,
                    })))
                } else {
                    Arc::new(StringArray::from_iter(cells.into_iter().map(|c| match c {
                        Cell::Text(v) => v,
                        Cell::Int(_) => None,
                    })))
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// One table of some schema, as the catalogs see it.
struct Relation {
    catalog: String,
    schema: String,
    name: String,
    /// Name, type, nullability and DEFAULT (as SQL) of each column.
    columns: Vec<(String, TypeInfo, bool, Option<String>)>,
    kind: Kind,
    /// A view's query.
    definition: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Henge table: rows can be inserted.
    Table,
    /// A read-only catalog or system table.
    System,
    /// A view: one of `information_schema`'s own, or one a user created.
    View,
}

/// Henge's `information_schema`.
#[derive(Debug)]
pub struct InformationSchema {
    catalogs: Arc<dyn CatalogProviderList>,
    datafusion: InformationSchemaProvider,
    /// Roles and grants, for the privilege views.
    engine: Arc<henge_ingest::Engine>,
    /// Who is asking: the privilege views show what concerns the current role.
    settings: Arc<super::Settings>,
}

impl InformationSchema {
    pub fn new(
        catalogs: Arc<dyn CatalogProviderList>,
        engine: Arc<henge_ingest::Engine>,
        settings: Arc<super::Settings>,
    ) -> InformationSchema {
        InformationSchema {
            datafusion: InformationSchemaProvider::new(catalogs.clone()),
            catalogs,
            engine,
            settings,
        }
    }

    /// `table_privileges`: the privileges on the tables and views of schema public that
    /// the current role (or a role whose privileges it inherits) granted or holds, or that
    /// PUBLIC holds; an owner holds every privilege, granted by itself, as PostgreSQL lists
    /// them. `role_table_grants` leaves out those only PUBLIC's.
    fn table_privileges(&self, name: &str) -> Result<Arc<dyn TableProvider>> {
        use henge_storage::access::{Privileges, PUBLIC};
        let access = self.engine.access();
        let me = self.settings.identity().current().0;
        let enabled = access.closure(me, true);
        let role_name = |oid: u32| -> String {
            if oid == PUBLIC {
                "PUBLIC".to_owned()
            } else {
                access
                    .role(oid)
                    .map_or_else(|| oid.to_string(), |r| r.name.clone())
            }
        };
        let mut relations: Vec<(u64, String)> = self
            .engine
            .tables()
            .into_iter()
            .map(|t| (t.def.id, t.def.name.clone()))
            .chain(self.engine.views().into_iter().map(|v| (v.id, v.name)))
            .collect();
        relations.sort_by(|a, b| a.1.cmp(&b.1));
        let mut rows = Rows::new(TABLE_PRIVILEGES);
        for (id, table) in relations {
            let owner = access.owner(id);
            let mut grants = vec![(owner, owner, Privileges::ALL, Privileges::ALL)];
            grants.extend(
                access
                    .grants
                    .iter()
                    .filter(|g| g.relation == id)
                    .map(|g| (g.grantor, g.grantee, g.privileges, g.grantable)),
            );
            for (grantor, grantee, privileges, grantable) in grants {
                let visible = enabled.contains(&grantor)
                    || enabled.contains(&grantee)
                    || (grantee == PUBLIC && name == "table_privileges");
                if !visible {
                    continue;
                }
                for (privilege, privilege_name, _) in Privileges::NAMED {
                    if !privileges.contains(privilege) {
                        continue;
                    }
                    let yes_no = |b: bool| text(if b { "YES" } else { "NO" });
                    rows.push(&[
                        ("grantor", text(role_name(grantor))),
                        ("grantee", text(role_name(grantee))),
                        ("table_catalog", text(crate::CATALOG)),
                        ("table_schema", text(crate::SCHEMA)),
                        ("table_name", text(table.as_str())),
                        ("privilege_type", text(privilege_name)),
                        ("is_grantable", yes_no(grantable.contains(privilege))),
                        ("with_hierarchy", yes_no(privilege == Privileges::SELECT)),
                    ]);
                }
            }
        }
        rows.into_table()
    }

    /// Every catalog with its schemas, in name order.
    fn schemas(&self) -> Vec<(String, Arc<dyn CatalogProvider>, Vec<String>)> {
        let mut names = self.catalogs.catalog_names();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let catalog = self.catalogs.catalog(&name)?;
                let mut schemas = catalog.schema_names();
                schemas.sort();
                Some((name, catalog, schemas))
            })
            .collect()
    }

    /// Every table of every schema, with its columns.
    async fn relations(&self) -> Result<Vec<Relation>> {
        let mut out = Vec::new();
        for (catalog_name, catalog, schemas) in self.schemas() {
            for schema_name in schemas {
                let mut names = if schema_name == SCHEMA {
                    OWN.iter()
                        .chain(&DATAFUSION)
                        .map(|s| s.to_string())
                        .collect()
                } else {
                    catalog
                        .schema(&schema_name)
                        .map(|s| s.table_names())
                        .unwrap_or_default()
                };
                names.sort();
                for name in names {
                    let relation = if schema_name == SCHEMA {
                        let fields = match layout(&name) {
                            Some(l) => arrow_schema(l),
                            None => match self.datafusion.table(&name).await? {
                                Some(t) => t.schema(),
                                None => continue,
                            },
                        };
                        Relation {
                            catalog: catalog_name.clone(),
                            schema: schema_name.clone(),
                            columns: fields
                                .fields()
                                .iter()
                                .map(|f| (f.name().clone(), of_field(f), true, None))
                                .collect(),
                            name,
                            kind: Kind::View,
                            definition: None,
                        }
                    } else {
                        let Some(schema) = catalog.schema(&schema_name) else {
                            continue;
                        };
                        let table = match schema.table(&name).await {
                            Ok(Some(table)) => table,
                            Ok(None) => continue,
                            // A view that no longer plans is left out rather than failing
                            // every catalog query a client makes.
                            Err(e) => {
                                tracing::warn!(view = %name, error = %e, "view does not plan");
                                continue;
                            }
                        };
                        let definition = table.get_table_definition().map(str::to_owned);
                        // A user's view has its query; the system tables are views too,
                        // but listed as before, as tables.
                        let view = table.table_type() == TableType::View && definition.is_some();
                        let (columns, kind) = match table.downcast_ref::<HengeTable>() {
                            Some(henge) => (
                                henge
                                    .def()
                                    .columns
                                    .iter()
                                    .map(|c| {
                                        let default = c.default.as_ref().map(|d| {
                                            format!(
                                                "'{}'::{}",
                                                d.replace('\'', "''"),
                                                c.ty.sql_name()
                                            )
                                        });
                                        (c.name.clone(), of_column(&c.ty), c.nullable, default)
                                    })
                                    .collect(),
                                Kind::Table,
                            ),
                            None => (
                                table
                                    .schema()
                                    .fields()
                                    .iter()
                                    .map(|f| (f.name().clone(), of_field(f), f.is_nullable(), None))
                                    .collect(),
                                if view { Kind::View } else { Kind::System },
                            ),
                        };
                        Relation {
                            catalog: catalog_name.clone(),
                            schema: schema_name.clone(),
                            name,
                            columns,
                            kind,
                            definition,
                        }
                    };
                    out.push(relation);
                }
            }
        }
        Ok(out)
    }

    fn schemata(&self) -> Result<Arc<dyn TableProvider>> {
        let mut rows = Rows::new(SCHEMATA);
        for (catalog_name, _, schemas) in self.schemas() {
            for schema in schemas {
                rows.push(&[
                    ("catalog_name", text(&catalog_name)),
                    ("schema_name", text(schema)),
                    ("schema_owner", text(USER)),
                ]);
            }
        }
        rows.into_table()
    }

    async fn tables(&self) -> Result<Arc<dyn TableProvider>> {
        let mut rows = Rows::new(TABLES);
        for r in self.relations().await? {
            let table_type = if r.kind == Kind::View {
                "VIEW"
            } else {
                "BASE TABLE"
            };
            let insertable = if r.kind == Kind::Table { "YES" } else { "NO" };
            rows.push(&[
                ("table_catalog", text(r.catalog)),
                ("table_schema", text(r.schema)),
                ("table_name", text(r.name)),
                ("table_type", text(table_type)),
                ("is_insertable_into", text(insertable)),
                ("is_typed", text("NO")),
            ]);
        }
        rows.into_table()
    }

    async fn views(&self) -> Result<Arc<dyn TableProvider>> {
        let mut rows = Rows::new(VIEWS);
        for r in self.relations().await? {
            if r.kind != Kind::View {
                continue;
            }
            rows.push(&[
                ("table_catalog", text(r.catalog)),
                ("table_schema", text(r.schema)),
                ("table_name", text(r.name)),
                ("view_definition", Cell::Text(r.definition)),
                ("check_option", text("NONE")),
                ("is_updatable", text("NO")),
                ("is_insertable_into", text("NO")),
                ("is_trigger_updatable", text("NO")),
                ("is_trigger_deletable", text("NO")),
                ("is_trigger_insertable_into", text("NO")),
            ]);
        }
        rows.into_table()
    }

    async fn columns(&self) -> Result<Arc<dyn TableProvider>> {
        let mut rows = Rows::new(COLUMNS);
        for r in self.relations().await? {
            let updatable = if r.kind == Kind::Table { "YES" } else { "NO" };
            for (i, (name, ty, nullable, default)) in r.columns.into_iter().enumerate() {
                let position = i as i32 + 1;
                let octets = ty.character_maximum_length.map(|n| n.saturating_mul(4));
                let octets = if ty.data_type == "text" {
                    Some(1_073_741_824)
                } else {
                    octets
                };
                rows.push(&[
                    ("table_catalog", text(&r.catalog)),
                    ("table_schema", text(&r.schema)),
                    ("table_name", text(&r.name)),
                    ("column_name", text(name)),
                    ("ordinal_position", Cell::Int(Some(position))),
                    ("column_default", Cell::Text(default)),
                    ("is_nullable", text(if nullable { "YES" } else { "NO" })),
                    ("data_type", text(&ty.data_type)),
                    (
                        "character_maximum_length",
                        Cell::Int(ty.character_maximum_length),
                    ),
                    ("character_octet_length", Cell::Int(octets)),
                    ("numeric_precision", Cell::Int(ty.numeric_precision)),
                    (
                        "numeric_precision_radix",
                        Cell::Int(ty.numeric_precision_radix),
                    ),
                    ("numeric_scale", Cell::Int(ty.numeric_scale)),
                    ("datetime_precision", Cell::Int(ty.datetime_precision)),
                    ("udt_catalog", text(&r.catalog)),
                    ("udt_schema", text("pg_catalog")),
                    ("udt_name", text(&ty.udt_name)),
                    ("dtd_identifier", text(position.to_string())),
                    ("is_self_referencing", text("NO")),
                    ("is_identity", text("NO")),
                    ("is_generated", text("NEVER")),
                    ("is_updatable", text(updatable)),
                ]);
            }
        }
        rows.into_table()
    }
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        OWN.iter()
            .chain(&DATAFUSION)
            .map(|s| s.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match name.to_ascii_lowercase().as_str() {
            "schemata" => self.schemata().map(Some),
            "tables" => self.tables().await.map(Some),
            "columns" => self.columns().await.map(Some),
            "views" => self.views().await.map(Some),
            n @ ("table_privileges" | "role_table_grants") => self.table_privileges(n).map(Some),
            other if DATAFUSION.contains(&other) => self.datafusion.table(other).await,
            _ => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        OWN.contains(&name.as_str()) || DATAFUSION.contains(&name.as_str())
    }
}
