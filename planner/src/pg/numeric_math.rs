//! `sqrt`, `exp`, `ln`, `log`, `log10` and `power` (`^`) of numerics, computed exactly as
//! PostgreSQL's numeric functions are, where DataFusion computes them in doubles
//! (`exp(1.0)` was `2.718281828459045`, PostgreSQL's is `2.7182818284590452`).
//!
//! Each result has PostgreSQL's places (its `rscale`): at least 16 significant digits, never
//! fewer places than an argument shows — `sqrt(2.0)` has 15 places, `2.0 ^ 10` 16, `exp`
//! fewer as its result grows. With constant arguments the result's type has exactly those
//! places; over a column the places are fixed when the query is planned (16, or the
//! column's own if more) and each value is PostgreSQL's rounded to them, as for the
//! quotient of numerics. The values are computed in fixed point with guard digits and
//! rounded half away from zero. A result beyond 38 digits (Henge's numerics) is 22003.

use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_traits::{Signed, ToPrimitive, Zero};

use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};

use super::SqlStateError;

/// PostgreSQL's fewest significant digits in a computed result.
const MIN_SIG_DIGITS: i64 = 16;
/// Henge's numerics have 38 digits.
const MAX_DIGITS: i64 = 38;
/// Digits computed beyond the result's places.
const GUARD: i64 = 24;
/// log10(e) as PostgreSQL writes it in its estimates of a result's weight (fewer digits
/// than the constant): the same value truncates to the same places at the edges.
#[allow(clippy::approx_constant)]
const PG_LOG10_E: f64 = 0.434294481903252;

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Sqrt,
    Exp,
    Ln,
    /// `log(x)` and `log10(x)`, and `log(b, x)`.
    Log,
    Power,
}

/// A numeric: `value / 10^scale`.
#[derive(Debug, Clone)]
pub struct Num {
    pub value: BigInt,
    pub scale: i64,
}

impl Num {
    pub fn new(value: i128, scale: i8) -> Num {
        Num {
            value: BigInt::from(value),
            scale: i64::from(scale),
        }
    }

    fn to_f64(&self) -> f64 {
        let v = self.value.to_f64().unwrap_or(f64::NAN);
        v / 10f64.powi(self.scale as i32)
    }

    /// The decimal exponent of the leading digit (`floor(log10(|x|))`); `None` for zero.
    fn exponent(&self) -> Option<i64> {
        if self.value.is_zero() {
            return None;
        }
        let digits = self.value.abs().to_string().len() as i64;
        Some(digits - 1 - self.scale)
    }

    /// PostgreSQL's weight: the position of the leading base-10000 digit.
    fn weight(&self) -> i64 {
        self.exponent().map_or(0, |e| e.div_euclid(4))
    }

    /// The leading base-10000 digits of |x| (the first, and the first two as one number
    /// with how many there are), as PostgreSQL's estimates read them.
    fn leading_groups(&self) -> (i64, i64, usize) {
        let w = self.weight();
        // |x| / 10000^(w - 1), truncated: the first two groups.
        let shift = 4 * (w - 1) + self.scale;
        let two = shifted(&self.value.abs(), -shift);
        let two = two.to_i64().unwrap_or(0);
        let first = two / 10_000;
        // Whether anything follows the first group.
        let rest = &self.value.abs() - shifted(&BigInt::from(first), 4 * w + self.scale);
        let more = if rest.is_zero() { 1 } else { 2 };
        (first, two, more)
    }

    /// Whether this is an integer.
    fn is_integer(&self) -> bool {
        self.scale <= 0 || (&self.value % pow10(self.scale)).is_zero()
    }
}

fn pow10(n: i64) -> BigInt {
    num_traits::pow(BigInt::from(10), n.max(0) as usize)
}

/// `v * 10^n` (truncating toward zero when n is negative).
fn shifted(v: &BigInt, n: i64) -> BigInt {
    if n >= 0 {
        v * pow10(n)
    } else {
        v / pow10(-n)
    }
}

/// `v` (at scale `from`) at scale `to`, rounded half away from zero.
fn rescale(v: &BigInt, from: i64, to: i64) -> BigInt {
    if to >= from {
        return shifted(v, to - from);
    }
    let divisor = pow10(from - to);
    let (q, r) = v.div_rem(&divisor);
    if r.abs() * 2 >= divisor {
        q + v.signum()
    } else {
        q
    }
}

