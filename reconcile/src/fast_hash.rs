//! A fast, unkeyed hasher for the join's maps (the Fx hash of rustc, with
//! a finaliser).
//!
//! Unkeyed is safe here: every key *inserted* comes from the ledger (the
//! proxy's own request ids, the upstream's request ids, principal and
//! bucket names of authenticated requests); what AWS's logs bring is only
//! looked up, and lookups cannot make a table degrade. std's `SipHash` cost a
//! tenth of a run's time.

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The Fx hash: a rotate, a xor and a multiply per word.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    /// Mixed once more (murmur3's finaliser): the multiply alone leaves
    /// the low bits, which pick the bucket, to the low bits of the input,
    /// and request ids differ in their high bytes.
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_differ_in_high_bytes_spread_over_the_low_bits() {
        // Upstream request ids: hex text that differs late in each word.
        let mut low = std::collections::HashSet::new();
        for i in 0..4096u32 {
            let mut h = FxHasher::default();
            h.write(format!("{i:016X}").as_bytes());
            low.insert(h.finish() & 0xfff);
        }
        assert!(low.len() > 2000, "{} distinct low 12 bits of 4096", low.len());
    }

    #[test]
    fn strings_that_differ_in_their_tail_hash_apart() {
        let mut map: FastMap<Box<str>, u32> = FastMap::default();
        for i in 0..10_000u32 {
            map.insert(format!("0000000000000000{i}").into(), i);
        }
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.get("00000000000000009999"), Some(&9999));
    }
}
