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

/// Decodes `count` integers written by [`encode_ints`] (or scaled floats' integers).
pub fn decode_ints(encoding: Encoding, bytes: &[u8], count: usize) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(count);
    match encoding {
        Encoding::For { reference, width }
        | Encoding::Scaled {
            reference, width, ..
        } => bitpack::unpack(bytes, width, count, |v| {
            out.extend(v.iter().map(|&v| reference.wrapping_add(v as i64)))
        })?,
        Encoding::Delta { first, width } => {
            let mut value = first;
            let mut first_row = true;
            bitpack::unpack(bytes, width, count, |v| {
                for &v in v {
                    if !first_row {
                        value = value.wrapping_add(unzigzag(v));
                    }
                    first_row = false;
                    out.push(value);
                }
            })?
        }
        _ => return None,
    }
    Some(out)
}

/// Decodes `count` dictionary ids, refusing any that is not below `dictionary_len`.
pub fn decode_ids(width: u8, bytes: &[u8], count: usize, dictionary_len: u32) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(count);
    let mut in_range = true;
    bitpack::unpack(bytes, width, count, |v| {
        in_range &= v.iter().all(|&v| v < u64::from(dictionary_len));
        out.extend(v.iter().map(|&v| v as u32));
    })?;
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
pub fn decode_scaled(encoding: Encoding, bytes: &[u8], count: usize) -> Option<Vec<f64>> {
    let Encoding::Scaled { exponent, .. } = encoding else {
        return None;
    };
    let power = *POWERS_OF_TEN.get(usize::from(exponent))?;
    let ints = decode_ints(encoding, bytes, count)?;
    Some(ints.into_iter().map(|i| i as f64 / power).collect())
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
        assert_eq!(decode_ints(encoding, &bytes, values.len()).unwrap(), values);
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
        let back = decode_scaled(encoding, &bytes, prices.len()).unwrap();
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
    fn ids_out_of_range_are_refused() {
        let bytes = bitpack::pack(&[0, 3, 1], 2);
        assert_eq!(decode_ids(2, &bytes, 3, 4), Some(vec![0, 3, 1]));
        assert_eq!(decode_ids(2, &bytes, 3, 3), None);
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
                    _ => decode_scaled(encoding, &bytes, values.len()).unwrap(),
                };
                prop_assert!(back.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }

        #[test]
        fn any_reals_round_trip(values in proptest::collection::vec(any::<f32>(), 1..100)) {
            let (encoding, bytes) = encode_f32(&values);
            let back: Vec<f32> = match encoding {
                Encoding::Plain => bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                _ => decode_scaled(encoding, &bytes, values.len()).unwrap().into_iter().map(|v| v as f32).collect(),
            };
            prop_assert!(back.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
