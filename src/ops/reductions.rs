//! Reductions and index ops: SUM, REDUCE_PROD, REDUCE_MAX, REDUCE_MIN, ARG_MAX, ARG_MIN,
//! CUMSUM and TOP_K_V2, plus the value-making ops CAST, FILL, ZEROS_LIKE and RANGE.
//!
//! Integer arithmetic wraps where the reference's C++ would overflow (its result is then
//! whatever two's complement gives, which is what x86 and Arm produce).

use bytemuck::Pod;
use ferrolite_kernels::quant::fixedpoint::{
    multiply_by_quantized_multiplier_i64, quantize_multiplier,
};
use ferrolite_kernels::quant::mean::{self, MeanQuant, ReducePlan};
use ferrolite_kernels::quant::params::clamp_i32;
use ferrolite_kernels::reductions as k;

use super::reduce::{reduction, Reduction};
use super::registry::{self, OpSupport};
use super::{cast_mut, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::aligned::AlignedBuf;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::options::OpOptions;
use crate::schema::BuiltinOperator as B;

const NUM: &[&str] = &["float32", "int8", "int32", "int64"];
const NUM_I16: &[&str] = &["float32", "int8", "int16", "int32", "int64"];

pub(super) const SUPPORT: &[OpSupport] = &[
    registry::s(
        B::SUM,
        NUM,
        "int8 requantizes like the reference (see docs)",
    ),
    registry::s(
        B::REDUCE_MAX,
        NUM_I16,
        "int8/int16 need equal input/output quantization",
    ),
    registry::s(
        B::REDUCE_MIN,
        NUM_I16,
        "int8/int16 need equal input/output quantization",
    ),
    registry::s(B::REDUCE_PROD, NUM, "int8: per-step rescaled product"),
    registry::s(
        B::ARG_MAX,
        &["float32", "int8", "uint8", "int32"],
        "constant axis; int32/int64 output",
    ),
    registry::s(
        B::ARG_MIN,
        &["float32", "int8", "uint8", "int32"],
        "constant axis; int32/int64 output",
    ),
    registry::s(
        B::CAST,
        &[
            "float32", "int8", "uint8", "int16", "int32", "int64", "bool",
        ],
        "float to int truncates toward zero, saturating",
    ),
    registry::s(
        B::CUMSUM,
        &["float32", "int32", "int64"],
        "exclusive, reverse; constant axis",
    ),
    registry::s(
        B::TOPK_V2,
        &["float32", "int8", "uint8", "int16", "int32", "int64"],
        "constant k; int32 indices",
    ),
    registry::s(
        B::ZEROS_LIKE,
        &["float32", "int32", "int64"],
        "folded to a constant",
    ),
    registry::s(
        B::FILL,
        &["float32", "int8", "int16", "int32", "int64", "bool"],
        "constant dims",
    ),
];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    Some(match code {
        B::SUM => prepare_reduce(ctx, Red::Sum),
        B::REDUCE_PROD => prepare_reduce(ctx, Red::Prod),
        B::REDUCE_MAX => prepare_reduce(ctx, Red::Max),
        B::REDUCE_MIN => prepare_reduce(ctx, Red::Min),
        B::ARG_MAX => prepare_arg(ctx, true),
        B::ARG_MIN => prepare_arg(ctx, false),
        B::CAST => prepare_cast(ctx),
        B::CUMSUM => prepare_cumsum(ctx),
        B::TOPK_V2 => prepare_top_k(ctx),
        B::ZEROS_LIKE => prepare_zeros_like(ctx),
        B::FILL => prepare_fill(ctx),
        _ => return None,
    })
}

// ------------------------------------------------------------------------ element types

/// What the generic reductions need of an element type.
trait Elem: Pod + PartialOrd {
    const ZERO: Self;
    const ONE: Self;
    const LOWEST: Self;
    const HIGHEST: Self;
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
}

macro_rules! int_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            fn add(self, o: Self) -> Self { self.wrapping_add(o) }
            fn mul(self, o: Self) -> Self { self.wrapping_mul(o) }
        }
    )*};
}
int_elem!(i8, u8, i16, i32, i64);

