//! Activations and unary math: the RELU family, LEAKY_RELU, LOGISTIC, TANH, HARD_SWISH,
//! GELU, ELU, PRELU, EXP, LOG, SQRT, RSQRT, SQUARE, ABS, NEG, FLOOR, CEIL, ROUND, SIN, COS.
//!
//! Every 8-bit quantized unary op runs as a 256-entry table built here at preparation, from
//! the reference's float formula (LOGISTIC, TANH, GELU, ELU, EXP, LOG) or from its
//! fixed-point formula (RELU family, LEAKY_RELU, HARD_SWISH, ABS, SQRT, RSQRT). PRELU has
//! a second operand and runs its formula per element.

use ferrolite_kernels::activation::Clamp;
use ferrolite_kernels::activations::lut::{ByteElem, Lut8};
use ferrolite_kernels::activations::quant::{
    AbsQuant, HardSwishQuant, LeakyReluQuant, PreluQuant, ReluQuant, RsqrtQuant, SqrtQuant,
};
use ferrolite_kernels::activations::{self as act, special, UnaryF32};
use ferrolite_kernels::broadcast::BroadcastPlan;
use ferrolite_kernels::elementwise::broadcast_map;
use ferrolite_kernels::isa::Isa;
use ferrolite_kernels::quant::activation16::{sigmoid16, Sigmoid16};
use ferrolite_kernels::quant::broadcast::BroadcastPlan as QPlan;
use ferrolite_kernels::quant::QuantError;