/// `a * b` of two values at scale `w`.
fn mul(a: &BigInt, b: &BigInt, w: i64) -> BigInt {
    (a * b) / pow10(w)
}

/// `a / b` of two values at scale `w`.
fn div(a: &BigInt, b: &BigInt, w: i64) -> BigInt {
    (a * pow10(w)) / b
}

/// e^x for x at scale `w`, at scale `w`.
fn exp_fixed(x: &BigInt, w: i64) -> BigInt {
    // e^x = (e^(x / 2^k))^(2^k), with x / 2^k small enough for a short series.
    let k: u32 = 24;
    let extra = 12;
    let wp = w + extra;
    let one = pow10(wp);
    let small = shifted(x, extra) >> k;
    let mut sum = one.clone();
    let mut term = one.clone();
    let mut n = 1u32;
    loop {
        term = mul(&term, &small, wp) / n;
        if term.is_zero() {
            break;
        }
        sum += &term;
        n += 1;
    }
    for _ in 0..k {
        sum = mul(&sum, &sum, wp);
    }
    shifted(&sum, -extra)
}

/// ln(x) for x > 0 at scale `w` (x given as a numeric), by Newton's method on exp from a
/// double's estimate: each step triples the correct digits.
fn ln_fixed(x: &Num, w: i64) -> BigInt {
    // ln(x) = ln(m) + e·ln(10) with m = x / 10^e near 1, so that exp stays small.
    let e = x.exponent().unwrap_or(0);
    let wp = w + 8;
    let m = rescale(&x.value, x.scale + e, wp);
    let ln_m = {
        let estimate = (m.to_f64().unwrap_or(1.0) / 10f64.powi(wp as i32)).ln();
        let mut y = BigInt::from((estimate * 1e15) as i64) * pow10(wp - 15);
        for _ in 0..6 {
            let ey = exp_fixed(&y, wp);
            // y += 2 (m - e^y) / (m + e^y)
            let step = div(&((&m - &ey) * 2), &(&m + &ey), wp);
            if step.is_zero() {
                break;
            }
            y += step;
        }
        y
    };
    let ln10 = ln10(wp);
    shifted(&(ln_m + ln10 * e), -8)
}

/// ln(10) at scale `w`.
fn ln10(w: i64) -> BigInt {
    // 10 = 2^3 · 1.25: ln 10 = 3 ln 2 + ln 1.25, each by its atanh series.
    let wp = w + 6;
    let atanh_inv = |n: i64| {
        // atanh(1/n) = Σ 1 / ((2k+1) n^(2k+1))
        let mut sum = BigInt::zero();
        let mut power = pow10(wp) / n;
        let n2 = BigInt::from(n * n);
        let mut k = 1i64;
        while !power.is_zero() {
            sum += &power / k;
            power /= &n2;
            k += 2;
        }
        sum
    };
    // ln 2 = 2 atanh(1/3); ln 1.25 = 2 atanh(1/9).
    let ln2 = atanh_inv(3) * 2;
    let ln125 = atanh_inv(9) * 2;
    shifted(&(ln2 * 3 + ln125), -6)
}

/// PostgreSQL's estimate of the decimal weight of ln(x) (`estimate_ln_dweight`).
fn ln_dweight(x: &Num) -> i64 {
    if x.value.sign() != Sign::Plus {
        return 0;
    }
    let (nine, eleven) = (Num::new(9, 1), Num::new(11, 1));
    let cmp = |a: &Num, b: &Num| {
        let s = a.scale.max(b.scale);
        rescale(&a.value, a.scale, s).cmp(&rescale(&b.value, b.scale, s))
    };
    if cmp(x, &nine).is_ge() && cmp(x, &eleven).is_le() {
        // ln(1 + d) ≈ d.
        let d = Num {
            value: &x.value - pow10(x.scale),
            scale: x.scale,
        };
        if d.value.is_zero() {
            return 0;
        }
        let (first, _, _) = d.leading_groups();
        return d.weight() * 4 + (first as f64).log10() as i64;
    }
    let (first, two, groups) = x.leading_groups();
    let (digits, dweight) = if groups > 1 {
        (two, x.weight() * 4 - 4)
    } else {
        (first, x.weight() * 4)
    };
    let ln = (digits as f64).ln() + dweight as f64 * std::f64::consts::LN_10;
    ln.abs().log10() as i64
}