impl Elem for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const LOWEST: Self = f32::MIN;
    const HIGHEST: Self = f32::MAX;
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn mul(self, o: Self) -> Self {
        self * o
    }
}

fn internal(what: &str) -> Error {
    Error::Internal(format!("{what}: lengths disagree with the prepared shapes"))
}

// ------------------------------------------------------------------------ reductions

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Red {
    Sum,
    Prod,
    Max,
    Min,
}

fn prepare_reduce(ctx: &PrepareCtx<'_>, op: Red) -> Result<Prepared> {
    let r = reduction(ctx)?;
    ctx.set_output_shape(0, &r.out_shape)?;
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    if input.dtype != output.dtype {
        return Err(ctx.unsupported_dtypes());
    }
    let quantized = input.quantization.is_some();
    match (input.dtype, op) {
        (DType::F32 | DType::I32 | DType::I64, _) => {}
        (DType::I8, Red::Sum) => return prepare_quant_sum(ctx, r),
        (DType::I16, Red::Sum) => {
            // The reference kernel (ai-edge-litert 2.3.0, BUILTIN_REF) reads int16 data as
            // uint8 bytes here and leaves half the output unwritten, so there is no result
            // to match; the optimized kernels saturate instead. Refused until that settles.
            return Err(ctx.unsupported("int16 SUM (the reference kernel's result is not defined)"));
        }
        (DType::I8, Red::Prod) if quantized => return prepare_quant_prod(ctx, r),
        (DType::I8, Red::Prod) => {}
        (DType::I8 | DType::I16, Red::Max | Red::Min) => {
            // The reference reduces the raw values, so both sides must share one scale.
            if quantized || output.quantization.is_some() {
                let (a, b) = (
                    ctx.per_tensor(input, "input")?,
                    ctx.per_tensor(output, "output")?,
                );
                if a.scale != b.scale || a.zero_point != b.zero_point {
                    return Err(ctx.invalid("input and output quantization differ"));
                }
            }
        }
        _ => return Err(ctx.unsupported_dtypes()),
    }
    Ok(Prepared::Kernel(Box::new(Generic {
        r,
        op,
        dtype: input.dtype,
    })))
}

/// SUM/PROD/MAX/MIN on raw values.
struct Generic {
    r: Reduction,
    op: Red,
    dtype: DType,
}

impl Generic {
    fn run<T: Elem>(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<T>(0)?;
        let out = cast_mut::<T>(e.output)?;
        let (shape, mask) = (&self.r.shape, &self.r.mask);
        let ok = match self.op {
            Red::Sum => k::reduce(x, shape, mask, out, T::ZERO, |v| T::ZERO.add(v), T::add),
            Red::Prod => k::reduce(x, shape, mask, out, T::ONE, |v| T::ONE.mul(v), T::mul),
            // The reference keeps the accumulator unless the new value compares strictly
            // better, so NaNs never enter a float maximum or minimum.
            Red::Max => {
                let f = |a: T, v: T| if v > a { v } else { a };
                k::reduce(x, shape, mask, out, T::LOWEST, |v| f(T::LOWEST, v), f)
            }
            Red::Min => {
                let f = |a: T, v: T| if v < a { v } else { a };
                k::reduce(x, shape, mask, out, T::HIGHEST, |v| f(T::HIGHEST, v), f)
            }
        };
        ok.then_some(()).ok_or_else(|| internal("reduction"))
    }
}

impl Kernel for Generic {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        match self.dtype {
            DType::F32 => self.run::<f32>(e),
            DType::I32 => self.run::<i32>(e),
            DType::I64 => self.run::<i64>(e),
            DType::I8 => self.run::<i8>(e),
            DType::I16 => self.run::<i16>(e),
            d => Err(Error::Internal(format!("reduction prepared for {d}"))),
        }
    }
}