use super::registry::{s, OpSupport};
use super::{cast_mut, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::options::OpOptions;
use crate::schema::BuiltinOperator as B;

const F_I8_U8: &[&str] = &["float32", "int8", "uint8"];
const F_I8: &[&str] = &["float32", "int8"];
const F: &[&str] = &["float32"];
const F_I8_U8_I16: &[&str] = &["float32", "int8", "uint8", "int16"];

pub(super) const SUPPORT: &[OpSupport] = &[
    s(
        B::RELU,
        F_I8_U8_I16,
        "quantized: rescales to the output parameters",
    ),
    s(
        B::RELU6,
        F_I8_U8_I16,
        "quantized: rescales to the output parameters",
    ),
    s(
        B::RELU_N1_TO_1,
        F_I8_U8,
        "quantized: rescales to the output parameters",
    ),
    s(
        B::RELU_0_TO_1,
        F_I8_U8,
        "quantized: rescales to the output parameters",
    ),
    s(B::LEAKY_RELU, F_I8_U8_I16, "any alpha"),
    s(
        B::LOGISTIC,
        F_I8_U8_I16,
        "quantized output scale must be 1/256 (2^-15 for int16)",
    ),
    s(B::TANH, F_I8_U8_I16, "int16 output scale must be 2^-15"),
    s(B::HARD_SWISH, F_I8_U8, ""),
    s(B::GELU, F_I8_U8, "exact and tanh approximation"),
    s(B::ELU, F_I8, ""),
    s(B::PRELU, F_I8_U8, "alpha broadcasts to the input shape"),
    s(B::EXP, F_I8, ""),
    s(B::LOG, F_I8, ""),
    s(
        B::SQRT,
        F_I8,
        "int8: inputs below the zero point fail at run time",
    ),
    s(
        B::RSQRT,
        F_I8,
        "int8: inputs below the zero point fail at run time",
    ),
    s(B::SQUARE, F, ""),
    s(B::ABS, &["float32", "int8", "int16", "int32"], ""),
    s(B::NEG, &["float32", "int32", "int64"], ""),
    s(B::FLOOR, F, ""),
    s(B::CEIL, F, ""),
    s(B::ROUND, F, "half to even"),
    s(B::SIN, F, ""),
    s(B::COS, F, ""),
];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    use UnaryF32 as U;
    let relu = |lo: f32, hi: f32, op: U| unary(ctx, op, Quantized::Relu(lo, hi));
    Some(match code {
        B::RELU => relu(0.0, f32::INFINITY, U::Relu),
        B::RELU6 => relu(0.0, 6.0, U::Relu6),
        B::RELU_N1_TO_1 => relu(-1.0, 1.0, U::ReluN1To1),
        B::RELU_0_TO_1 => relu(0.0, 1.0, U::Relu0To1),
        B::LEAKY_RELU => match &ctx.op.options {
            OpOptions::LeakyRelu { alpha } => {
                unary(ctx, U::LeakyRelu(*alpha), Quantized::LeakyRelu(*alpha))
            }
            // Without options the reference's parameters stay zeroed: alpha 0.
            OpOptions::None => unary(ctx, U::LeakyRelu(0.0), Quantized::LeakyRelu(0.0)),
            _ => Err(ctx.invalid("options do not belong to LEAKY_RELU")),
        },
        B::LOGISTIC => unary(ctx, U::Logistic, Quantized::Logistic),
        B::TANH => unary(ctx, U::Tanh, Quantized::Float(f32::tanh, true)),
        B::HARD_SWISH => unary(ctx, U::HardSwish, Quantized::HardSwish),
        B::GELU => {
            // Old files may omit the options; the default is the exact form.
            let approximate = matches!(ctx.op.options, OpOptions::Gelu { approximate: true });
            let f = if approximate {
                special::gelu_approx
            } else {
                special::gelu_exact
            };
            unary(ctx, U::Gelu { approximate }, Quantized::Float(f, true))
        }
        B::ELU => unary(ctx, U::Elu, Quantized::Float(special::elu, false)),
        B::EXP => unary(ctx, U::Exp, Quantized::Float(f32::exp, false)),
        B::LOG => unary(ctx, U::Log, Quantized::Log),
        B::SQRT => unary(ctx, U::Sqrt, Quantized::Sqrt),
        B::RSQRT => unary(ctx, U::Rsqrt, Quantized::Rsqrt),
        B::SQUARE => unary(ctx, U::Square, Quantized::None),
        B::ABS => unary(ctx, U::Abs, Quantized::Abs),
        B::NEG => unary(ctx, U::Neg, Quantized::None),
        B::FLOOR => unary(ctx, U::Floor, Quantized::None),
        B::CEIL => unary(ctx, U::Ceil, Quantized::None),
        B::ROUND => unary(ctx, U::Round, Quantized::None),
        B::SIN => unary(ctx, U::Sin, Quantized::None),
        B::COS => unary(ctx, U::Cos, Quantized::None),
        B::PRELU => prepare_prelu(ctx),
        _ => return None,
    })
}

/// How an op computes on 8-bit quantized tensors.
#[derive(Clone, Copy)]
enum Quantized {
    /// Not supported on quantized tensors.
    None,
    /// `QuantizedReluX` clamping to `[lo, hi]`.
    Relu(f32, f32),
    LeakyRelu(f32),
    /// A table from the float function (`LUTPopulate`); `true` if uint8 is supported too.
    Float(fn(f32) -> f32, bool),
    /// A float table that requires the 1/256 output scale.
    Logistic,
    /// A float table where non-positive inputs map to the output's lowest value.
    Log,
    HardSwish,
    Abs,
    Sqrt,
    Rsqrt,
}

/// Checks a one-input, one-output node whose output has the input's type and shape.
fn same_shape_unary<'m>(ctx: &PrepareCtx<'m>) -> Result<(&'m Tensor, &'m Tensor)> {
    ctx.expect_arity(1, 1, 1)?;
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    if input.dtype != output.dtype {
        return Err(ctx.unsupported_dtypes());
    }
    ctx.set_output_shape(0, &input.shape)?;
    Ok((input, output))
}

