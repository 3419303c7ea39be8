//! How one block of a column's values becomes bytes, and back.
//!
//! Integers (and everything stored as integers: dates, timestamps, numerics that fit in 64
//! bits, dictionary ids) are bit-packed after subtracting a reference (frame of reference) or
//! as zig-zagged differences from the previous value (delta, chosen when narrower: sorted time
//! columns). Floating-point values that are decimals in disguise (prices such as `12.34`) are
//! scaled to integers by a power of ten and packed the same way, but only when the decoder's
//! arithmetic gives back every value bit for bit; anything else is stored plain.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::bitpack;

/// The layout of one block's bytes (before any lz4 compression of the block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoding {
    /// Little-endian values exactly as Arrow holds them in memory.
    Plain,
    /// One bit per row, least significant bit first (booleans).
    Bits,
    /// `value = reference + packed`, each packed in `width` bits.
    For { reference: i64, width: u8 },
    /// `value[i] = value[i-1] + unzigzag(packed[i])`, starting from `first`.
    Delta { first: i64, width: u8 },
    /// Floating point: `value = (reference + packed) / 10^exponent`.
    Scaled {
        exponent: u8,
        reference: i64,
        width: u8,
    },
    /// Ids into the column's dictionary, each packed in `width` bits.
    Ids { width: u8 },
    /// `rows + 1` little-endian `i32` offsets, then the bytes of every value.
    Binary,
}

/// Encodes integers with whichever of frame-of-reference and delta packs narrower.
pub fn encode_ints(values: &[i64]) -> (Encoding, Vec<u8>) {
    let (min, max) = values
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if values.is_empty() {
        return (
            Encoding::For {
                reference: 0,
                width: 0,
            },
            bitpack::pack(&[], 0),
        );
    }
    let for_width = bitpack::width_for(max.wrapping_sub(min) as u64);
    if for_width == 0 {
        let (reference, width, bytes) = encode_for(values);
        return (Encoding::For { reference, width }, bytes);
    }
    let mut previous = values[0];
    let deltas: Vec<u64> = values
        .iter()
        .map(|&v| {
            let delta = zigzag(v.wrapping_sub(previous));
            previous = v;
            delta
        })
        .collect();
    let delta_width = bitpack::width_for(deltas.iter().copied().max().unwrap_or(0));
    if delta_width < for_width {
        (
            Encoding::Delta {
                first: values[0],
                width: delta_width,
            },
            bitpack::pack(&deltas, delta_width),
        )
    } else {
        let (reference, width, bytes) = encode_for(values);
        (Encoding::For { reference, width }, bytes)
    }
}

/// Frame of reference: the minimum, the width of the largest offset from it, the packed offsets.
fn encode_for(values: &[i64]) -> (i64, u8, Vec<u8>) {
    let min = values.iter().copied().min().unwrap_or(0);
    let max = values.iter().copied().max().unwrap_or(0);
    let width = bitpack::width_for(max.wrapping_sub(min) as u64);
    let offsets: Vec<u64> = values.iter().map(|&v| v.wrapping_sub(min) as u64).collect();
    (min, width, bitpack::pack(&offsets, width))
}

/// Which values of a block to decode: all `count` of them, or those at some positions
/// (ascending), for a few rows of a block (late materialisation).
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    All(usize),
    At(&'a [u32]),
}

impl Rows<'_> {
    /// How many values are decoded.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::All(count) => *count,
            Rows::At(at) => at.len(),
        }
    }
}

/// Whether values of `encoding` can be decoded alone ([`Rows::At`]): bit-packed values
/// can, deltas (each value needs those before it) and the others are not read that way.
pub fn decodes_alone(encoding: Encoding) -> bool {
    matches!(
        encoding,
        Encoding::For { .. } | Encoding::Scaled { .. } | Encoding::Ids { .. }
    )
}

