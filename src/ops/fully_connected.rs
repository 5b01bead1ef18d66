//! FULLY_CONNECTED.

use ferrolite_kernels::gemm::{self, PackedB};

use super::conv::clamp;
use super::{cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::OpOptions;

/// Shapes of one FULLY_CONNECTED: the input is flattened to `[rows, depth]`.
pub(super) struct Shape {
    pub rows: usize,
    pub depth: usize,
    pub units: usize,
}

pub(super) fn prepare(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 3, 1)?;
    let OpOptions::FullyConnected(o) = &ctx.op.options else {
        return Err(ctx.invalid("missing FullyConnectedOptions"));
    };
    if o.shuffled_weights {
        return Err(ctx.unsupported("the shuffled 4x16 int8 weights format"));
    }
    let (input, weights, output) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    if weights.shape.len() != 2 {
        return Err(ctx.invalid(format!(
            "weights must be 2-D, have shape {:?}",
            weights.shape
        )));
    }
    let (units, depth) = (weights.shape[0], weights.shape[1]);
    if depth == 0 || input.numel % depth != 0 {
        return Err(ctx.invalid(format!(
            "input of {} elements does not split into rows of {depth}",
            input.numel
        )));
    }
    let rows = input.numel / depth;
    let want: Vec<usize> =
        if o.keep_num_dims {
            let mut s = input.shape.clone();
            match s.last_mut() {
                Some(last) if *last == depth => *last = units,
                _ => return Err(ctx.invalid(
                    "keep_num_dims needs the input's last dimension to equal the weights' depth",
                )),
            }
            s
        } else {
            vec![rows, units]
        };
    ctx.set_output_shape(0, &want)?;
    let shape = Shape { rows, depth, units };
    match (input.dtype, weights.dtype, output.dtype) {
        (DType::F32, DType::F32, DType::F32) => {
            let w = super::conv::const_f32(ctx, 1)?
                .ok_or_else(|| ctx.unsupported("non-constant weights"))?;
            let bias = match ctx.input_opt(2) {
                None => None,
                Some(b) if b.dtype == DType::F32 && b.numel == units => Some(
                    ctx.const_vec::<f32>(2)?
                        .ok_or_else(|| ctx.unsupported("a non-constant bias"))?,
                ),
                Some(b) => {
                    return Err(ctx.invalid(format!(
                        "bias of {} {} values for {units} units",
                        b.numel, b.dtype
                    )))
                }
            };
            let packed = PackedB::from_transposed(&w, units, depth, ctx.isa);
            Ok(Prepared::Kernel(Box::new(FullyConnectedF32 {
                rows,
                packed,
                bias,
                clamp: clamp(o.activation),
            })))
        }
        _ => super::quant_fc::prepare(ctx, &shape, o),
    }
}

struct FullyConnectedF32 {
    rows: usize,
    packed: PackedB,
    bias: Option<Vec<f32>>,
    clamp: ferrolite_kernels::activation::Clamp,
}

impl Kernel for FullyConnectedF32 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.get::<f32>(0)?;
        let out = cast_mut::<f32>(e.output)?;
        gemm::fully_connected_f32(
            input,
            self.rows,
            &self.packed,
            self.bias.as_deref(),
            self.clamp,
            out,
            e.threads,
        );
        Ok(())
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }

    fn persistent_bytes(&self) -> usize {
        self.packed.byte_size() + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }
}
