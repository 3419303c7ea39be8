//! PostgreSQL's names for the types of result columns, for catalogs that report them.

use datafusion::arrow::datatypes::{DataType, Field};
use henge_storage::schema::{EXTENSION_NAME_KEY, JSONB_EXTENSION, JSON_EXTENSION, UUID_EXTENSION};
use henge_storage::ColumnType;

/// How `information_schema.columns` describes a column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    /// SQL's name (`bigint`, `timestamp without time zone`, `ARRAY` …).
    pub data_type: String,
    /// The type's name in `pg_type` (`int8`, `timestamp`, `_text` …).
    pub udt_name: String,
    pub character_maximum_length: Option<i32>,
    pub numeric_precision: Option<i32>,
    pub numeric_precision_radix: Option<i32>,
    pub numeric_scale: Option<i32>,
    pub datetime_precision: Option<i32>,
}

impl TypeInfo {
    fn named(data_type: &str, udt_name: &str) -> TypeInfo {
        TypeInfo {
            data_type: data_type.to_owned(),
            udt_name: udt_name.to_owned(),
            character_maximum_length: None,
            numeric_precision: None,
            numeric_precision_radix: None,
            numeric_scale: None,
            datetime_precision: None,
        }
    }

    fn number(data_type: &str, udt_name: &str, precision: i32, radix: i32) -> TypeInfo {
        TypeInfo {
            numeric_precision: Some(precision),
            numeric_precision_radix: Some(radix),
            // Integers have scale 0; floating-point types none.
            numeric_scale: (radix == 10 || udt_name.starts_with("int")).then_some(0),
            ..TypeInfo::named(data_type, udt_name)
        }
    }

    fn timestamp(data_type: &str, udt_name: &str) -> TypeInfo {
        TypeInfo {
            datetime_precision: Some(6),
            ..TypeInfo::named(data_type, udt_name)
        }
    }
}

/// A Henge column's type, with its declared length or precision.
pub fn of_column(ty: &ColumnType) -> TypeInfo {
    match ty {
        ColumnType::Varchar { max_len } => TypeInfo {
            character_maximum_length: max_len.map(|n| n as i32),
            ..TypeInfo::named("character varying", "varchar")
        },
        ColumnType::Json => TypeInfo::named("json", "json"),
        ColumnType::Jsonb => TypeInfo::named("jsonb", "jsonb"),
        ColumnType::Uuid => TypeInfo::named("uuid", "uuid"),
        other => of_arrow(&other.arrow_type()),
    }
}

/// A Henge column's `pg_type` OID and type modifier, as `pg_attribute` records them
/// (`varchar(n)`: n + 4; `numeric(p,s)`: (p << 16 | s) + 4; otherwise -1).
pub fn pg_attribute_type(ty: &ColumnType) -> (i32, i32) {
    match ty {
        ColumnType::Boolean => (16, -1),
        ColumnType::SmallInt => (21, -1),
        ColumnType::Integer => (23, -1),
        ColumnType::BigInt => (20, -1),
        ColumnType::Real => (700, -1),
        ColumnType::Double => (701, -1),
        ColumnType::Numeric { precision, scale } => (
            1700,
            ((i32::from(*precision) << 16) | (i32::from(*scale) & 0xffff)) + 4,
        ),
        ColumnType::Text => (25, -1),
        ColumnType::Varchar { max_len } => (1043, max_len.map_or(-1, |n| n as i32 + 4)),
        ColumnType::Date => (1082, -1),
        ColumnType::Timestamp => (1114, -1),
        ColumnType::TimestampTz => (1184, -1),
        ColumnType::Bytea => (17, -1),
        ColumnType::Json => (114, -1),
        ColumnType::Jsonb => (3802, -1),
        ColumnType::Uuid => (2950, -1),
    }
}

