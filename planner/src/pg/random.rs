//! `random()` and `setseed(x)` as PostgreSQL has them: one generator per session, which
//! `setseed` (a seed from -1 to 1) makes repeat its sequence — the same sequence as
//! PostgreSQL's (its xoroshiro128** generator, seeded through splitmix64 from the seed's 52
//! bits), so that a script that seeds and draws gives PostgreSQL's numbers. Unseeded, the
//! generator starts from the clock and the process's randomness.

use std::sync::Arc;

use datafusion::arrow::array::Float64Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use parking_lot::Mutex;

use super::functions::RowFunction;
use super::SqlStateError;

/// PostgreSQL's `pg_prng_state`.
#[derive(Debug, Clone, Copy)]
struct Prng {
    s0: u64,
    s1: u64,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut v = *state;
    v = (v ^ (v >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    v = (v ^ (v >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    v ^ (v >> 31)
}

impl Prng {
    fn seeded(mut seed: u64) -> Prng {
        let mut p = Prng {
            s0: splitmix64(&mut seed),
            s1: splitmix64(&mut seed),
        };
        if p.s0 == 0 && p.s1 == 0 {
            p.s0 = 1;
        }
        p
    }

    /// From a seed in [-1, 1], as `setseed` takes it.
    fn from_fraction(seed: f64) -> Prng {
        let scaled = ((1u64 << 52) - 1) as f64 * seed;
        Prng::seeded(scaled as i64 as u64)
    }

    fn next(&mut self) -> u64 {
        let s0 = self.s0;
        let sx = self.s1 ^ s0;
        let value = s0.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        self.s0 = s0.rotate_left(24) ^ sx ^ (sx << 16);
        self.s1 = sx.rotate_left(37);
        value
    }

    /// A double in [0, 1) from 52 random bits.
    fn double(&mut self) -> f64 {
        (self.next() >> 12) as f64 * 2f64.powi(-52)
    }
}

fn unseeded() -> Prng {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    h.write_u64(nanos);
    Prng::seeded(h.finish())
}

type Generator = Arc<Mutex<Prng>>;

/// Registers the session's `random()` and `setseed(x)` in place of DataFusion's random.
pub fn register(ctx: &SessionContext) {
    let generator: Generator = Arc::new(Mutex::new(unseeded()));
    ctx.register_udf(ScalarUDF::new_from_impl(Random {
        signature: Signature::nullary(Volatility::Volatile),
        generator: generator.clone(),
    }));
    ctx.register_udf(RowFunction::udf(
        "setseed",
        vec![vec![DataType::Float64]],
        DataType::Null,
        Volatility::Volatile,
        Arc::new(move |args| {
            let ScalarValue::Float64(Some(seed)) = args[0] else {
                return Ok(ScalarValue::Null);
            };
            if !(-1.0..=1.0).contains(&seed) {
                return Err(SqlStateError::new(
                    "22023",
                    format!("setseed parameter {seed} is out of allowed range [-1,1]"),
                )
                .into());
            }
            *generator.lock() = Prng::from_fraction(seed);
            Ok(ScalarValue::Null)
        }),
    ));
}

/// `random()`: the session's next doubles.
#[derive(Debug)]
struct Random {
    signature: Signature,
    generator: Generator,
}

impl PartialEq for Random {
    fn eq(&self, other: &Random) -> bool {
        Arc::ptr_eq(&self.generator, &other.generator)
    }
}

impl Eq for Random {}

impl std::hash::Hash for Random {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "random".hash(state);
    }
}

impl ScalarUDFImpl for Random {
    fn name(&self) -> &str {
        "random"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut g = self.generator.lock();
        let values: Float64Array = (0..args.number_rows.max(1)).map(|_| g.double()).collect();
        Ok(ColumnarValue::Array(Arc::new(values)))
    }
}
