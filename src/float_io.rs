//! Float access to quantized inputs and outputs, with each tensor's own parameters: what
//! `tflite_runtime` users otherwise write by hand around every quantized model.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::interpreter::{Interpreter, TensorInfo};

fn params(info: &TensorInfo, what: &str, i: usize) -> Result<(f32, i64)> {
    match &info.quantization {
        Some(q) => q.single().ok_or_else(|| {
            Error::Input(format!(
                "{what} {i} is quantized per axis; float I/O needs one scale"
            ))
        }),
        None => Err(Error::Input(format!(
            "{what} {i} ({}) has no quantization parameters",
            info.dtype
        ))),
    }
}

/// Quantizes like the reference QUANTIZE kernel: divide by the float scale, round half away
/// from zero, add the zero point, clamp to the type's range.
fn quantize(x: f32, scale: f32, zero_point: i64, lo: i64, hi: i64) -> i64 {
    let q = (x / scale).round() as i64;
    q.saturating_add(zero_point).clamp(lo, hi)
}

impl Interpreter {
    /// Writes float `values` into input `i`. A float input is copied; an int8, uint8 or int16
    /// input is quantized with its own scale and zero point.
    pub fn set_input_f32(&mut self, i: usize, values: &[f32]) -> Result<()> {
        let info = self
            .inputs()
            .get(i)
            .cloned()
            .ok_or_else(|| Error::Input(format!("input {i} does not exist")))?;
        let n: usize = info.shape.iter().product();
        if values.len() != n {
            return Err(Error::Input(format!(
                "input {i} holds {n} values, {} were given",
                values.len()
            )));
        }
        match info.dtype {
            DType::F32 => self.input_mut::<f32>(i)?.copy_from_slice(values),
            DType::I8 => {
                let (s, z) = params(&info, "input", i)?;
                let dst = self.input_mut::<i8>(i)?;
                for (d, &x) in dst.iter_mut().zip(values) {
                    *d = quantize(x, s, z, -128, 127) as i8;
                }
            }
            DType::U8 => {
                let (s, z) = params(&info, "input", i)?;
                let dst = self.input_mut::<u8>(i)?;
                for (d, &x) in dst.iter_mut().zip(values) {
                    *d = quantize(x, s, z, 0, 255) as u8;
                }
            }
            DType::I16 => {
                let (s, z) = params(&info, "input", i)?;
                let dst = self.input_mut::<i16>(i)?;
                for (d, &x) in dst.iter_mut().zip(values) {
                    *d = quantize(x, s, z, -32768, 32767) as i16;
                }
            }
            other => {
                return Err(Error::Input(format!(
                    "input {i} has dtype {other}: no float I/O"
                )))
            }
        }
        Ok(())
    }

    /// Output `i` as floats: copied if float, dequantized with its own parameters if quantized.
    pub fn output_f32(&self, i: usize) -> Result<Vec<f32>> {
        let info = self
            .outputs()
            .get(i)
            .ok_or_else(|| Error::Input(format!("output {i} does not exist")))?;
        let deq = |q: i64, s: f32, z: i64| (s as f64 * (q - z) as f64) as f32;
        Ok(match info.dtype {
            DType::F32 => self.output::<f32>(i)?.to_vec(),
            DType::F16 => self
                .output::<half::f16>(i)?
                .iter()
                .map(|x| x.to_f32())
                .collect(),
            DType::I8 => {
                let (s, z) = params(info, "output", i)?;
                self.output::<i8>(i)?
                    .iter()
                    .map(|&q| deq(q as i64, s, z))
                    .collect()
            }
            DType::U8 => {
                let (s, z) = params(info, "output", i)?;
                self.output::<u8>(i)?
                    .iter()
                    .map(|&q| deq(q as i64, s, z))
                    .collect()
            }
            DType::I16 => {
                let (s, z) = params(info, "output", i)?;
                self.output::<i16>(i)?
                    .iter()
                    .map(|&q| deq(q as i64, s, z))
                    .collect()
            }
            other => {
                return Err(Error::Input(format!(
                    "output {i} has dtype {other}: no float I/O"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::quantize;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(quantize(0.5, 1.0, 0, -128, 127), 1);
        assert_eq!(quantize(-0.5, 1.0, 0, -128, 127), -1);
        assert_eq!(quantize(2.5, 1.0, 0, -128, 127), 3);
        assert_eq!(quantize(1000.0, 1.0, 0, -128, 127), 127);
        assert_eq!(quantize(-3.0, 0.5, 10, 0, 255), 4);
        assert_eq!(quantize(f32::NAN, 1.0, 0, -128, 127), 0);
    }
}