fn clamp_scale(rscale: i64) -> i64 {
    rscale.clamp(0, 1000)
}

/// The places (`rscale`) PostgreSQL gives the result for these arguments, by its rules
/// for each function.
pub fn result_scale(op: Op, args: &[Num]) -> Result<i64> {
    let dscale = |n: &Num| n.scale.max(0);
    let rscale = match op {
        Op::Sqrt => {
            let x = &args[0];
            let sweight = (x.weight() + 1) * 4 / 2 - 1;
            (MIN_SIG_DIGITS - sweight).max(dscale(x))
        }
        Op::Exp => {
            let val = (args[0].to_f64() * PG_LOG10_E).clamp(-1000.0, 1000.0);
            (MIN_SIG_DIGITS - val as i64).max(dscale(&args[0]))
        }
        Op::Ln => (MIN_SIG_DIGITS - ln_dweight(&args[0])).max(dscale(&args[0])),
        Op::Log => {
            let (base, num) = (&args[0], &args[1]);
            let result_dweight = ln_dweight(num) - ln_dweight(base);
            (MIN_SIG_DIGITS - result_dweight)
                .max(dscale(base))
                .max(dscale(num))
        }
        Op::Power => {
            let (base, exp) = (&args[0], &args[1]);
            if exp.is_integer() && exp_i32(exp).is_some() {
                MIN_SIG_DIGITS.max(dscale(base))
            } else if base.value.is_zero() {
                MIN_SIG_DIGITS
            } else {
                let val = exp.to_f64() * base.to_f64().abs().ln() * PG_LOG10_E;
                (MIN_SIG_DIGITS - val as i64)
                    .max(dscale(base))
                    .max(dscale(exp))
            }
        }
    };
    Ok(clamp_scale(rscale))
}

fn exp_i32(exp: &Num) -> Option<i32> {
    rescale(&exp.value, exp.scale, 0).to_i32()
}

fn overflow() -> DataFusionError {
    SqlStateError::new("22003", "value overflows numeric format").into()
}