/// Quantized int8 SUM: `clamp(MBQM(Σq − z_in·n, in_scale/out_scale) + z_out)`.
///
/// The reference kernel (ai-edge-litert 2.3.0, `BUILTIN_REF`) hands the int8 buffers to its
/// quantized sum as *uint8*: the bytes are summed as values 0..=255 and the result is
/// clamped to 0..=255 before being stored back as int8 bytes. We reproduce that, since REF
/// is the specification we are checked against.
fn prepare_quant_sum(ctx: &PrepareCtx<'_>, r: Reduction) -> Result<Prepared> {
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    let (a, b) = (
        ctx.per_tensor(input, "input")?,
        ctx.per_tensor(output, "output")?,
    );
    let axes: Vec<i64> = mask_axes(&r.mask);
    let plan = ReducePlan::new(&r.shape, &axes).map_err(|e| ctx.quant_err(e))?;
    let (multiplier, shift) = quantize_multiplier(f64::from(a.scale) / f64::from(b.scale))
        .map_err(|e| ctx.quant_err(e))?;
    let q = MeanQuant {
        input_zero_point: a.zero_point_i32().map_err(|e| ctx.quant_err(e))?,
        output_zero_point: b.zero_point_i32().map_err(|e| ctx.quant_err(e))?,
        multiplier,
        shift,
        count: plan.count() as i64,
    };
    Ok(Prepared::Kernel(Box::new(QSum { q, plan })))
}

fn mask_axes(mask: &[bool]) -> Vec<i64> {
    mask.iter()
        .enumerate()
        .filter(|(_, &m)| m)
        .map(|(i, _)| i as i64)
        .collect()
}

struct QSum {
    q: MeanQuant,
    plan: ReducePlan,
}

impl Kernel for QSum {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        // Bytes on both sides: see `prepare_quant_sum` for why they are read as uint8.
        let x = e.inputs.bytes(0)?;
        mean::mean::<u8>(&self.q, &self.plan, x, e.output).map_err(kernel_err)
    }
}

/// Quantized int8 REDUCE_PROD. With `n` = input size / output size and
/// `(m, s) = QuantizeMultiplier(in_scale / out_scale^(1/n))`, each output is
/// `p₁ = q₁ − z_in`, `pᵢ = MBQM64(pᵢ₋₁·(qᵢ − z_in), m, s)`, then
/// `clamp(MBQM64(pₙ, m, s) + z_out)`.
fn prepare_quant_prod(ctx: &PrepareCtx<'_>, r: Reduction) -> Result<Prepared> {
    let (input, output) = (ctx.input(0)?, ctx.output(0)?);
    let (a, b) = (
        ctx.per_tensor(input, "input")?,
        ctx.per_tensor(output, "output")?,
    );
    let out_len: usize = r.out_shape.iter().product();
    let (multiplier, shift) = if input.numel != 0 && out_len != 0 {
        let n = (input.numel / out_len) as f64;
        quantize_multiplier(f64::from(a.scale) / f64::from(b.scale).powf(1.0 / n))
            .map_err(|e| ctx.quant_err(e))?
    } else {
        (0, 0)
    };
    Ok(Prepared::Kernel(Box::new(QProd {
        zp_in: a.zero_point_i32().map_err(|e| ctx.quant_err(e))?,
        zp_out: b.zero_point_i32().map_err(|e| ctx.quant_err(e))?,
        multiplier,
        shift,
        out_len,
        r,
    })))
}

struct QProd {
    r: Reduction,
    zp_in: i32,
    zp_out: i32,
    multiplier: i32,
    shift: i32,
    out_len: usize,
}

impl Kernel for QProd {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<i8>(0)?;
        let out = cast_mut::<i8>(e.output)?;
        let acc = cast_mut::<i32>(
            e.scratch
                .get_mut(..self.out_len * 4)
                .ok_or_else(|| internal("scratch"))?,
        )?;
        let (zp, m, s) = (self.zp_in, self.multiplier, self.shift);
        let ok = k::reduce(
            x,
            &self.r.shape,
            &self.r.mask,
            acc,
            0i32,
            |v| i32::from(v) - zp,
            |p, v| {
                multiply_by_quantized_multiplier_i64(
                    i64::from(p) * i64::from(i32::from(v) - zp),
                    m,
                    s,
                )
            },
        );
        if !ok || out.len() != acc.len() {
            return Err(internal("quantized product"));
        }
        for (o, &p) in out.iter_mut().zip(acc.iter()) {
            let v =
                multiply_by_quantized_multiplier_i64(i64::from(p), m, s).wrapping_add(self.zp_out);
            *o = clamp_i32(v, -128, 127) as i8;
        }
        Ok(())
    }

    fn scratch_bytes(&self) -> usize {
        self.out_len * 4
    }
}

