//! Bit-packing: unsigned integers stored in exactly as many bits as the largest one needs.
//!
//! Values are laid out least significant bit first, one after another with no gaps, and the
//! packed bytes end in [`PADDING`] zero bytes so the decoder can always read a whole word.

/// Zero bytes after the packed bits, so every read of a 64-bit word stays in bounds.
pub const PADDING: usize = 9;

/// The number of bits needed to store `max`.
pub fn width_for(max: u64) -> u8 {
    (64 - max.leading_zeros()) as u8
}

/// The length in bytes of `count` values packed at `width` bits, padding included.
pub fn packed_len(count: usize, width: u8) -> Option<usize> {
    count
        .checked_mul(usize::from(width))?
        .div_ceil(8)
        .checked_add(PADDING)
}

/// Packs `values` at `width` bits each; every value must fit in `width` bits.
pub fn pack(values: &[u64], width: u8) -> Vec<u8> {
    let len = packed_len(values.len(), width).unwrap_or(PADDING);
    let mut out = vec![0u8; len];
    if width == 0 {
        return out;
    }
    let width = usize::from(width);
    for (i, &value) in values.iter().enumerate() {
        let bit = i * width;
        let (byte, shift) = (bit / 8, bit % 8);
        let word = u64::from_le_bytes(word_at(&out, byte)) | (value << shift);
        out[byte..byte + 8].copy_from_slice(&word.to_le_bytes());
        if shift + width > 64 {
            out[byte + 8] |= (value >> (64 - shift)) as u8;
        }
    }
    out
}

/// Unpacks `count` values of `width` bits from `bytes`, appending `map` of each, in order,
/// to `out`. One loop per width, whose shifts the compiler knows, and `out` checked for room
/// once (not a call and a capacity check per few values). Returns `None` when `bytes` is
/// too short or `width` is impossible.
pub fn unpack_into<T>(
    bytes: &[u8],
    width: u8,
    count: usize,
    out: &mut Vec<T>,
    mut map: impl FnMut(u64) -> T,
) -> Option<()> {
    if width > 64 || bytes.len() < packed_len(count, width)? {
        return None;
    }
    out.reserve(count);
    let groups = count / 8;
    macro_rules! by_width {
        ($($w:literal)*) => {
            match width {
                $($w => out.extend((0..groups).flat_map(|g| group::<$w, T>(bytes, g, &mut map))),)*
                _ => out.extend((0..groups * 8).map(|i| map(value_spanning(bytes, width, i)))),
            }
        };
    }
    by_width!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
        29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56);
    out.extend((groups * 8..count).map(|i| map(value_spanning(bytes, width, i))));
    Some(())
}

/// Group `g` of eight values of `W` bits (at most 56, so a value lies in the eight bytes
/// from its first), mapped. The eight take exactly `W` bytes; reading them from one slice
/// with shifts the compiler knows is four times as fast as value by value, whose shifts
/// vary. `bytes` must hold the group and the padding.
#[inline(always)]
fn group<const W: usize, T>(bytes: &[u8], g: usize, map: &mut impl FnMut(u64) -> T) -> [T; 8] {
    let mask = (1u64 << W) - 1;
    let window = &bytes[g * W..g * W + W + 8];
    std::array::from_fn(|j| {
        let bit = j * W;
        map((u64::from_le_bytes(word_at(window, bit / 8)) >> (bit % 8)) & mask)
    })
}

/// Value `i` of values of any `width`.
#[inline(always)]
fn value_spanning(bytes: &[u8], width: u8, i: usize) -> u64 {
    let mask = match width {
        64 => u64::MAX,
        w => (1u64 << w) - 1,
    };
    let width = usize::from(width);
    let bit = i * width;
    let (byte, shift) = (bit / 8, bit % 8);
    let mut value = u64::from_le_bytes(word_at(bytes, byte)) >> shift;
    if shift + width > 64 {
        value |= u64::from(bytes[byte + 8]) << (64 - shift);
    }
    value & mask
}

/// Value `index` of values of `width` bits, as [`unpack_into`] would give it; `None` when
/// `bytes` is too short for it or `width` is impossible.
pub fn get(bytes: &[u8], width: u8, index: usize) -> Option<u64> {
    if width > 64 || bytes.len() < packed_len(index.checked_add(1)?, width)? {
        return None;
    }
    Some(value_spanning(bytes, width, index))
}

#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    word
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[u64]) -> Vec<u64> {
        let width = width_for(values.iter().copied().max().unwrap_or(0));
        let packed = pack(values, width);
        assert_eq!(packed.len(), packed_len(values.len(), width).unwrap());
        let mut out = Vec::new();
        unpack_into(&packed, width, values.len(), &mut out, |v| v).unwrap();
        out
    }

    proptest! {
        #[test]
        fn any_value_is_got_alone(values in proptest::collection::vec(any::<u64>(), 1..100), width in 0u8..=64) {
            let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
            let values: Vec<u64> = values.iter().map(|v| v & mask).collect();
            let packed = pack(&values, width);
            for (i, &v) in values.iter().enumerate() {
                prop_assert_eq!(get(&packed, width, i), Some(v));
            }
        }
    }

    #[test]
    fn widths() {
        assert_eq!(width_for(0), 0);
        assert_eq!(width_for(1), 1);
        assert_eq!(width_for(255), 8);
        assert_eq!(width_for(256), 9);
        assert_eq!(width_for(u64::MAX), 64);
    }

    #[test]
    fn every_width_round_trips() {
        for width in 0..=64u8 {
            let max = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width).wrapping_sub(1)
            };
            let values: Vec<u64> = (0..200u64)
                .map(|i| max.wrapping_sub(i * 7919) & max)
                .collect();
            assert_eq!(round_trip(&values), values, "width {width}");
        }
    }

    #[test]
    fn short_input_is_refused() {
        let packed = pack(&[1, 2, 3], 2);
        let mut out = Vec::new();
        assert!(unpack_into(&packed[..packed.len() - 1], 2, 3, &mut out, |v| v).is_none());
        assert!(unpack_into(&packed, 65, 3, &mut out, |v| v).is_none());
        assert!(get(&packed[..packed.len() - 1], 2, 2).is_none());
        assert_eq!(get(&packed, 2, 2), Some(3));
    }

    proptest! {
        #[test]
        fn any_values_round_trip(values in proptest::collection::vec(any::<u64>(), 0..300), shift in 0u32..=64) {
            let values: Vec<u64> = values.into_iter().map(|v| v.checked_shr(shift).unwrap_or(0)).collect();
            prop_assert_eq!(round_trip(&values), values);
        }
    }
}
