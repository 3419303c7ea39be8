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

/// Unpacks `count` values of `width` bits from `bytes`, handing them to `emit` in order, a
/// few at a time. Returns `None` when `bytes` is too short or `width` is impossible.
pub fn unpack(bytes: &[u8], width: u8, count: usize, mut emit: impl FnMut(&[u64])) -> Option<()> {
    if width > 64 || bytes.len() < packed_len(count, width)? {
        return None;
    }
    let groups = count / 8;
    // Eight values take exactly `width` bytes. For the widths a value never spans more than
    // eight bytes from its first, a version per width reads each group with shifts the
    // compiler knows.
    macro_rules! by_width {
        ($($w:literal)*) => {
            match width {
                $($w => unpack_groups::<$w>(bytes, groups, &mut emit),)*
                _ => unpack_each(bytes, width, 0, groups * 8, &mut emit),
            }
        };
    }
    by_width!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
        29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56);
    unpack_each(bytes, width, groups * 8, count, &mut emit);
    Some(())
}

/// Value `index` of values of `width` bits, as [`unpack`] would give it; `None` when
/// `bytes` is too short for it or `width` is impossible.
pub fn get(bytes: &[u8], width: u8, index: usize) -> Option<u64> {
    let mask = match width {
        0..=63 => (1u64 << width) - 1,
        64 => u64::MAX,
        _ => return None,
    };
    let bit = index.checked_mul(usize::from(width))?;
    let (byte, shift) = (bit / 8, bit % 8);
    let mut value = u64::from_le_bytes(bytes.get(byte..byte + 8)?.try_into().ok()?) >> shift;
    if shift + usize::from(width) > 64 {
        value |= u64::from(*bytes.get(byte + 8)?) << (64 - shift);
    }
    Some(value & mask)
}

/// The first `groups` groups of eight values of `W` bits (at most 56).
fn unpack_groups<const W: usize>(bytes: &[u8], groups: usize, emit: &mut impl FnMut(&[u64])) {
    let mask = (1u64 << W) - 1;
    let mut values = [0u64; 8];
    // Each group and the eight bytes after it (the padding guarantees them).
    for window in (0..groups).map(|g| &bytes[g * W..g * W + W + 8]) {
        for (j, value) in values.iter_mut().enumerate() {
            let bit = j * W;
            *value = (u64::from_le_bytes(word_at(window, bit / 8)) >> (bit % 8)) & mask;
        }
        emit(&values);
    }
}

/// Values `from..to`, one at a time.
fn unpack_each(bytes: &[u8], width: u8, from: usize, to: usize, emit: &mut impl FnMut(&[u64])) {
    let mask = match width {
        64 => u64::MAX,
        w => (1u64 << w) - 1,
    };
    let width = usize::from(width);
    for i in from..to {
        let bit = i * width;
        let (byte, shift) = (bit / 8, bit % 8);
        let mut value = u64::from_le_bytes(word_at(bytes, byte)) >> shift;
        if shift + width > 64 {
            value |= u64::from(bytes[byte + 8]) << (64 - shift);
        }
        emit(&[value & mask]);
    }
}

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
        unpack(&packed, width, values.len(), |v| out.extend_from_slice(v)).unwrap();
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
        assert!(unpack(&packed[..packed.len() - 1], 2, 3, |_| {}).is_none());
        assert!(unpack(&packed, 65, 3, |_| {}).is_none());
    }

    proptest! {
        #[test]
        fn any_values_round_trip(values in proptest::collection::vec(any::<u64>(), 0..300), shift in 0u32..64) {
            let values: Vec<u64> = values.into_iter().map(|v| v >> shift).collect();
            prop_assert_eq!(round_trip(&values), values);
        }
    }
}
