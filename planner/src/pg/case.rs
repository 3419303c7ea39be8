//! `upper`, `lower` and `initcap` in Henge's locale, C (as `lc_ctype` reports): only the
//! ASCII letters change case, and `initcap` starts a word after anything that is not an
//! ASCII letter or digit — PostgreSQL's answers in a C-locale database (`upper('straße')`
//! is `STRAßE`; DataFusion's Unicode mapping gave `STRASSE`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mapping {
    Upper,
    Lower,
    Initcap,
}

impl Mapping {
    fn apply(self, s: &str, out: &mut String) {
        out.clear();
        let mut word = false;
        for c in s.chars() {
            let mapped = match self {
                Mapping::Upper => c.to_ascii_uppercase(),
                Mapping::Lower => c.to_ascii_lowercase(),
                Mapping::Initcap if word => c.to_ascii_lowercase(),
                Mapping::Initcap => c.to_ascii_uppercase(),
            };
            word = c.is_ascii_alphanumeric();
            out.push(mapped);
        }
    }
}

/// Registers the three in place of DataFusion's.
pub fn register(ctx: &SessionContext) {
    for (name, mapping) in [
        ("upper", Mapping::Upper),
        ("lower", Mapping::Lower),
        ("initcap", Mapping::Initcap),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Case {
            name,
            mapping,
            signature: Signature::string(1, Volatility::Immutable),
        }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Case {
    name: &'static str,
    mapping: Mapping,
    signature: Signature,
}

impl ScalarUDFImpl for Case {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mut buffer = String::new();
        let out: StringArray = values
            .iter()
            .map(|v| {
                v.map(|s| {
                    self.mapping.apply(s, &mut buffer);
                    buffer.clone()
                })
            })
            .collect();
        let out: Arc<dyn Array> = Arc::new(out);
        Ok(match scalar {
            true => {
                ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
            }
            false => ColumnarValue::Array(out),
        })
    }
}
