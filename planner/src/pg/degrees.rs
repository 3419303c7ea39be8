//! PostgreSQL's trigonometric functions in degrees: `sind`, `cosd`, `tand`, `cotd`,
//! `asind`, `acosd`, `atand`, `atan2d`. PostgreSQL makes them exact where the answer is a
//! round number (`sind(30)` is 0.5, `tand(45)` is 1, `asind(0.5)` is 30): it reduces the
//! angle to the first quadrant and scales the library's result by its value at 30°, 45°
//! or 60°, so that those angles give exactly the round answer. Henge computes them the
//! same way, so its doubles are PostgreSQL's to the last bit.

use std::f64::consts::PI;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{no_such_function, on_arrays, SqlStateError};

/// Registers the functions.
pub fn register(ctx: &SessionContext) {
    let unary: [(&'static str, Kernel); 7] = [
        ("sind", Kernel::One(sind)),
        ("cosd", Kernel::One(cosd)),
        ("tand", Kernel::One(tand)),
        ("cotd", Kernel::One(cotd)),
        ("asind", Kernel::One(asind)),
        ("acosd", Kernel::One(acosd)),
        ("atand", Kernel::One(atand)),
    ];
    for (name, kernel) in unary.into_iter().chain([("atan2d", Kernel::Two(atan2d))]) {
        ctx.register_udf(ScalarUDF::new_from_impl(Degrees {
            name,
            kernel,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

#[derive(Debug, Clone, Copy)]
enum Kernel {
    One(fn(f64) -> Result<f64>),
    Two(fn(f64, f64) -> Result<f64>),
}

#[derive(Debug)]
struct Degrees {
    name: &'static str,
    kernel: Kernel,
    signature: Signature,
}

/// A function is known by its name: each name has one kernel.
impl PartialEq for Degrees {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Degrees {}

impl std::hash::Hash for Degrees {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Degrees {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let arity = match self.kernel {
            Kernel::One(_) => 1,
            Kernel::Two(_) => 2,
        };
        let numeric = |t: &DataType| t.is_numeric() || *t == DataType::Null;
        if arg_types.len() == arity && arg_types.iter().all(numeric) {
            Ok(vec![DataType::Float64; arity])
        } else {
            Err(no_such_function(self.name, arg_types))
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let x = arrays[0].as_primitive::<Float64Type>();
            let out: Float64Array = match self.kernel {
                Kernel::One(f) => x
                    .iter()
                    .map(|v| v.map(f).transpose())
                    .collect::<Result<_>>()?,
                Kernel::Two(f) => {
                    let y = arrays[1].as_primitive::<Float64Type>();
                    x.iter()
                        .zip(y.iter())
                        .map(|(a, b)| a.zip(b).map(|(a, b)| f(a, b)).transpose())
                        .collect::<Result<_>>()?
                }
            };
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

const RADIANS_PER_DEGREE: f64 = PI / 180.0;

fn out_of_range() -> datafusion::error::DataFusionError {
    SqlStateError::new("22003", "input is out of range").into()
}

/// sin(x°) for x in [0, 30], scaled so that 30° gives exactly 0.5.
fn sind_0_to_30(x: f64) -> f64 {
    let sin_30 = (30.0 * RADIANS_PER_DEGREE).sin();
    ((x * RADIANS_PER_DEGREE).sin() / sin_30) / 2.0
}

/// cos(x°) for x in [0, 60], scaled so that 60° gives exactly 0.5.
fn cosd_0_to_60(x: f64) -> f64 {
    let one_minus_cos_60 = 1.0 - (60.0 * RADIANS_PER_DEGREE).cos();
    1.0 - ((1.0 - (x * RADIANS_PER_DEGREE).cos()) / one_minus_cos_60) / 2.0
}

/// sin(x°) for x in the first quadrant.
fn sind_q1(x: f64) -> f64 {
    if x <= 30.0 {
        sind_0_to_30(x)
    } else {
        cosd_0_to_60(90.0 - x)
    }
}

/// cos(x°) for x in the first quadrant.
fn cosd_q1(x: f64) -> f64 {
    if x <= 60.0 {
        cosd_0_to_60(x)
    } else {
        sind_0_to_30(90.0 - x)
    }
}

/// An angle reduced to [0, 180] (`fmod` by 360 and reflected), with the sign its sine
/// has.
fn half_turn(x: f64) -> (f64, f64) {
    let mut angle = x % 360.0;
    let mut sign = 1.0;
    if angle < 0.0 {
        angle = -angle;
        sign = -sign;
    }
    if angle > 180.0 {
        angle = 360.0 - angle;
        sign = -sign;
    }
    (angle, sign)
}

fn finite(x: f64) -> Result<()> {
    if x.is_infinite() {
        Err(out_of_range())
    } else {
        Ok(())
    }
}

fn sind(x: f64) -> Result<f64> {
    if x.is_nan() {
        return Ok(f64::NAN);
    }
    finite(x)?;
    let (mut angle, sign) = half_turn(x);
    if angle > 90.0 {
        angle = 180.0 - angle;
    }
    Ok(sign * sind_q1(angle))
}

fn cosd(x: f64) -> Result<f64> {
    if x.is_nan() {
        return Ok(f64::NAN);
    }
    finite(x)?;
    let (mut angle, _) = half_turn(x);
    let mut sign = 1.0;
    if angle > 90.0 {
        angle = 180.0 - angle;
        sign = -sign;
    }
    Ok(sign * cosd_q1(angle))
}

/// The tangent (or cotangent) of x°, scaled so that 45° gives exactly 1; never -0.
fn tangent(x: f64, cotangent: bool) -> Result<f64> {
    if x.is_nan() {
        return Ok(f64::NAN);
    }
    finite(x)?;
    let (mut angle, mut sign) = half_turn(x);
    if angle > 90.0 {
        angle = 180.0 - angle;
        sign = -sign;
    }
    let ratio = |a: f64| match cotangent {
        false => sind_q1(a) / cosd_q1(a),
        true => cosd_q1(a) / sind_q1(a),
    };
    let value = sign * (ratio(angle) / ratio(45.0));
    Ok(if value == 0.0 { 0.0 } else { value })
}

fn tand(x: f64) -> Result<f64> {
    tangent(x, false)
}

fn cotd(x: f64) -> Result<f64> {
    tangent(x, true)
}

/// asin(x) in degrees for x in [0, 1], exact at 0.5 and 1.
fn asind_q1(x: f64) -> f64 {
    if x <= 0.5 {
        (x.asin() / 0.5f64.asin()) * 30.0
    } else {
        90.0 - (x.acos() / 0.5f64.acos()) * 60.0
    }
}

/// acos(x) in degrees for x in [0, 1], exact at 0.5 and 1.
fn acosd_q1(x: f64) -> f64 {
    if x <= 0.5 {
        90.0 - (x.asin() / 0.5f64.asin()) * 30.0
    } else {
        (x.acos() / 0.5f64.acos()) * 60.0
    }
}

fn asind(x: f64) -> Result<f64> {
    if x.is_nan() {
        return Ok(f64::NAN);
    }
    if !(-1.0..=1.0).contains(&x) {
        return Err(out_of_range());
    }
    Ok(if x >= 0.0 { asind_q1(x) } else { -asind_q1(-x) })
}

fn acosd(x: f64) -> Result<f64> {
    if x.is_nan() {
        return Ok(f64::NAN);
    }
    if !(-1.0..=1.0).contains(&x) {
        return Err(out_of_range());
    }
    Ok(if x >= 0.0 {
        acosd_q1(x)
    } else {
        90.0 + asind_q1(-x)
    })
}

fn atand(x: f64) -> Result<f64> {
    if x.is_nan() {
        return Ok(f64::NAN);
    }
    Ok((x.atan() / 1f64.atan()) * 45.0)
}

fn atan2d(y: f64, x: f64) -> Result<f64> {
    if x.is_nan() || y.is_nan() {
        return Ok(f64::NAN);
    }
    Ok((y.atan2(x) / 1f64.atan()) * 45.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_angles_give_round_answers() {
        assert_eq!(sind(30.0).unwrap(), 0.5);
        assert_eq!(sind(-390.0).unwrap(), -0.5);
        assert_eq!(cosd(60.0).unwrap(), 0.5);
        assert_eq!(cosd(180.0).unwrap(), -1.0);
        assert_eq!(tand(45.0).unwrap(), 1.0);
        assert_eq!(tand(135.0).unwrap(), -1.0);
        assert_eq!(tand(180.0).unwrap().to_bits(), 0f64.to_bits());
        assert_eq!(cotd(45.0).unwrap(), 1.0);
        assert_eq!(asind(0.5).unwrap(), 30.0);
        assert_eq!(acosd(0.5).unwrap(), 60.0);
        assert_eq!(acosd(-1.0).unwrap(), 180.0);
        assert_eq!(atand(1.0).unwrap(), 45.0);
        assert_eq!(atan2d(1.0, 1.0).unwrap(), 45.0);
        assert!(asind(1.5).is_err());
        assert!(sind(f64::INFINITY).is_err());
    }
}