fn unary(ctx: &PrepareCtx<'_>, op: UnaryF32, quantized: Quantized) -> Result<Prepared> {
    let (input, output) = same_shape_unary(ctx)?;
    let kernel: Box<dyn Kernel> = match input.dtype {
        DType::F32 => Box::new(FloatUnary(op, ctx.isa, None)),
        DType::I32 if matches!(op, UnaryF32::Abs | UnaryF32::Neg) => Box::new(IntUnary {
            negate: op == UnaryF32::Neg,
            wide: false,
        }),
        DType::I64 if op == UnaryF32::Neg => Box::new(IntUnary {
            negate: true,
            wide: true,
        }),
        DType::I8 => table::<i8>(ctx, input, output, quantized)?,
        DType::U8 => table::<u8>(ctx, input, output, quantized)?,
        DType::I16 => unary_i16(ctx, input, output, op, quantized)?,
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(kernel))
}

/// int16 ABS, RELU, RELU6, LEAKY_RELU (the 8-bit formulas on the int16 range), LOGISTIC and
/// TANH (the reference's interpolated sigmoid table), computed per element.
fn unary_i16(
    ctx: &PrepareCtx<'_>,
    input: &Tensor,
    output: &Tensor,
    op: UnaryF32,
    quantized: Quantized,
) -> Result<Box<dyn Kernel>> {
    let (qi, qo) = (
        ctx.per_tensor(input, "input")?,
        ctx.per_tensor(output, "output")?,
    );
    let err = |e: QuantError| ctx.quant_err(e);
    let f = match (op, quantized) {
        // The reference has int16 RELU and RELU6, not RELU_N1_TO_1 or RELU_0_TO_1.
        (UnaryF32::Relu | UnaryF32::Relu6, Quantized::Relu(lo, hi)) => {
            Unary16::Relu(ReluQuant::new::<i16>(qi, qo, lo, hi).map_err(err)?)
        }
        (_, Quantized::LeakyRelu(alpha)) => {
            Unary16::Leaky(LeakyReluQuant::new(qi, qo, alpha).map_err(err)?)
        }
        (UnaryF32::Logistic, _) => Unary16::Sigmoid(Sigmoid16::new(qi, qo, false).map_err(err)?),
        (UnaryF32::Tanh, _) => Unary16::Sigmoid(Sigmoid16::new(qi, qo, true).map_err(err)?),
        (_, Quantized::Abs) => Unary16::Abs(AbsQuant::new(qi, qo).map_err(err)?),
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Box::new(f))
}

enum Unary16 {
    Abs(AbsQuant),
    Relu(ReluQuant),
    Leaky(LeakyReluQuant),
    Sigmoid(Sigmoid16),
}

impl Kernel for Unary16 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<i16>(0)?;
        let out = cast_mut::<i16>(e.output)?;
        if out.len() != x.len() {
            return Err(Error::Internal("int16 unary: output length differs".into()));
        }
        let narrow = |v: i32| v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        match self {
            Unary16::Abs(a) => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = narrow(a.apply(i32::from(v)));
                }
            }
            Unary16::Relu(r) => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = narrow(r.apply(i32::from(v)));
                }
            }
            Unary16::Leaky(l) => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = narrow(l.apply(i32::from(v)));
                }
            }
            Unary16::Sigmoid(p) => sigmoid16(p, x, out).map_err(kernel_err)?,
        }
        Ok(())
    }
}