// ------------------------------------------------------------------------ ARG_MAX / ARG_MIN

/// A constant single-element axis (int32 or int64) of input `k`, made non-negative.
fn const_axis(ctx: &PrepareCtx<'_>, k: usize, rank: usize) -> Result<usize> {
    let t = ctx.input(k)?;
    let raw: Vec<i64> = match t.dtype {
        DType::I32 => ctx
            .const_vec::<i32>(k)?
            .map(|v| v.into_iter().map(i64::from).collect()),
        DType::I64 => ctx.const_vec::<i64>(k)?,
        _ => return Err(ctx.unsupported_dtypes()),
    }
    .ok_or_else(|| ctx.unsupported("non-constant axis"))?;
    let &[a] = raw.as_slice() else {
        return Err(ctx.invalid(format!("axis must hold one value, found {}", raw.len())));
    };
    let r = rank as i64;
    let a2 = if a < 0 { a + r } else { a };
    if a2 < 0 || a2 >= r {
        return Err(ctx.invalid(format!("axis {a} out of range for rank {rank}")));
    }
    Ok(a2 as usize)
}

fn prepare_arg(ctx: &PrepareCtx<'_>, max: bool) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let input = ctx.input(0)?;
    let axis = const_axis(ctx, 1, input.shape.len())?;
    let out_shape: Vec<usize> = input
        .shape
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != axis)
        .map(|(_, &d)| d)
        .collect();
    ctx.set_output_shape(0, &out_shape)?;
    let out64 = match ctx.output(0)?.dtype {
        DType::I32 => false,
        DType::I64 => true,
        _ => return Err(ctx.unsupported_dtypes()),
    };
    if let OpOptions::ArgMinMax { output_type } = ctx.op.options {
        if DType::from_schema(output_type) != Some(ctx.output(0)?.dtype) {
            return Err(ctx.invalid("output dtype differs from the output_type option"));
        }
    }
    if !matches!(input.dtype, DType::F32 | DType::I8 | DType::U8 | DType::I32) {
        return Err(ctx.unsupported_dtypes());
    }
    let dims = k::split_at_axis(&input.shape, axis);
    Ok(Prepared::Kernel(Box::new(Arg {
        dims,
        max,
        out64,
        dtype: input.dtype,
    })))
}

struct Arg {
    dims: (usize, usize, usize),
    max: bool,
    out64: bool,
    dtype: DType,
}

impl Arg {
    fn run<T: Pod + PartialOrd>(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<T>(0)?;
        let better = |a: T, b: T| if self.max { a > b } else { a < b };
        let ok = if self.out64 {
            k::arg_best(x, self.dims, cast_mut::<i64>(e.output)?, better, |i| {
                i as i64
            })
        } else {
            k::arg_best(x, self.dims, cast_mut::<i32>(e.output)?, better, |i| {
                i as i32
            })
        };
        ok.then_some(()).ok_or_else(|| internal("arg max/min"))
    }
}

impl Kernel for Arg {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        match self.dtype {
            DType::F32 => self.run::<f32>(e),
            DType::I8 => self.run::<i8>(e),
            DType::U8 => self.run::<u8>(e),
            DType::I32 => self.run::<i32>(e),
            d => Err(Error::Internal(format!("arg max/min prepared for {d}"))),
        }
    }
}

// ------------------------------------------------------------------------ CAST

/// The element types CAST converts between. Quantization parameters are ignored, as in the
/// reference: CAST converts raw values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CastTy {
    F32,
    I8,
    U8,
    I16,
    I32,
    I64,
    Bool,
}

fn cast_ty(d: DType) -> Option<CastTy> {
    Some(match d {
        DType::F32 => CastTy::F32,
        DType::I8 => CastTy::I8,
        DType::U8 => CastTy::U8,
        DType::I16 => CastTy::I16,
        DType::I32 => CastTy::I32,
        DType::I64 => CastTy::I64,
        DType::Bool => CastTy::Bool,
        _ => return None,
    })
}

