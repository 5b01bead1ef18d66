//! CONCATENATION and PACK: the inputs side by side along one axis (a new one for PACK).
//!
//! With `outer` positions before the axis, input `i` contributes one block of `chunk_i`
//! elements to each of the `outer` output rows. uint8 inputs whose quantization differs from
//! the output's are rescaled the way the reference's `ConcatenationWithScaling` does (in
//! float); int8 inputs must share the output's quantization (the reference's int8 kernel has
//! no rescaling and its preparation demands equal parameters).

use ferrolite_kernels::layout::{copy_blocks, RescaleU8};

use super::super::{Eval, Kernel, PrepareCtx, Prepared};
use super::{elem_size, kernel_or_fold, numel, params_of, run_err, same_dtype, same_params};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::options::{Activation, OpOptions};

/// One input's place in each output row.
struct Part {
    /// Elements per row.
    chunk: usize,
    /// Element offset within the output row.
    offset: usize,
    rescale: Option<RescaleU8>,
}

struct Concat {
    parts: Vec<Part>,
    outer: usize,
    /// Elements per output row.
    row: usize,
    esize: usize,
    loc: String,
}

impl Kernel for Concat {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let es = self.esize;
        for (k, p) in self.parts.iter().enumerate() {
            if p.chunk == 0 || self.outer == 0 {
                continue;
            }
            let src = e.inputs.bytes(k)?;
            match &p.rescale {
                None => copy_blocks(
                    src,
                    0,
                    p.chunk * es,
                    &mut *e.output,
                    p.offset * es,
                    self.row * es,
                    self.outer,
                    p.chunk * es,
                )
                .map_err(|err| run_err(&self.loc, err))?,
                Some(r) => {
                    for o in 0..self.outer {
                        let s = src.get(o * p.chunk..(o + 1) * p.chunk);
                        let start = o * self.row + p.offset;
                        let d = e.output.get_mut(start..start + p.chunk);
                        let (Some(s), Some(d)) = (s, d) else {
                            return Err(Error::Internal(format!(
                                "{}: concatenation block out of range",
                                self.loc
                            )));
                        };
                        r.run(s, d).map_err(|err| run_err(&self.loc, err))?;
                    }
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn prepare_concat(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::Concatenation { axis, activation } = &ctx.op.options else {
        return Err(ctx.invalid("missing ConcatenationOptions"));
    };
    ctx.expect_arity(1, usize::MAX, 1)?;
    if *activation != Activation::None {
        return Err(ctx.unsupported(format!(
            "fused activation {activation:?} on CONCATENATION (the reference refuses it too)"
        )));
    }
    let t0 = ctx.input(0)?;
    let out = ctx.output(0)?;
    same_dtype(ctx, out, t0, "output")?;
    let esize = elem_size(ctx, t0)?;
    // Scalars concatenate into a vector (the reference allows axis 0 there).
    let rank = t0.shape.len();
    let as_shape = |s: &[usize]| if s.is_empty() { vec![1] } else { s.to_vec() };
    let axis = if rank == 0 {
        if *axis != 0 {
            return Err(ctx.invalid(format!("axis {axis} is out of range for scalars")));
        }
        0
    } else {
        super::axis_index(ctx, i64::from(*axis), rank, "axis")?
    };
    let base = as_shape(&t0.shape);
    let n = ctx.op.inputs.len();
    let mut total = 0usize;
    let mut dims = Vec::with_capacity(n);
    for k in 0..n {
        let t = ctx.input(k)?;
        same_dtype(ctx, t, t0, &format!("input {k}"))?;
        let shape = as_shape(&t.shape);
        if t.shape.len() != rank
            || shape
                .iter()
                .zip(&base)
                .enumerate()
                .any(|(d, (a, b))| d != axis && a != b)
        {
            return Err(ctx.invalid(format!(
                "input {k} shape {:?} does not match input 0 shape {:?} off axis {axis}",
                t.shape, t0.shape
            )));
        }
        dims.push(shape[axis]);
        total = total
            .checked_add(shape[axis])
            .ok_or_else(|| ctx.invalid("concatenated size overflows"))?;
    }
    let mut out_shape = base.clone();
    out_shape[axis] = total;
    ctx.set_output_shape(0, &out_shape)?;
    let outer = numel(ctx, &base[..axis])?;
    let inner = numel(ctx, &base[axis + 1..])?;
    let (out_scale, out_zp) = params_of(out);
    let mut parts = Vec::with_capacity(n);
    let mut offset = 0;
    for (k, &d) in dims.iter().enumerate() {
        let t = ctx.input(k)?;
        let rescale = match t0.dtype {
            DType::I8 => {
                same_params(ctx, t, out, &format!("input {k}"))?;
                None
            }
            DType::I16 => {
                if params_of(t).1 != 0 || out_zp != 0 {
                    return Err(ctx.invalid("int16 inputs and output need zero point 0"));
                }
                None
            }
            DType::U8 if params_of(t) != params_of(out) => {
                let (s, z) = params_of(t);
                let zp =
                    |v: i64| i32::try_from(v).map_err(|_| ctx.invalid("zero point out of range"));
                Some(RescaleU8::new(s, zp(z)?, out_scale, zp(out_zp)?))
            }
            _ => None,
        };
        parts.push(Part {
            chunk: d * inner,
            offset: offset * inner,
            rescale,
        });
        offset += d;
    }
    let kernel = Concat {
        parts,
        outer,
        row: total * inner,
        esize,
        loc: ctx.loc().to_string(),
    };
    kernel_or_fold(ctx, Box::new(kernel))
}

/// PACK: `values_count` equally shaped inputs stacked along a new axis.
pub(crate) fn prepare_pack(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    let OpOptions::Pack { values_count, axis } = &ctx.op.options else {
        return Err(ctx.invalid("missing PackOptions"));
    };
    let n = ctx.op.inputs.len();
    if usize::try_from(*values_count).ok() != Some(n) || n == 0 {
        return Err(ctx.invalid(format!("values_count {values_count} but {n} inputs")));
    }
    ctx.expect_arity(n, n, 1)?;
    let t0 = ctx.input(0)?;
    let out = ctx.output(0)?;
    same_dtype(ctx, out, t0, "output")?;
    let esize = elem_size(ctx, t0)?;
    let axis = super::axis_index(ctx, i64::from(*axis), t0.shape.len() + 1, "axis")?;
    for k in 0..n {
        let t = ctx.input(k)?;
        same_dtype(ctx, t, t0, &format!("input {k}"))?;
        if t.shape != t0.shape {
            return Err(ctx.invalid(format!(
                "input {k} shape {:?} differs from input 0 shape {:?}",
                t.shape, t0.shape
            )));
        }
        same_params(ctx, t, out, &format!("input {k}"))?;
    }
    let mut out_shape = t0.shape.clone();
    out_shape.insert(axis, n);
    ctx.set_output_shape(0, &out_shape)?;
    let outer = numel(ctx, &t0.shape[..axis])?;
    let chunk = numel(ctx, &t0.shape[axis..])?;
    let parts = (0..n)
        .map(|k| Part {
            chunk,
            offset: k * chunk,
            rescale: None,
        })
        .collect();
    let kernel = Concat {
        parts,
        outer,
        row: n * chunk,
        esize,
        loc: ctx.loc().to_string(),
    };
    kernel_or_fold(ctx, Box::new(kernel))
}