/// Builds the 256-entry table of an 8-bit quantized unary op.
fn table<T: ByteElem>(
    ctx: &PrepareCtx<'_>,
    input: &Tensor,
    output: &Tensor,
    quantized: Quantized,
) -> Result<Box<dyn Kernel>> {
    let signed = T::MIN < 0;
    let (qi, qo) = (
        ctx.per_tensor(input, "input")?,
        ctx.per_tensor(output, "output")?,
    );
    let err = |e: QuantError| ctx.quant_err(e);
    let mut domain_min = None;
    let lut = match quantized {
        Quantized::Relu(lo, hi) => {
            let r = ReluQuant::new::<T>(qi, qo, lo, hi).map_err(err)?;
            Lut8::from_int::<T>(|q| r.apply(q))
        }
        Quantized::LeakyRelu(alpha) => {
            let l = LeakyReluQuant::new(qi, qo, alpha).map_err(err)?;
            Lut8::from_int::<T>(|q| l.apply(q))
        }
        Quantized::HardSwish => {
            let h = HardSwishQuant::new(qi, qo).map_err(err)?;
            Lut8::from_int::<T>(|q| h.apply(q))
        }
        Quantized::Float(f, unsigned_too) if signed || unsigned_too => {
            Lut8::from_float::<T>(qi, qo, f).map_err(err)?
        }
        Quantized::Logistic => {
            // The reference compares the stored scale with 1/256 exactly.
            if f64::from(qo.scale) != 1.0 / 256.0 {
                return Err(ctx.unsupported(format!(
                    "quantized LOGISTIC needs output scale 1/256, found {}",
                    qo.scale
                )));
            }
            Lut8::from_float::<T>(qi, qo, special::sigmoid_lut).map_err(err)?
        }
        Quantized::Log if signed => {
            // Non-positive inputs give the output's lowest representable value.
            let zp = qo.zero_point_i32().map_err(err)?;
            let lowest = T::MIN.wrapping_sub(zp) as f32 * qo.scale;
            Lut8::from_float::<T>(qi, qo, |x| if x <= 0.0 { lowest } else { x.ln() })
                .map_err(err)?
        }
        Quantized::Abs if signed => {
            let a = AbsQuant::new(qi, qo).map_err(err)?;
            Lut8::from_int::<T>(|q| a.apply(q))
        }
        Quantized::Sqrt if signed => {
            let sq = SqrtQuant::new(qi, qo).map_err(err)?;
            domain_min = Some(sq.domain_min());
            Lut8::from_int::<T>(|q| sq.apply(q))
        }
        Quantized::Rsqrt if signed => {
            let r = RsqrtQuant::new(qi, qo).map_err(err)?;
            domain_min = Some(r.domain_min());
            Lut8::from_int::<T>(|q| r.apply(q))
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Box::new(Table {
        lut,
        domain_min,
        signed,
        isa: ctx.isa,
    }))
}

/// A float elementwise function, with the kernel tier it is compiled for; a LOGISTIC may
/// have taken over the MUL of its output by its input (SiLU, see [`crate::fusion`]).
struct FloatUnary(UnaryF32, Isa, Option<Clamp>);

impl Kernel for FloatUnary {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.get::<f32>(0)?;
        let out = cast_mut(e.output)?;
        match self.2 {
            Some(clamp) => act::silu_f32_threaded(self.1, clamp, input, out, e.threads),
            None => act::unary_f32_threaded(self.1, self.0, input, out, e.threads),
        }
        Ok(())
    }

    fn fuse_times_input(&mut self, clamp: Clamp) -> bool {
        let ok = self.0 == UnaryF32::Logistic && self.2.is_none();
        if ok {
            self.2 = Some(clamp);
        }
        ok
    }
}

/// ABS or NEG of int32 (`wide = false`) or int64 values.
struct IntUnary {
    negate: bool,
    wide: bool,
}

impl Kernel for IntUnary {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.wide {
            act::abs_or_neg_int::<i64>(self.negate, e.inputs.get(0)?, cast_mut(e.output)?);
        } else {
            act::abs_or_neg_int::<i32>(self.negate, e.inputs.get(0)?, cast_mut(e.output)?);
        }
        Ok(())
    }
}

/// An 8-bit unary op as a table lookup, optionally rejecting inputs below a bound (SQRT and
/// RSQRT are defined only from the zero point up; the reference fails the invocation).
struct Table {
    lut: Lut8,
    domain_min: Option<i32>,
    signed: bool,
    isa: Isa,
}