/// The PostgreSQL type of a result column: its field's extension type (`json`, `jsonb`)
/// where it has one, else its Arrow type's.
pub fn of_field(field: &Field) -> TypeInfo {
    match extension(field) {
        Some(JSON_EXTENSION) => TypeInfo::named("json", "json"),
        Some(JSONB_EXTENSION) => TypeInfo::named("jsonb", "jsonb"),
        Some(UUID_EXTENSION) => TypeInfo::named("uuid", "uuid"),
        _ => of_arrow(field.data_type()),
    }
}

/// The Arrow extension type a field's metadata names.
pub fn extension(field: &Field) -> Option<&str> {
    field.metadata().get(EXTENSION_NAME_KEY).map(String::as_str)
}

/// The PostgreSQL type an Arrow type is sent to clients as.
pub fn of_arrow(data_type: &DataType) -> TypeInfo {
    match data_type {
        DataType::Boolean => TypeInfo::named("boolean", "bool"),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => {
            TypeInfo::number("smallint", "int2", 16, 2)
        }
        DataType::Int32 | DataType::UInt16 => TypeInfo::number("integer", "int4", 32, 2),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => {
            TypeInfo::number("bigint", "int8", 64, 2)
        }
        DataType::Float16 | DataType::Float32 => TypeInfo {
            numeric_scale: None,
            ..TypeInfo::number("real", "float4", 24, 2)
        },
        DataType::Float64 => TypeInfo {
            numeric_scale: None,
            ..TypeInfo::number("double precision", "float8", 53, 2)
        },
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => TypeInfo {
            numeric_precision: Some(*p as i32),
            numeric_precision_radix: Some(10),
            numeric_scale: Some(*s as i32),
            ..TypeInfo::named("numeric", "numeric")
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            TypeInfo::named("text", "text")
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => TypeInfo::named("bytea", "bytea"),
        DataType::Date32 | DataType::Date64 => TypeInfo {
            datetime_precision: Some(0),
            ..TypeInfo::named("date", "date")
        },
        DataType::Time32(_) | DataType::Time64(_) => {
            TypeInfo::timestamp("time without time zone", "time")
        }
        DataType::Timestamp(_, None) => {
            TypeInfo::timestamp("timestamp without time zone", "timestamp")
        }
        DataType::Timestamp(_, Some(_)) => {
            TypeInfo::timestamp("timestamp with time zone", "timestamptz")
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            TypeInfo::timestamp("interval", "interval")
        }
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            let inner = of_arrow(item.data_type());
            TypeInfo::named("ARRAY", &format!("_{}", inner.udt_name))
        }
        DataType::Null => TypeInfo::named("text", "text"),
        DataType::Dictionary(_, value) => of_arrow(value),
        _ => TypeInfo::named("USER-DEFINED", "text"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimeUnit;

    #[test]
    fn names_follow_postgresql() {
        assert_eq!(of_arrow(&DataType::Int64).data_type, "bigint");
        assert_eq!(of_arrow(&DataType::Int64).numeric_scale, Some(0));
        assert_eq!(of_arrow(&DataType::Int32).numeric_scale, Some(0));
        assert_eq!(of_arrow(&DataType::Float64).numeric_scale, None);
        assert_eq!(
            of_arrow(&DataType::Timestamp(TimeUnit::Microsecond, None)).data_type,
            "timestamp without time zone"
        );
        let tz = of_arrow(&DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("+00:00".into()),
        ));
        assert_eq!(
            (tz.data_type.as_str(), tz.udt_name.as_str()),
            ("timestamp with time zone", "timestamptz")
        );
        let numeric = of_column(&ColumnType::Numeric {
            precision: 12,
            scale: 2,
        });
        assert_eq!(
            (numeric.numeric_precision, numeric.numeric_scale),
            (Some(12), Some(2))
        );
        let varchar = of_column(&ColumnType::Varchar { max_len: Some(20) });
        assert_eq!(varchar.data_type, "character varying");
        assert_eq!(varchar.character_maximum_length, Some(20));
    }
}
