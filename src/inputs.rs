//! Deterministic pseudo-random inputs, identical to `tools/ferrolite_inputs.py`.
//!
//! The CLI feeds these when no input file is given, and the golden tests regenerate the inputs
//! the reference outputs were computed from, so only outputs need to be stored.

use crate::dtype::DType;

/// splitmix64: small, fast, and easy to reproduce exactly in numpy.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Fills `out` (the little-endian bytes of a tensor of `dtype`) with the values for model input
/// `k` under `seed`: floats uniform in [-1, 1), 8- and 16-bit integers over their full range,
/// wider integers in 0..8 (safe as indices), booleans 0/1. Unsupported dtypes are zeroed.
pub fn fill(out: &mut [u8], dtype: DType, seed: u64, k: usize) {
    let mut rng = SplitMix64(
        seed.wrapping_mul(0x0000_0100_0000_01B3)
            .wrapping_add(k as u64),
    );
    let unit = |z: u64| 2.0f32 * ((z >> 40) as f32 / (1u64 << 24) as f32) - 1.0;
    match dtype {
        DType::F32 => {
            for c in out.chunks_exact_mut(4) {
                c.copy_from_slice(&unit(rng.next()).to_le_bytes());
            }
        }
        DType::F16 => {
            for c in out.chunks_exact_mut(2) {
                c.copy_from_slice(&half::f16::from_f32(unit(rng.next())).to_le_bytes());
            }
        }
        DType::U8 => out.iter_mut().for_each(|b| *b = (rng.next() >> 56) as u8),
        DType::I8 => out
            .iter_mut()
            .for_each(|b| *b = (((rng.next() >> 56) as i64 - 128) as i8) as u8),
        DType::Bool => out.iter_mut().for_each(|b| *b = (rng.next() >> 63) as u8),
        DType::I16 => {
            for c in out.chunks_exact_mut(2) {
                c.copy_from_slice(&(((rng.next() >> 48) as i64 - 32768) as i16).to_le_bytes());
            }
        }
        DType::I32 => {
            for c in out.chunks_exact_mut(4) {
                c.copy_from_slice(&((rng.next() >> 61) as i32).to_le_bytes());
            }
        }
        DType::I64 => {
            for c in out.chunks_exact_mut(8) {
                c.copy_from_slice(&((rng.next() >> 61) as i64).to_le_bytes());
            }
        }
        _ => out.fill(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_in_range_and_exact() {
        let mut buf = vec![0u8; 4 * 1000];
        fill(&mut buf, DType::F32, 0, 0);
        let v: Vec<f32> = buf
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert!(v.iter().all(|&x| (-1.0..1.0).contains(&x)));
        // 24-bit grid: every value times 2^23 is an integer.
        assert!(v.iter().all(|&x| (x * (1u32 << 23) as f32).fract() == 0.0));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.1);
    }

    #[test]
    fn streams_differ_by_input_and_seed() {
        let mut a = vec![0u8; 64];
        let mut b = vec![0u8; 64];
        let mut c = vec![0u8; 64];
        fill(&mut a, DType::U8, 0, 0);
        fill(&mut b, DType::U8, 0, 1);
        fill(&mut c, DType::U8, 1, 0);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