impl Kernel for Table {
    fn fuse_mul8_of_input(
        &mut self,
        q: &ferrolite_kernels::quant::mul::MulQuant,
        table_first: bool,
    ) -> bool {
        // The product of `x` and `T(x)` depends on the input byte alone: tabulate it.
        let (old, signed) = (&self.lut, self.signed);
        let f = |v: i32| {
            let t = old.get(v as u8);
            let t = if signed {
                i32::from(t as i8)
            } else {
                i32::from(t)
            };
            if table_first {
                q.apply(t, v)
            } else {
                q.apply(v, t)
            }
        };
        self.lut = if signed {
            Lut8::from_int::<i8>(f)
        } else {
            Lut8::from_int::<u8>(f)
        };
        true
    }

    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let input = e.inputs.bytes(0)?;
        if let Some(min) = self.domain_min {
            let value = |b: u8| {
                if self.signed {
                    i32::from(b as i8)
                } else {
                    i32::from(b)
                }
            };
            if input.iter().any(|&b| value(b) < min) {
                return Err(Error::Input(
                    "SQRT/RSQRT input below the zero point (negative real value)".into(),
                ));
            }
        }
        self.lut.apply_in(self.isa, input, e.output);
        Ok(())
    }

    fn persistent_bytes(&self) -> usize {
        256
    }
}

/// PRELU: `x ≥ 0 ? x : alpha·x`, with `alpha` broadcast against the input. As in the
/// reference, the broadcast shape must be the input's shape.
fn prepare_prelu(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let (input, alpha, output) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    if input.dtype != alpha.dtype || input.dtype != output.dtype {
        return Err(ctx.unsupported_dtypes());
    }
    let plan = QPlan::new(&input.shape, &alpha.shape).map_err(|e| ctx.quant_err(e))?;
    if plan.output_shape() != input.shape {
        return Err(ctx.invalid(format!(
            "alpha shape {:?} does not broadcast to the input shape {:?}",
            alpha.shape, input.shape
        )));
    }
    ctx.set_output_shape(0, &input.shape)?;
    let kernel: Box<dyn Kernel> = match input.dtype {
        DType::F32 => {
            let plan = BroadcastPlan::new(&input.shape, &alpha.shape)
                .ok_or_else(|| ctx.invalid("PRELU shapes do not broadcast"))?;
            Box::new(PreluF32 {
                plan,
                input_len: input.numel,
                alpha_len: alpha.numel,
            })
        }
        DType::I8 | DType::U8 => {
            let q = |t: &Tensor, what| ctx.per_tensor(t, what);
            let params =
                PreluQuant::new(q(input, "input")?, q(alpha, "alpha")?, q(output, "output")?)
                    .map_err(|e| ctx.quant_err(e))?;
            Box::new(PreluQ {
                params,
                plan,
                signed: input.dtype == DType::I8,
            })
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(kernel))
}

struct PreluF32 {
    plan: BroadcastPlan,
    input_len: usize,
    alpha_len: usize,
}

impl Kernel for PreluF32 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (x, a) = (e.inputs.get::<f32>(0)?, e.inputs.get::<f32>(1)?);
        let out = cast_mut::<f32>(e.output)?;
        let n = self.plan.output_len();
        let (x, a, out) = match (
            x.get(..self.input_len),
            a.get(..self.alpha_len),
            out.get_mut(..n),
        ) {
            (Some(x), Some(a), Some(out)) => (x, a, out),
            _ => return Err(Error::Internal("PRELU buffers shorter than planned".into())),
        };
        act::prelu_f32(&self.plan, x, a, out);
        Ok(())
    }
}

struct PreluQ {
    params: PreluQuant,
    plan: QPlan,
    signed: bool,
}

impl Kernel for PreluQ {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (x, a) = (e.inputs.bytes(0)?, e.inputs.bytes(1)?);
        let p = &self.params;
        if self.signed {
            broadcast_map(&self.plan, x, a, e.output, |x, a| {
                p.apply::<i8>(i32::from(x as i8), i32::from(a as i8)) as i8 as u8
            })
        } else {
            broadcast_map(&self.plan, x, a, e.output, |x, a| {
                p.apply::<u8>(i32::from(x), i32::from(a)) as u8
            })
        }
        .map_err(kernel_err)
    }
}