/// The function's value at `rscale` places (the unscaled integer), checked against
/// PostgreSQL's domain errors.
pub fn compute(op: Op, args: &[Num], rscale: i64) -> Result<BigInt> {
    let w = rscale + GUARD;
    let positive = |x: &Num, root: bool| -> Result<()> {
        match x.value.sign() {
            Sign::Plus => Ok(()),
            Sign::NoSign if root => Ok(()),
            Sign::NoSign => {
                Err(SqlStateError::new("2201E", "cannot take logarithm of zero").into())
            }
            Sign::Minus if root => Err(SqlStateError::new(
                "2201F",
                "cannot take square root of a negative number",
            )
            .into()),
            Sign::Minus => Err(SqlStateError::new(
                "2201E",
                "cannot take logarithm of a negative number",
            )
            .into()),
        }
    };
    // The result's decimal exponent must leave room for its places in 38 digits.
    let fits = |approx_log10: f64| -> Result<()> {
        if approx_log10.is_finite() && approx_log10 + 1.0 > (MAX_DIGITS - rscale) as f64 + 1.0 {
            return Err(overflow());
        }
        Ok(())
    };
    let value = match op {
        Op::Sqrt => {
            let x = &args[0];
            positive(x, true)?;
            // sqrt(v / 10^s) at scale w is isqrt(v · 10^(2w - s)).
            let shift = 2 * w - x.scale;
            let root = shifted(&x.value, shift).sqrt();
            rescale(&root, w, rscale)
        }
        Op::Exp => {
            let x = &args[0];
            fits(x.to_f64() * std::f64::consts::LOG10_E)?;
            let fixed = rescale(&x.value, x.scale, w);
            rescale(&exp_fixed(&fixed, w), w, rscale)
        }
        Op::Ln => {
            positive(&args[0], false)?;
            rescale(&ln_fixed(&args[0], w), w, rscale)
        }
        Op::Log => {
            let (base, num) = (&args[0], &args[1]);
            positive(base, false)?;
            positive(num, false)?;
            let ln_base = ln_fixed(base, w + 10);
            if ln_base.is_zero() {
                return Err(SqlStateError::new("22012", "division by zero").into());
            }
            let ln_num = ln_fixed(num, w + 10);
            rescale(&div(&ln_num, &ln_base, w + 10), w + 10, rscale)
        }
        Op::Power => {
            let (base, exp) = (&args[0], &args[1]);
            if base.value.is_zero() {
                if exp.value.is_negative() {
                    return Err(SqlStateError::new(
                        "2201F",
                        "zero raised to a negative power is undefined",
                    )
                    .into());
                }
                return Ok(if exp.value.is_zero() {
                    pow10(rscale)
                } else {
                    BigInt::zero()
                });
            }
            if base.value.is_negative() && !exp.is_integer() {
                return Err(SqlStateError::new(
                    "2201F",
                    "a negative number raised to a non-integer power yields a complex result",
                )
                .into());
            }
            fits(exp.to_f64() * base.to_f64().abs().log10())?;
            match exp_i32(exp).filter(|_| exp.is_integer()) {
                Some(n) if n.unsigned_abs() <= 256 => {
                    let p = num_traits::pow(base.value.clone(), n.unsigned_abs() as usize);
                    let p_scale = base.scale * i64::from(n.unsigned_abs());
                    if n >= 0 {
                        rescale(&p, p_scale, rscale)
                    } else {
                        // 1 / p at scale w: 10^(w + p_scale) / p.
                        let q = pow10(w + p_scale) / &p;
                        rescale(&q, w, rscale)
                    }
                }
                _ => {
                    let negative =
                        base.value.is_negative() && exp_i32(exp).is_some_and(|n| n % 2 != 0);
                    let magnitude = Num {
                        value: base.value.abs(),
                        scale: base.scale,
                    };
                    let wp = w + 10;
                    let ln_base = ln_fixed(&magnitude, wp);
                    let y = mul(&ln_base, &rescale(&exp.value, exp.scale, wp), wp);
                    let r = rescale(&exp_fixed(&y, wp), wp, rscale);
                    if negative {
                        -r
                    } else {
                        r
                    }
                }
            }
        }
    };
    if value.abs() >= pow10(MAX_DIGITS) {
        return Err(overflow());
    }
    Ok(value)
}

/// The type of a result of `rscale` places.
pub fn result_type(rscale: i64) -> Result<DataType> {
    if rscale > MAX_DIGITS {
        return Err(SqlStateError::new(
            "0A000",
            format!(
                "the result needs {rscale} decimal places; Henge's numerics have at most \
                 {MAX_DIGITS} digits"
            ),
        )
        .into());
    }
    Ok(DataType::Decimal128(38, rscale as i8))
}

/// `value` (at `from` places) as an i128 at `to` places.
pub fn to_column(value: &BigInt, from: i64, to: i64) -> Result<i128> {
    rescale(value, from, to).to_i128().ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: Op, args: &[(i128, i8)]) -> String {
        let args: Vec<Num> = args.iter().map(|(v, s)| Num::new(*v, *s)).collect();
        let rscale = result_scale(op, &args).unwrap();
        let v = compute(op, &args, rscale).unwrap();
        henge_ingest::text::decimal_text(v.to_i128().unwrap(), rscale as i8)
    }

    #[test]
    fn postgresql_digits_and_places() {
        assert_eq!(run(Op::Sqrt, &[(20, 1)]), "1.414213562373095");
        assert_eq!(run(Op::Exp, &[(10, 1)]), "2.7182818284590452");
        assert_eq!(run(Op::Ln, &[(20, 1)]), "0.6931471805599453");
        assert_eq!(run(Op::Log, &[(10, 0), (1000, 1)]), "2.0000000000000000");
        assert_eq!(run(Op::Log, &[(20, 1), (640, 1)]), "6.0000000000000000");
        assert_eq!(run(Op::Power, &[(20, 1), (10, 0)]), "1024.0000000000000000");
        assert_eq!(run(Op::Power, &[(2, 0), (5, 1)]), "1.4142135623730950");
        assert_eq!(run(Op::Power, &[(90, 1), (30, 1)]), "729.0000000000000000");
    }
}