/// Decodes integers written by [`encode_ints`] (or scaled floats' integers) straight into
/// the values `convert` makes of them, one allocation of the final size (a block decoded as
/// `i64`s and then narrowed was twice the memory, fresh pages, and a copy). `None` if the
/// block is undecodable, a value lies outside `range` (what the target type holds), or
/// `rows` picks values of an encoding that cannot be decoded alone. A frame of reference
/// bounds its block's values, so when the frame lies inside `range` no value is checked.
pub fn decode_ints_as<T>(
    encoding: Encoding,
    bytes: &[u8],
    rows: Rows,
    range: RangeInclusive<i64>,
    convert: impl Fn(i64) -> T,
) -> Option<Vec<T>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut in_range = true;
    let mut check = |v: i64| {
        in_range &= range.contains(&v);
        v
    };
    match (encoding, rows) {
        (
            Encoding::For { reference, width }
            | Encoding::Scaled {
                reference, width, ..
            },
            Rows::At(at),
        ) => {
            for &i in at {
                let v = bitpack::get(bytes, width, i as usize)?;
                out.push(convert(check(reference.wrapping_add(v as i64))));
            }
        }
        (
            Encoding::For { reference, width }
            | Encoding::Scaled {
                reference, width, ..
            },
            Rows::All(count),
        ) => match frame_within(reference, width, &range) {
            true => bitpack::unpack_into(bytes, width, count, &mut out, |v| {
                convert(reference.wrapping_add(v as i64))
            })?,
            false => bitpack::unpack_into(bytes, width, count, &mut out, |v| {
                convert(check(reference.wrapping_add(v as i64)))
            })?,
        },
        (Encoding::Delta { first, width }, Rows::All(count)) => {
            // The first row is `first`; each later one adds its difference.
            let (mut value, mut started) = (first, false);
            bitpack::unpack_into(bytes, width, count, &mut out, |v| {
                if started {
                    value = value.wrapping_add(unzigzag(v));
                }
                started = true;
                convert(check(value))
            })?
        }
        _ => return None,
    }
    (in_range && out.len() == rows.len()).then_some(out)
}

/// Whether every value a frame of reference can hold (`reference` plus up to `width`
/// bits) lies in `range`.
fn frame_within(reference: i64, width: u8, range: &RangeInclusive<i64>) -> bool {
    let top = i128::from(reference) + ((1i128 << width) - 1);
    range.contains(&reference) && top <= i128::from(*range.end())
}

