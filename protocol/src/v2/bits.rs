//! Bit packing for protocol version 2: a writer and a reader of MSB-first bit streams, and the
//! one variable-length integer code every count, id gap and small number uses.
//!
//! Bit order: the first bit written is bit 7 (the most significant) of byte 0; a value of `n`
//! bits is written most significant bit first. The stream ends with zero bits up to a byte
//! boundary. `varu` writes an unsigned integer as groups of four bits, least significant group
//! first: a continuation bit (1 = another group follows) then three value bits. Small numbers
//! (0..=7) cost four bits, which is what id gaps, sequence steps and counts usually are.
//!
//! The reader never panics: running past the end, an over-long `varu` or a value that does not
//! fit its type is a [`BitError`].

/// Value bits per `varu` group.
const VARU_GROUP_BITS: u32 = 3;
/// Groups needed for any `u64` (22 × 3 = 66 ≥ 64).
const VARU_MAX_GROUPS: u32 = 22;

/// Why a bit stream cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BitError {
    /// The stream ended before the value did.
    #[error("packed data ends early")]
    UnexpectedEnd,
    /// A `varu` is longer than any `u64`.
    #[error("packed integer is longer than 64 bits")]
    Overlong,
    /// A number does not fit the type it is read as.
    #[error("packed number {0} is out of range")]
    OutOfRange(u64),
}

/// Appends bits to a byte vector.
///
/// Bits gather in a 64-bit accumulator that goes to the bytes eight at a time, so a value
/// costs a shift, an or and a branch (a room packs every tick).
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Written bits not yet in `bytes`: the low `pending` bits, oldest first.
    accumulator: u64,
    /// How many bits `accumulator` holds; always below 64.
    pending: u32,
}

/// The low `count` bits set (`count` ≤ 64).
#[inline]
fn low_bits(count: u32) -> u64 {
    u64::MAX.checked_shr(u64::BITS - count).unwrap_or(0)
}

impl BitWriter {
    /// A writer with room for `bytes` bytes before it grows.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Writes the low `count` bits of `value` (`count` ≤ 64), most significant first.
    #[inline]
    pub fn write_bits(&mut self, value: u64, count: u32) {
        let count = count.min(u64::BITS);
        let value = value & low_bits(count);
        let free = u64::BITS - self.pending;
        if count < free {
            self.accumulator = (self.accumulator << count) | value;
            self.pending += count;
            return;
        }
        // Fill the accumulator with the value's high bits, move it out whole, keep the rest.
        let rest = count - free;
        let head = value >> rest;
        let full = if free == u64::BITS {
            head
        } else {
            (self.accumulator << free) | head
        };
        self.bytes.extend_from_slice(&full.to_be_bytes());
        self.accumulator = value & low_bits(rest);
        self.pending = rest;
    }

    /// Writes one bit.
    #[inline]
    pub fn write_bool(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes `value` as a `varu` (see the module doc): its groups are gathered into one code
    /// and written at once.
    #[inline]
    pub fn write_varu(&mut self, value: u64) {
        const GROUP_MASK: u64 = (1 << VARU_GROUP_BITS) - 1;
        const CODE_BITS: u32 = VARU_GROUP_BITS + 1;
        const CONTINUE: u64 = 1 << VARU_GROUP_BITS;
        // Most numbers sent are ids gaps, counts and steps below 64: one or two groups.
        if value <= GROUP_MASK {
            self.write_bits(value, CODE_BITS);
            return;
        }
        if value >> (2 * VARU_GROUP_BITS) == 0 {
            let first = CONTINUE | (value & GROUP_MASK);
            let second = value >> VARU_GROUP_BITS;
            self.write_bits((first << CODE_BITS) | second, 2 * CODE_BITS);
            return;
        }
        let mut rest = value;
        let mut code = 0u64;
        let mut groups = 0u32;
        loop {
            let group = rest & GROUP_MASK;
            rest >>= VARU_GROUP_BITS;
            let more = rest != 0;
            code = (code << CODE_BITS) | (u64::from(more) << VARU_GROUP_BITS) | group;
            groups += 1;
            // 16 groups fill the code; a longer number (over 48 bits) goes out in parts.
            if !more || groups == u64::BITS / CODE_BITS {
                self.write_bits(code, groups * CODE_BITS);
                if !more {
                    return;
                }
                code = 0;
                groups = 0;
            }
        }
    }

    /// Writes a byte string: its length as a `varu`, then its bytes (not aligned).
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_varu(bytes.len() as u64);
        for byte in bytes {
            self.write_bits(u64::from(*byte), 8);
        }
    }