fn prepare_cast(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let input = ctx.input(0)?;
    ctx.set_output_shape(0, &input.shape)?;
    let (Some(from), Some(to)) = (cast_ty(input.dtype), cast_ty(ctx.output(0)?.dtype)) else {
        return Err(ctx.unsupported_dtypes());
    };
    Ok(Prepared::Kernel(Box::new(Cast { from, to })))
}

struct Cast {
    from: CastTy,
    to: CastTy,
}

/// A value in transit: integers are carried exactly, floats as themselves.
#[derive(Clone, Copy)]
enum Val {
    Int(i64),
    Float(f32),
}

fn read(from: CastTy, b: &[u8], i: usize) -> Option<Val> {
    let at = |n: usize| b.get(i * n..i * n + n);
    Some(match from {
        CastTy::F32 => Val::Float(f32::from_le_bytes(at(4)?.try_into().ok()?)),
        CastTy::I8 => Val::Int(i64::from(at(1)?[0] as i8)),
        CastTy::U8 => Val::Int(i64::from(at(1)?[0])),
        CastTy::Bool => Val::Int(i64::from(at(1)?[0] != 0)),
        CastTy::I16 => Val::Int(i64::from(i16::from_le_bytes(at(2)?.try_into().ok()?))),
        CastTy::I32 => Val::Int(i64::from(i32::from_le_bytes(at(4)?.try_into().ok()?))),
        CastTy::I64 => Val::Int(i64::from_le_bytes(at(8)?.try_into().ok()?)),
    })
}

/// A float converted to integer type `to`, as the reference's CAST does on x86. Int32 and
/// int16 targets clamp to just inside their range first, then truncate toward zero. Int8 and
/// uint8 truncate and saturate (the reference's vectorized conversion packs with
/// saturation). Int64 truncates; out of range it gives the "integer indefinite" value
/// `i64::MIN`. NaN gives what the x86 conversions give: the type's minimum for int32,
/// int8 and int64, 0 for int16 (the low half of `i32::MIN`) and uint8.
fn float_to_int(f: f32, to: CastTy) -> i64 {
    let trunc_sat = |lo: f32, hi: f32| f.clamp(lo, hi) as i64;
    if f.is_nan() {
        return match to {
            CastTy::I32 => i64::from(i32::MIN),
            CastTy::I8 => i64::from(i8::MIN),
            CastTy::I64 => i64::MIN,
            _ => 0,
        };
    }
    match to {
        // The clamp bounds are the floats next to the type's limits, toward zero.
        CastTy::I32 => trunc_sat(-2_147_483_520.0, 2_147_483_520.0),
        CastTy::I16 => trunc_sat(-32_767.998, 32_766.998),
        CastTy::I8 => trunc_sat(-128.0, 127.0),
        CastTy::U8 => trunc_sat(0.0, 255.0),
        _ => {
            let limit = (1u64 << 63) as f32;
            if f >= limit || f < -limit {
                i64::MIN
            } else {
                f as i64
            }
        }
    }
}

fn write(to: CastTy, v: Val, b: &mut [u8], i: usize) -> Option<()> {
    let int = match v {
        Val::Int(x) => x,
        Val::Float(f) => float_to_int(f, to),
    };
    let mut put = |bytes: &[u8]| -> Option<()> {
        b.get_mut(i * bytes.len()..(i + 1) * bytes.len())?
            .copy_from_slice(bytes);
        Some(())
    };
    match to {
        CastTy::F32 => put(&match v {
            Val::Int(x) => (x as f32).to_le_bytes(),
            Val::Float(f) => f.to_le_bytes(),
        }),
        CastTy::Bool => put(&[u8::from(match v {
            Val::Int(x) => x != 0,
            Val::Float(f) => f != 0.0,
        })]),
        CastTy::I8 => put(&[int as i8 as u8]),
        CastTy::U8 => put(&[int as u8]),
        CastTy::I16 => put(&(int as i16).to_le_bytes()),
        CastTy::I32 => put(&(int as i32).to_le_bytes()),
        CastTy::I64 => put(&int.to_le_bytes()),
    }
}

impl Kernel for Cast {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.bytes(0)?;
        let n = e.output.len() / to_size(self.to);
        for i in 0..n {
            let v = read(self.from, x, i).ok_or_else(|| internal("cast input"))?;
            write(self.to, v, e.output, i).ok_or_else(|| internal("cast output"))?;
        }
        Ok(())
    }
}