/// Decodes `count` dictionary ids, refusing any that is not below `dictionary_len`.
pub fn decode_ids(width: u8, bytes: &[u8], rows: Rows, dictionary_len: u32) -> Option<Vec<u32>> {
    let range = 0..=i64::from(dictionary_len) - 1;
    let encoding = Encoding::For {
        reference: 0,
        width,
    };
    decode_ints_as(encoding, bytes, rows, range, |v| v as u32)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

const POWERS_OF_TEN: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
/// Scaled integers stay below 2^53, where every integer is exact as a double.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// Encodes doubles, scaled to integers where that is lossless, plain otherwise.
pub fn encode_f64(values: &[f64]) -> (Encoding, Vec<u8>) {
    encode_floats(values, |v| v, |x| x).unwrap_or_else(|| {
        (
            Encoding::Plain,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    })
}

/// Encodes reals, scaled to integers where that is lossless, plain otherwise.
pub fn encode_f32(values: &[f32]) -> (Encoding, Vec<u8>) {
    encode_floats(values, f64::from, |x| x as f32).unwrap_or_else(|| {
        (
            Encoding::Plain,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    })
}

/// Doubles from a [`Encoding::Scaled`] block.
///
/// Each value is its integer divided by the power of ten, rounded once, as the encoder
/// checked it: division, one value at a time, bounds a scan of such a column (a double
/// division is several cycles). A whole block is unpacked in chunks that stay in the
/// cache and each chunk divided together ([`divide`]).
pub fn decode_scaled(encoding: Encoding, bytes: &[u8], rows: Rows) -> Option<Vec<f64>> {
    let Encoding::Scaled {
        exponent,
        reference,
        width,
    } = encoding
    else {
        return None;
    };
    let power = *POWERS_OF_TEN.get(usize::from(exponent))?;
    let Rows::All(count) = rows else {
        return decode_ints_as(encoding, bytes, rows, i64::MIN..=i64::MAX, |i| {
            i as f64 / power
        });
    };
    let small = frame_within(reference, width, &(-SMALL..=SMALL - 1));
    let mut out = Vec::with_capacity(count);
    let mut ints = Vec::with_capacity(CHUNK.min(count));
    for start in (0..count).step_by(CHUNK) {
        // A chunk starts at a multiple of eight values: on a byte of its own.
        let from = start / 8 * usize::from(width);
        let chunk = CHUNK.min(count - start);
        ints.clear();
        bitpack::unpack_into(bytes.get(from..)?, width, chunk, &mut ints, |v| {
            reference.wrapping_add(v as i64)
        })?;
        divide(&ints, exponent, small, &mut out);
    }
    Some(out)
}

/// Values unpacked at a time by [`decode_scaled`] (a multiple of eight).
const CHUNK: usize = 1024;

/// Integers below this in magnitude are converted to doubles by [`exact_f64`].
const SMALL: i64 = 1 << 51;

/// Appends each of `ints` divided by 10^`exponent` (at most 6), correctly rounded, to
/// `out`. `small` tells that every one of them is below [`SMALL`] in magnitude (used only
/// where the processor may have FMA).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn divide(ints: &[i64], exponent: u8, small: bool, out: &mut Vec<f64>) {
    let power = POWERS_OF_TEN[usize::from(exponent)];
    if exponent == 0 {
        out.extend(ints.iter().map(|&i| i as f64));
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if small && has_fma() {
        // SAFETY: the processor has the features `divide_fma` is compiled for.
        unsafe { divide_fma(ints, power, out) };
        return;
    }
    out.extend(ints.iter().map(|&i| i as f64 / power));
}

/// Whether the processor has what [`divide_fma`] is compiled for.
#[cfg(target_arch = "x86_64")]
fn has_fma() -> bool {
    std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2")
}

/// [`divide`] without a division: the quotient estimated with the reciprocal, its exact
/// remainder taken by a fused multiply-add and the estimate corrected by it. Markstein's
/// theorem: when the reciprocal is correctly rounded and the estimate within an ulp of the
/// quotient, the corrected value is the correctly rounded quotient, the division's own (the
/// tests compare them over many millions of values). Four values at a time with AVX2; the
/// integers' conversion is [`exact_f64`]'s, which AVX2 has instructions for.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn divide_fma(ints: &[i64], power: f64, out: &mut Vec<f64>) {
    let inverse = 1.0 / power;
    out.extend(ints.iter().map(|&i| {
        let dividend = exact_f64(i);
        let estimate = dividend * inverse;
        let remainder = (-estimate).mul_add(power, dividend);
        remainder.mul_add(inverse, estimate)
    }));
}

/// `i` as a double, exactly, for `i` below [`SMALL`] in magnitude: added to the bits of
/// 1.5 × 2^52, whose last 52 bits then hold `i` (in two's complement), and 1.5 × 2^52
/// taken away again. Integer adds and a subtraction, where `i as f64` is a conversion
/// instruction AVX2 has only for single values.
#[inline(always)]
fn exact_f64(i: i64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    f64::from_bits(MAGIC.to_bits().wrapping_add(i as u64)) - MAGIC
}

/// [`decode_scaled`] of reals: the double rounded to the nearest real, as the encoder
/// checked it.
pub fn decode_scaled_f32(encoding: Encoding, bytes: &[u8], rows: Rows) -> Option<Vec<f32>> {
    let doubles = decode_scaled(encoding, bytes, rows)?;
    Some(doubles.into_iter().map(|v| v as f32).collect())
}

fn encode_floats<T: Copy + FloatBits>(
    values: &[T],
    widen: impl Fn(T) -> f64,
    narrow: impl Fn(f64) -> T,
) -> Option<(Encoding, Vec<u8>)> {
    'exponent: for (exponent, &power) in POWERS_OF_TEN.iter().enumerate() {
        let mut ints = Vec::with_capacity(values.len());
        for &value in values {
            let scaled = (widen(value) * power).round();
            // NaN and infinities fail this test too.
            if scaled.is_nan() || scaled.abs() >= MAX_EXACT {
                continue 'exponent;
            }
            let int = scaled as i64;
            if narrow(int as f64 / power).bits() != value.bits() {
                continue 'exponent;
            }
            ints.push(int);
        }
        let (reference, width, bytes) = encode_for(&ints);
        // Packing wider than the plain value would not pay.
        if usize::from(width) >= 8 * std::mem::size_of::<T>() {
            return None;
        }
        return Some((
            Encoding::Scaled {
                exponent: exponent as u8,
                reference,
                width,
            },
            bytes,
        ));
    }
    None
}

/// Bit patterns, so that -0.0 and NaN payloads must come back exactly.
pub trait FloatBits {
    fn bits(self) -> u64;
}

impl FloatBits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

impl FloatBits for f32 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: RangeInclusive<i64> = i64::MIN..=i64::MAX;

    fn ints_round_trip(values: &[i64]) -> Encoding {
        let (encoding, bytes) = encode_ints(values);
        assert_eq!(
            decode_ints_as(encoding, &bytes, Rows::All(values.len()), ALL, |v| v).unwrap(),
            values
        );
        encoding
    }

    #[test]
    fn sorted_times_use_deltas() {
        let times: Vec<i64> = (0..1000)
            .map(|i| 1_700_000_000_000_000 + i * 1_000)
            .collect();
        assert!(matches!(
            ints_round_trip(&times),
            Encoding::Delta { width: 11, .. }
        ));
    }

    #[test]
    fn narrow_ranges_use_frame_of_reference() {
        let values: Vec<i64> = (0..1000).map(|i| 5_000 + (i * 37) % 100).collect();
        assert!(matches!(
            ints_round_trip(&values),
            Encoding::For {
                reference: 5000,
                width: 7
            }
        ));
    }

    #[test]
    fn extremes_round_trip() {
        ints_round_trip(&[i64::MIN, i64::MAX, 0, -1, i64::MIN]);
        ints_round_trip(&[]);
        ints_round_trip(&[42]);
    }

    #[test]
    fn prices_are_scaled() {
        // As parsed from text: the double nearest to each decimal.
        let prices: Vec<f64> = (0..1000).map(|i| f64::from(90_000 + i) / 100.0).collect();
        let (encoding, bytes) = encode_f64(&prices);
        assert!(
            matches!(encoding, Encoding::Scaled { exponent: 2, .. }),
            "{encoding:?}"
        );
        let back = decode_scaled(encoding, &bytes, Rows::All(prices.len())).unwrap();
        assert!(back
            .iter()
            .zip(&prices)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn awkward_doubles_stay_plain() {
        for values in [
            vec![0.1 + 0.2],
            vec![-0.0],
            vec![f64::NAN],
            vec![f64::INFINITY],
            vec![1e300],
        ] {
            assert_eq!(encode_f64(&values).0, Encoding::Plain, "{values:?}");
        }
    }

    #[test]
    fn narrow_integers_decode_straight_into_their_width_or_are_refused() {
        let narrow = |v: i64| v as i32;
        let i32s = i64::from(i32::MIN)..=i64::from(i32::MAX);
        // Frame of reference, then deltas (sorted values), every value in range.
        let spread: Vec<i64> = (0..500).map(|i| (i * 7919) % 1000 - 500).collect();
        let sorted: Vec<i64> = (0..5000).map(|i| 1_000_000 + i * 3).collect();
        for values in [&spread, &sorted] {
            let (encoding, bytes) = encode_ints(values);
            let back = decode_ints_as(
                encoding,
                &bytes,
                Rows::All(values.len()),
                i32s.clone(),
                narrow,
            )
            .unwrap();
            assert_eq!(back, values.iter().map(|&v| v as i32).collect::<Vec<_>>());
        }
        // One value past the width (first, in the middle or last), or every value from one
        // on (deltas when that is all of them).
        for at in [0, 250, 499] {
            let mut values = spread.clone();
            values[at] = i64::from(i32::MAX) + 1;
            let mut sorted = sorted.clone();
            sorted[at * 10..].iter_mut().for_each(|v| *v += 1 << 31);
            for values in [values, sorted] {
                let (encoding, bytes) = encode_ints(&values);
                let rows = Rows::All(values.len());
                let back = decode_ints_as(encoding, &bytes, rows, i32s.clone(), narrow);
                assert_eq!(back, None);
            }
        }
    }

    #[test]
    fn a_frame_inside_the_range_is_not_checked_value_by_value() {
        assert!(frame_within(-5, 3, &(-5..=2)));
        assert!(!frame_within(-5, 3, &(-5..=1)));
        assert!(!frame_within(-6, 3, &(-5..=2)));
        assert!(frame_within(i64::MIN, 64, &ALL));
        assert!(!frame_within(0, 64, &ALL));
        // A frame wider than the range, whose values all fit, decodes.
        let bytes = bitpack::pack(&[0, 1, 2], 40);
        let encoding = Encoding::For {
            reference: 10,
            width: 40,
        };
        let back = decode_ints_as(encoding, &bytes, Rows::All(3), 0..=12, |v| v as u8);
        assert_eq!(back, Some(vec![10, 11, 12]));
        assert_eq!(
            decode_ints_as(encoding, &bytes, Rows::All(3), 0..=11, |v| v as u8),
            None
        );
    }

    /// The values of `ints` divided by 10^`exponent` with a division each.
    fn divided(ints: &[i64], exponent: u8) -> Vec<u64> {
        let power = POWERS_OF_TEN[usize::from(exponent)];
        ints.iter().map(|&i| (i as f64 / power).to_bits()).collect()
    }

    /// `divide` (the fused multiply-add path, where the processor has it) against one
    /// division per value, bit for bit, for every exponent: a run of every integer around
    /// zero and a million and more spread over every magnitude below `SMALL` (where
    /// Markstein's correction is exact whatever the value, these are a check).
    #[test]
    fn divided_without_division_as_with_it() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let around_zero: Vec<i64> = (-(1 << 19)..(1 << 19)).collect();
        let spread: Vec<i64> = (0..1 << 20)
            .map(|i| ((next() >> 12) as i64 - SMALL) >> (i % 52))
            .collect();
        let edges: Vec<i64> = vec![SMALL - 1, -SMALL, -SMALL + 1, 999_999, -1_000_001];
        for exponent in 0..POWERS_OF_TEN.len() as u8 {
            for ints in [&around_zero, &spread, &edges] {
                let mut out = Vec::new();
                divide(ints, exponent, true, &mut out);
                let bits: Vec<u64> = out.iter().map(|v| v.to_bits()).collect();
                assert!(bits == divided(ints, exponent), "exponent {exponent}");
            }
        }
        // Beyond `SMALL`, the division itself.
        let large = vec![SMALL, (1 << 53) - 1, -(1 << 53) + 1];
        let mut out = Vec::new();
        divide(&large, 2, false, &mut out);
        let bits: Vec<u64> = out.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, divided(&large, 2));
    }

    #[test]
    fn scaled_blocks_decode_in_chunks() {
        // Several chunks and a short last one; a frame beyond `SMALL` too.
        for (base, exponent) in [(0i64, 2u8), (3_000_000_000_000_000, 1)] {
            let power = POWERS_OF_TEN[usize::from(exponent)];
            let values: Vec<f64> = (0..2500)
                .map(|i| (base + i * 37 % 1999) as f64 / power)
                .collect();
            let (encoding, bytes) = encode_f64(&values);
            assert!(
                matches!(encoding, Encoding::Scaled { exponent: e, .. } if e == exponent),
                "{encoding:?}"
            );
            let back = decode_scaled(encoding, &bytes, Rows::All(values.len())).unwrap();
            assert_eq!(back, values);
            let at = [0u32, 1023, 1024, 2499];
            let some = decode_scaled(encoding, &bytes, Rows::At(&at)).unwrap();
            assert_eq!(some, at.map(|i| values[i as usize]));
            assert_eq!(
                decode_scaled(encoding, &bytes[..bytes.len() - 1], Rows::All(2500)),
                None
            );
        }
    }

    #[test]
    fn ids_out_of_range_are_refused() {
        let bytes = bitpack::pack(&[0, 3, 1], 2);
        assert_eq!(decode_ids(2, &bytes, Rows::All(3), 4), Some(vec![0, 3, 1]));
        assert_eq!(decode_ids(2, &bytes, Rows::All(3), 3), None);
        assert_eq!(
            decode_ids(2, &bytes, Rows::At(&[1, 2]), 4),
            Some(vec![3, 1])
        );
        assert_eq!(decode_ids(2, &bytes, Rows::At(&[1]), 3), None);
    }

    proptest! {
        #[test]
        fn any_ints_round_trip(values in proptest::collection::vec(any::<i64>(), 0..200)) {
            ints_round_trip(&values);
        }

        #[test]
        fn any_doubles_round_trip(values in proptest::collection::vec(any::<f64>(), 1..100), cents in proptest::collection::vec(-1_000_000i64..1_000_000, 1..100)) {
            for values in [values, cents.iter().map(|c| *c as f64 / 100.0).collect()] {
                let (encoding, bytes) = encode_f64(&values);
                let back: Vec<f64> = match encoding {
                    Encoding::Plain => bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
                    _ => decode_scaled(encoding, &bytes, Rows::All(values.len())).unwrap(),
                };
                prop_assert!(back.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }

        #[test]
        fn any_reals_round_trip(values in proptest::collection::vec(any::<f32>(), 1..100)) {
            let (encoding, bytes) = encode_f32(&values);
            let back: Vec<f32> = match encoding {
                Encoding::Plain => bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                _ => decode_scaled(encoding, &bytes, Rows::All(values.len())).unwrap().into_iter().map(|v| v as f32).collect(),
            };
            prop_assert!(back.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