    /// Writes strictly increasing ids: the count, the first id, then each gap minus one.
    pub fn write_ascending(&mut self, ids: impl ExactSizeIterator<Item = u64>) {
        self.write_varu(ids.len() as u64);
        let mut next_free = 0u64;
        for id in ids {
            self.write_varu(id.wrapping_sub(next_free));
            next_free = id.wrapping_add(1);
        }
    }

    /// The stream, padded with zero bits to a whole byte.
    pub fn finish(mut self) -> Vec<u8> {
        let whole_bytes = self.pending.div_ceil(8);
        let padded = self.accumulator << (whole_bytes * 8 - self.pending);
        let start = (u64::BITS / 8 - whole_bytes) as usize;
        self.bytes.extend_from_slice(&padded.to_be_bytes()[start..]);
        self.bytes
    }
}

/// Reads a bit stream written by [`BitWriter`].
#[derive(Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits from the start.
    position: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Bits left to read, padding included.
    pub fn remaining_bits(&self) -> usize {
        (self.bytes.len() * 8).saturating_sub(self.position)
    }

    /// Reads `count` bits (≤ 64) as an unsigned number.
    pub fn read_bits(&mut self, count: u32) -> Result<u64, BitError> {
        if count as usize > self.remaining_bits() {
            return Err(BitError::UnexpectedEnd);
        }
        let mut value = 0u64;
        let mut remaining = count;
        while remaining > 0 {
            let byte = self.bytes[self.position / 8];
            let offset = (self.position % 8) as u32;
            let take = (8 - offset).min(remaining);
            let chunk = (u64::from(byte) >> (8 - offset - take)) & ((1u64 << take) - 1);
            value = (value << take) | chunk;
            self.position += take as usize;
            remaining -= take;
        }
        Ok(value)
    }

    /// Reads one bit.
    pub fn read_bool(&mut self) -> Result<bool, BitError> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Reads a `varu`.
    pub fn read_varu(&mut self) -> Result<u64, BitError> {
        let mut value = 0u64;
        for group_index in 0..VARU_MAX_GROUPS {
            let group = self.read_bits(4)?;
            let bits = group & ((1 << VARU_GROUP_BITS) - 1);
            let shift = group_index * VARU_GROUP_BITS;
            let shifted = bits.checked_shl(shift).filter(|s| s >> shift == bits);
            value |= shifted.ok_or(BitError::Overlong)?;
            if group >> VARU_GROUP_BITS == 0 {
                return Ok(value);
            }
        }
        Err(BitError::Overlong)
    }

    /// Reads a `varu` that must fit in `u32`.
    pub fn read_varu32(&mut self) -> Result<u32, BitError> {
        let value = self.read_varu()?;
        u32::try_from(value).map_err(|_| BitError::OutOfRange(value))
    }

    /// Reads a count of items of at least `min_bits` bits each; a count the rest of the stream
    /// cannot hold is refused, so a hostile count never causes a large allocation.
    pub fn read_count(&mut self, min_bits: usize) -> Result<usize, BitError> {
        let count = self.read_varu()?;
        let fits = usize::try_from(count)
            .ok()
            .filter(|count| count.saturating_mul(min_bits.max(1)) <= self.remaining_bits());
        fits.ok_or(BitError::UnexpectedEnd)
    }

    /// Reads a byte string written by [`BitWriter::write_bytes`].
    pub fn read_bytes(&mut self) -> Result<Vec<u8>, BitError> {
        let len = self.read_count(8)?;
        (0..len).map(|_| Ok(self.read_bits(8)? as u8)).collect()
    }

    /// Reads ids written by [`BitWriter::write_ascending`].
    pub fn read_ascending(&mut self) -> Result<Vec<u64>, BitError> {
        let count = self.read_count(4)?;
        let mut ids = Vec::with_capacity(count);
        // `None` once an id was `u64::MAX`: no larger id can follow.
        let mut next_free = Some(0u64);
        for _ in 0..count {
            let gap = self.read_varu()?;
            let id = next_free
                .and_then(|free| free.checked_add(gap))
                .ok_or(BitError::OutOfRange(gap))?;
            ids.push(id);
            next_free = id.checked_add(1);
        }
        Ok(ids)
    }

    /// Checks that only zero padding (less than a byte) is left.
    pub fn finish(self) -> Result<(), BitError> {
        let rest = self.remaining_bits();
        if rest >= 8 {
            return Err(BitError::OutOfRange(rest as u64));
        }
        let mut reader = self;
        match reader.read_bits(rest as u32)? {
            0 => Ok(()),
            padding => Err(BitError::OutOfRange(padding)),
        }
    }
}