fn to_size(t: CastTy) -> usize {
    match t {
        CastTy::I8 | CastTy::U8 | CastTy::Bool => 1,
        CastTy::I16 => 2,
        CastTy::F32 | CastTy::I32 => 4,
        CastTy::I64 => 8,
    }
}

// ------------------------------------------------------------------------ CUMSUM

fn prepare_cumsum(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let input = ctx.input(0)?;
    if ctx.input(1)?.dtype != DType::I32 {
        return Err(ctx.unsupported_dtypes());
    }
    let axis = const_axis(ctx, 1, input.shape.len())?;
    ctx.set_output_shape(0, &input.shape)?;
    let (exclusive, reverse) = match ctx.op.options {
        OpOptions::Cumsum { exclusive, reverse } => (exclusive, reverse),
        _ => (false, false),
    };
    if ctx.output(0)?.dtype != input.dtype
        || !matches!(input.dtype, DType::F32 | DType::I32 | DType::I64)
    {
        return Err(ctx.unsupported_dtypes());
    }
    let dims = k::split_at_axis(&input.shape, axis);
    Ok(Prepared::Kernel(Box::new(Cumsum {
        dims,
        exclusive,
        reverse,
        dtype: input.dtype,
    })))
}

struct Cumsum {
    dims: (usize, usize, usize),
    exclusive: bool,
    reverse: bool,
    dtype: DType,
}

impl Cumsum {
    fn run<T: Elem + Default>(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<T>(0)?;
        let out = cast_mut::<T>(e.output)?;
        k::cumsum(x, self.dims, self.exclusive, self.reverse, out, T::add)
            .then_some(())
            .ok_or_else(|| internal("cumsum"))
    }
}

impl Kernel for Cumsum {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        match self.dtype {
            DType::F32 => self.run::<f32>(e),
            DType::I32 => self.run::<i32>(e),
            DType::I64 => self.run::<i64>(e),
            d => Err(Error::Internal(format!("cumsum prepared for {d}"))),
        }
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }
}

// ------------------------------------------------------------------------ TOP_K_V2

fn prepare_top_k(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 2)?;
    let input = ctx.input(0)?;
    let kk: i64 = match ctx.input(1)?.dtype {
        DType::I32 => ctx
            .const_vec::<i32>(1)?
            .and_then(|v| v.first().copied())
            .map(i64::from),
        _ => return Err(ctx.unsupported_dtypes()),
    }
    .ok_or_else(|| ctx.unsupported("non-constant k"))?;
    let Some((&n, outer)) = input.shape.split_last() else {
        return Err(ctx.invalid("TOP_K_V2 needs an input of rank at least 1"));
    };
    if kk < 0 || kk as usize > n {
        return Err(ctx.invalid(format!("k = {kk} outside 0..={n}")));
    }
    let kk = kk as usize;
    let mut out_shape = outer.to_vec();
    out_shape.push(kk);
    ctx.set_output_shape(0, &out_shape)?;
    ctx.set_output_shape(1, &out_shape)?;
    if ctx.output(0)?.dtype != input.dtype || ctx.output(1)?.dtype != DType::I32 {
        return Err(ctx.unsupported_dtypes());
    }
    if !matches!(
        input.dtype,
        DType::F32 | DType::I8 | DType::U8 | DType::I16 | DType::I32 | DType::I64
    ) {
        return Err(ctx.unsupported_dtypes());
    }
    if u32::try_from(n).is_err() {
        return Err(ctx.unsupported("a last dimension above 2^32"));
    }
    Ok(Prepared::Kernel(Box::new(TopK {
        rows: outer.iter().product(),
        n,
        k: kk,
        dtype: input.dtype,
    })))
}

struct TopK {
    rows: usize,
    n: usize,
    k: usize,
    dtype: DType,
}

