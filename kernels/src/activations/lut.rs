//! 256-entry lookup tables for 8-bit elementwise functions.
//!
//! Every elementwise function of one 8-bit input is a function of one of 256 values, so it
//! is evaluated once per value at preparation and run as a table lookup. Two builders:
//!
//! - [`Lut8::from_float`] reproduces TFLite's `LUTPopulate` for 8-bit types, which the
//!   reference uses for LOGISTIC, TANH, GELU, ELU, EXP and LOG: dequantize in `f32`
//!   (`scale · (q − zp)`), apply the float function, multiply by `1/out_scale`, round half
//!   away from zero, add the output zero point in `f32`, convert like x86 does (NaN and
//!   out-of-range values become `i32::MIN`), clamp.
//! - [`Lut8::from_int`] tabulates an integer formula (the fixed-point RELU, LEAKY_RELU,
//!   HARD_SWISH, ABS, RSQRT kernels) and clamps its result to the type's range.
//!
//! Tables are indexed by the raw byte of the input, for int8 and uint8 alike.

use crate::quant::fixedpoint::{f32_to_i32_x86, round_half_away_f32};
use crate::quant::{QuantElem, QuantError, QuantParams};

/// An 8-bit quantized element type whose values are stored as one byte.
pub trait ByteElem: QuantElem {
    /// The stored byte of `v`, which must lie in `[MIN, MAX]`.
    fn byte(v: i32) -> u8;
}

impl ByteElem for i8 {
    fn byte(v: i32) -> u8 {
        v as i8 as u8
    }
}

impl ByteElem for u8 {
    fn byte(v: i32) -> u8 {
        v as u8
    }
}

/// A function of one byte, as a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lut8 {
    table: [u8; 256],
}

impl Lut8 {
    /// TFLite's `LUTPopulate` for an 8-bit type `T` with input and output parameters and
    /// the float function `f`. Fails only for zero points that do not fit in `i32`.
    pub fn from_float<T: ByteElem>(
        input: QuantParams,
        output: QuantParams,
        f: impl Fn(f32) -> f32,
    ) -> Result<Self, QuantError> {
        let (in_zp, out_zp) = (input.zero_point_i32()?, output.zero_point_i32()?);
        let inverse_scale = 1.0 / output.scale;
        Ok(Self::from_int::<T>(|v| {
            let dequantized = input.scale * v.wrapping_sub(in_zp) as f32;
            let rescaled = round_half_away_f32(f(dequantized) * inverse_scale);
            f32_to_i32_x86(rescaled + out_zp as f32)
        }))
    }

    /// Tabulates `f` over the values of `T`, clamping each result to `T`'s range.
    pub fn from_int<T: ByteElem>(f: impl Fn(i32) -> i32) -> Self {
        let mut table = [0u8; 256];
        for v in T::MIN..=T::MAX {
            table[T::byte(v) as usize] = T::byte(f(v).clamp(T::MIN, T::MAX));
        }
        Self { table }
    }

    /// The output byte for input byte `b`.
    #[inline]
    pub fn get(&self, b: u8) -> u8 {
        self.table[b as usize]
    }

    /// [`Lut8::apply`] in kernel tier `isa`: the AVX2 tier looks up 32 bytes at a time.
    pub fn apply_in(&self, isa: crate::isa::Isa, input: &[u8], output: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if isa.or_generic() == crate::isa::Isa::Avx2 && input.len().min(output.len()) >= 64 {
            // SAFETY: AVX2 was just confirmed.
            unsafe { crate::x86::lut::apply(&self.table, input, output) };
            return;
        }
        let _ = isa;
        self.apply(input, output);
    }

    /// `output[i] = table[input[i]]` over the common length.
    pub fn apply(&self, input: &[u8], output: &mut [u8]) {
        for (o, &i) in output.iter_mut().zip(input) {
            *o = self.table[i as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_table_follows_lut_populate() {
        let input = QuantParams::new(0.05, 3);
        let output = QuantParams::new(1.0 / 256.0, -128);
        let lut = Lut8::from_float::<i8>(input, output, |x| 1.0 / (1.0 + (-x).exp())).unwrap();
        for q in -128i32..=127 {
            // Independent evaluation in f64, which can only differ at exact ties.
            let x = 0.05f64 * (q - 3) as f64;
            let y = 1.0 / (1.0 + (-x).exp());
            let want = ((y * 256.0).round() - 128.0).clamp(-128.0, 127.0) as i32;
            let got = lut.get(q as i8 as u8) as i8 as i32;
            assert!((got - want).abs() <= 1, "{q}: {got} vs {want}");
        }
        // sigmoid(−6.55)·256 rounds to 0 → −128; sigmoid(6.2)·256 = 255.48 → 127.
        assert_eq!(lut.get(0x80) as i8, -128);
        assert_eq!(lut.get(127) as i8, 127);
    }

    #[test]
    fn nan_and_clamping() {
        let p = QuantParams::new(0.1, 0);
        // Large values clamp to the maximum; NaN and values beyond the i32 range convert to
        // i32::MIN as on x86 and so clamp to the minimum.
        let f = |x: f32| match x {
            x if x > 1.0 => f32::NAN,
            x if x > 0.3 => x * 1e9,
            x => x * 1e3,
        };
        let lut = Lut8::from_float::<u8>(p, p, f).unwrap();
        assert_eq!(lut.get(0), 0);
        assert_eq!(lut.get(2), 255);
        assert_eq!(lut.get(5), 0);
        assert_eq!(lut.get(200), 0);
        let neg = Lut8::from_int::<i8>(|v| -v);
        assert_eq!(neg.get(0x80) as i8, 127);
        assert_eq!(neg.get(5) as i8, -5);
        let mut out = [0u8; 3];
        neg.apply(&[1, 0xff, 0], &mut out);
        assert_eq!(out, [0xff, 1, 0]);
        assert!(Lut8::from_float::<i8>(QuantParams::new(1.0, 1 << 40), p, |x| x).is_err());
    }

    /// The vector lookup gives the table's bytes for every input byte, at every offset of
    /// a block and in the tail.
    #[test]
    fn vector_lookup_matches_the_table() {
        let lut = Lut8::from_int::<i8>(|v| (v * 37 + 11) % 200 - 100);
        let input: Vec<u8> = (0..1000u32).map(|i| (i * 73 + i / 256) as u8).collect();
        for len in [0, 1, 63, 64, 65, 256, 999, 1000] {
            let mut want = vec![0u8; len];
            lut.apply(&input[..len], &mut want);
            for isa in crate::isa::Isa::available() {
                let mut got = vec![0xAAu8; len];
                lut.apply_in(isa, &input[..len], &mut got);
                assert_eq!(got, want, "{isa} len {len}");
            }
        }
    }
}
