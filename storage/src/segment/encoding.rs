//! How one block of a column's values becomes bytes, and back.
//!
//! Integers (and everything stored as integers: dates, timestamps, numerics that fit in 64
//! bits, dictionary ids) are bit-packed after subtracting a reference (frame of reference) or
//! as zig-zagged differences from the previous value (delta, chosen when narrower: sorted time
//! columns). Floating-point values that are decimals in disguise (prices such as `12.34`) are
//! scaled to integers by a power of ten and packed the same way, but only when the decoder's
//! arithmetic gives back every value bit for bit; anything else is stored plain.

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
/// block is undecodable, `convert` refuses a value (out of range), or `rows` picks values
/// of an encoding that cannot be decoded alone.
pub fn decode_ints_as<T>(
    encoding: Encoding,
    bytes: &[u8],
    rows: Rows,
    convert: impl Fn(i64) -> Option<T>,
) -> Option<Vec<T>> {
    let mut out = Vec::with_capacity(rows.len());
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
                out.push(convert(reference.wrapping_add(v as i64))?);
            }
        }
        (
            Encoding::For { reference, width }
            | Encoding::Scaled {
                reference, width, ..
            },
            Rows::All(count),
        ) => bitpack::unpack(bytes, width, count, |v| {
            // A refused value stops the block short: caught by the length below.
            out.extend(
                v.iter()
                    .map_while(|&v| convert(reference.wrapping_add(v as i64))),
            )
        })?,
        (Encoding::Delta { first, width }, Rows::All(count)) => {
            let mut value = first;
            let mut first_row = true;
            bitpack::unpack(bytes, width, count, |v| {
                for &v in v {
                    if !first_row {
                        value = value.wrapping_add(unzigzag(v));
                    }
                    first_row = false;
                    match convert(value) {
                        Some(converted) => out.push(converted),
                        None => return,
                    }
                }
            })?
        }
        _ => return None,
    }
    (out.len() == rows.len()).then_some(out)
}

/// Decodes `count` dictionary ids, refusing any that is not below `dictionary_len`.
pub fn decode_ids(width: u8, bytes: &[u8], rows: Rows, dictionary_len: u32) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut in_range = true;
    match rows {
        Rows::All(count) => bitpack::unpack(bytes, width, count, |v| {
            in_range &= v.iter().all(|&v| v < u64::from(dictionary_len));
            out.extend(v.iter().map(|&v| v as u32));
        })?,
        Rows::At(at) => {
            for &i in at {
                let v = bitpack::get(bytes, width, i as usize)?;
                in_range &= v < u64::from(dictionary_len);
                out.push(v as u32);
            }
        }
    }
    in_range.then_some(out)
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
pub fn decode_scaled(encoding: Encoding, bytes: &[u8], rows: Rows) -> Option<Vec<f64>> {
    let Encoding::Scaled { exponent, .. } = encoding else {
        return None;
    };
    let power = *POWERS_OF_TEN.get(usize::from(exponent))?;
    decode_ints_as(encoding, bytes, rows, |i| Some(i as f64 / power))
}

/// [`decode_scaled`] of reals, straight into `f32`s.
pub fn decode_scaled_f32(encoding: Encoding, bytes: &[u8], rows: Rows) -> Option<Vec<f32>> {
    let Encoding::Scaled { exponent, .. } = encoding else {
        return None;
    };
    let power = *POWERS_OF_TEN.get(usize::from(exponent))?;
    decode_ints_as(encoding, bytes, rows, |i| Some((i as f64 / power) as f32))
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

    fn ints_round_trip(values: &[i64]) -> Encoding {
        let (encoding, bytes) = encode_ints(values);
        assert_eq!(
            decode_ints_as(encoding, &bytes, Rows::All(values.len()), Some).unwrap(),
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
        let narrow = |v: i64| i32::try_from(v).ok();
        // Frame of reference, then deltas (sorted values), every value in range.
        let spread: Vec<i64> = (0..500).map(|i| (i * 7919) % 1000 - 500).collect();
        let sorted: Vec<i64> = (0..5000).map(|i| 1_000_000 + i * 3).collect();
        for values in [&spread, &sorted] {
            let (encoding, bytes) = encode_ints(values);
            let back = decode_ints_as(encoding, &bytes, Rows::All(values.len()), narrow).unwrap();
            assert_eq!(back, values.iter().map(|&v| v as i32).collect::<Vec<_>>());
        }
        // One value past the width (first, in the middle or last), or every value from one
        // on (deltas when that is all of them).
        for at in [0, 250, 499] {
            let mut values = spread.clone();
            values[at] = i64::from(i32::MAX) + 1;
            let (encoding, bytes) = encode_ints(&values);
            assert_eq!(
                decode_ints_as(encoding, &bytes, Rows::All(values.len()), narrow),
                None
            );
            let mut values = sorted.clone();
            values[at * 10..].iter_mut().for_each(|v| *v += 1 << 31);
            let (encoding, bytes) = encode_ints(&values);
            assert_eq!(
                decode_ints_as(encoding, &bytes, Rows::All(values.len()), narrow),
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