impl TopK {
    fn run<T: Pod + PartialOrd>(&self, e: Eval<'_>) -> Result<()> {
        let x = e.inputs.get::<T>(0)?;
        let [idx, ..] = e.more_outputs else {
            return Err(internal("top_k indices output"));
        };
        let indices = cast_mut::<i32>(idx)?;
        let values = cast_mut::<T>(e.output)?;
        let scratch = e
            .scratch
            .get_mut(..self.n * 4)
            .ok_or_else(|| internal("scratch"))?;
        let scratch = cast_mut::<u32>(scratch)?;
        k::top_k(
            x,
            (self.rows, self.n),
            self.k,
            values,
            indices,
            scratch,
            |a, b| a > b,
        )
        .then_some(())
        .ok_or_else(|| internal("top_k"))
    }
}

impl Kernel for TopK {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        match self.dtype {
            DType::F32 => self.run::<f32>(e),
            DType::I8 => self.run::<i8>(e),
            DType::U8 => self.run::<u8>(e),
            DType::I16 => self.run::<i16>(e),
            DType::I32 => self.run::<i32>(e),
            DType::I64 => self.run::<i64>(e),
            d => Err(Error::Internal(format!("top_k prepared for {d}"))),
        }
    }

    fn scratch_bytes(&self) -> usize {
        self.n * 4
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }
}

// ------------------------------------------------------------------------ ZEROS_LIKE, FILL

/// ZEROS_LIKE: the output depends only on the (static) shape, so it is a constant.
fn prepare_zeros_like(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let input = ctx.input(0)?;
    ctx.set_output_shape(0, &input.shape)?;
    if ctx.output(0)?.dtype != input.dtype
        || !matches!(input.dtype, DType::F32 | DType::I32 | DType::I64)
    {
        return Err(ctx.unsupported_dtypes());
    }
    let bytes = input
        .dtype
        .bytes_for(input.numel)
        .ok_or_else(|| ctx.invalid("output too large"))?;
    Ok(Prepared::Fold(AlignedBuf::zeroed(bytes)?))
}

/// FILL: `dims` must be constant (it decides the output shape). A constant value folds.
fn prepare_fill(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let dims: Vec<i64> = match ctx.input(0)?.dtype {
        DType::I32 => ctx
            .const_vec::<i32>(0)?
            .map(|v| v.into_iter().map(i64::from).collect()),
        DType::I64 => ctx.const_vec::<i64>(0)?,
        _ => return Err(ctx.unsupported_dtypes()),
    }
    .ok_or_else(|| ctx.unsupported("non-constant dims"))?;
    let shape = dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| ctx.invalid(format!("negative dimension in {dims:?}")))
        })
        .collect::<Result<Vec<usize>>>()?;
    ctx.set_output_shape(0, &shape)?;
    let (value, output) = (ctx.input(1)?, ctx.output(0)?);
    if value.numel != 1 {
        return Err(ctx.invalid("the fill value must be a scalar"));
    }
    if value.dtype != output.dtype
        || !matches!(
            value.dtype,
            DType::F32 | DType::I8 | DType::I16 | DType::I32 | DType::I64 | DType::Bool
        )
    {
        return Err(ctx.unsupported_dtypes());
    }
    if matches!(value.dtype, DType::I8 | DType::I16) {
        // The value is copied as is, so both sides must mean the same thing by it.
        let (a, b) = (
            ctx.per_tensor(value, "value")?,
            ctx.per_tensor(output, "output")?,
        );
        if a.scale != b.scale || a.zero_point != b.zero_point {
            return Err(ctx.invalid("value and output quantization differ"));
        }
    }
    let size = value.dtype.size().ok_or_else(|| ctx.unsupported_dtypes())?;
    if let Some(v) = ctx.const_bytes(1).and_then(|b| b.get(..size)) {
        let n: usize = shape.iter().product();
        let mut buf = AlignedBuf::zeroed(n * size)?;
        for chunk in buf.as_mut_slice().chunks_exact_mut(size) {
            chunk.copy_from_slice(v);
        }
        return Ok(Prepared::Fold(buf));
    }
    Ok(Prepared::Kernel(Box::new(Fill { size })))
}

struct Fill {
    size: usize,
}

impl Kernel for Fill {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let v = e
            .inputs
            .bytes(1)?
            .get(..self.size)
            .ok_or_else(|| internal("fill value"))?;
        for chunk in e.output.chunks_exact_mut(self.size) {
            chunk.copy_from_slice(v);
        }
        Ok(())
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 1
    }
}