/// Bits needed to write every number in `0..=max`.
pub fn bits_for(max: u64) -> u32 {
    u64::BITS - max.leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bits_are_written_most_significant_first() {
        let mut writer = BitWriter::default();
        writer.write_bits(0b101, 3);
        writer.write_bits(0b11, 2);
        assert_eq!(writer.finish(), vec![0b1011_1000]);
    }

    #[test]
    fn small_varu_costs_four_bits() {
        let mut writer = BitWriter::default();
        writer.write_varu(5);
        writer.write_varu(9);
        // 5 → 0101; 9 → 1001 (more, 001) 0001 (last, 001)
        assert_eq!(writer.finish(), vec![0b0101_1001, 0b0001_0000]);
    }

    #[test]
    fn overlong_varu_is_refused() {
        let bytes = [0xff; 16];
        assert_eq!(BitReader::new(&bytes).read_varu(), Err(BitError::Overlong));
    }

    #[test]
    fn a_count_the_stream_cannot_hold_is_refused() {
        let mut writer = BitWriter::default();
        writer.write_varu(1 << 40);
        let bytes = writer.finish();
        assert_eq!(
            BitReader::new(&bytes).read_count(1),
            Err(BitError::UnexpectedEnd)
        );
    }

    #[test]
    fn bits_for_counts_the_highest_bit() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(1), 1);
        assert_eq!(bits_for(20_000), 15);
        assert_eq!(bits_for(u64::MAX), 64);
    }

    proptest! {
        #[test]
        fn everything_written_reads_back(values in prop::collection::vec((any::<u64>(), 1u32..=64), 0..20)) {
            let mut writer = BitWriter::default();
            for (value, count) in &values {
                writer.write_bits(*value, *count);
                writer.write_varu(*value);
            }
            let bytes = writer.finish();
            let mut reader = BitReader::new(&bytes);
            for (value, count) in &values {
                let mask = if *count == 64 { u64::MAX } else { (1 << count) - 1 };
                prop_assert_eq!(reader.read_bits(*count), Ok(value & mask));
                prop_assert_eq!(reader.read_varu(), Ok(*value));
            }
            prop_assert_eq!(reader.finish(), Ok(()));
        }

        #[test]
        fn small_numbers_read_back(values in prop::collection::vec(0u64..600, 0..40)) {
            let mut writer = BitWriter::default();
            for value in &values {
                writer.write_varu(*value);
                writer.write_bool(value % 2 == 1);
            }
            let bytes = writer.finish();
            let mut reader = BitReader::new(&bytes);
            for value in &values {
                prop_assert_eq!(reader.read_varu(), Ok(*value));
                prop_assert_eq!(reader.read_bool(), Ok(value % 2 == 1));
            }
            prop_assert_eq!(reader.finish(), Ok(()));
        }

        #[test]
        fn ascending_ids_read_back(mut ids in prop::collection::btree_set(any::<u64>(), 0..20)) {
            let ids: Vec<u64> = std::mem::take(&mut ids).into_iter().collect();
            let mut writer = BitWriter::default();
            writer.write_ascending(ids.iter().copied());
            let bytes = writer.finish();
            prop_assert_eq!(BitReader::new(&bytes).read_ascending(), Ok(ids));
        }
    }
}
