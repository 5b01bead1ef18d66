//! Elementwise binary and ternary operators with numpy broadcasting: SUB, DIV,
//! SQUARED_DIFFERENCE, MAXIMUM, MINIMUM, POW, EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER,
//! GREATER_EQUAL, LOGICAL_AND, LOGICAL_OR, LOGICAL_NOT, SELECT, SELECT_V2.
//!
//! Bool tensors hold one byte per element; any non-zero byte reads as true and results are
//! written as 0 or 1. Integer arithmetic wraps like the reference's two's complement
//! arithmetic on x86; divisions by zero and negative integer exponents, which the reference
//! refuses at run time, are errors at run time here too.

use bytemuck::Pod;
use ferrolite_kernels::activation::Clamp;
use ferrolite_kernels::broadcast::{self as fb, BroadcastPlan};
use ferrolite_kernels::elementwise::quant::{
    CompareQuant, DivQuant, SquaredDifferenceQuant, SubQuant, TermTables,
};
use ferrolite_kernels::elementwise::select::{select, select_slices, Broadcast3};
use ferrolite_kernels::elementwise::{
    broadcast_map, maximum, minimum, pow_i32, Comparison, IntClamp,
};
use ferrolite_kernels::quant::broadcast::BroadcastPlan as QPlan;

use super::conv::clamp;
use super::registry::{s, OpSupport};
use super::{cast_mut, fused, kernel_err, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::options::{Activation, OpOptions};
use crate::schema::BuiltinOperator as B;

const CMP: &[&str] = &["float32", "int8", "uint8", "int32", "int64"];
const CMP_EQ: &[&str] = &["float32", "int8", "uint8", "int32", "int64", "bool"];
const ANY: &[&str] = &[
    "float32", "int8", "uint8", "int16", "int32", "int64", "bool",
];

pub(super) const SUPPORT: &[OpSupport] = &[
    s(
        B::SUB,
        &["float32", "int8", "uint8", "int16", "int32", "int64"],
        "broadcasting up to rank 6",
    ),
    s(
        B::DIV,
        &["float32", "int8", "uint8", "int32"],
        "integer division by zero fails at run time",
    ),
    s(B::SQUARED_DIFFERENCE, &["float32", "int8", "int32"], ""),
    s(
        B::MAXIMUM,
        &["float32", "int8", "uint8", "int16", "int32", "int64"],
        "quantized: raw values",
    ),
    s(
        B::MINIMUM,
        &["float32", "int8", "uint8", "int16", "int32", "int64"],
        "quantized: raw values",
    ),
    s(
        B::POW,
        &["float32", "int32"],
        "int32: negative exponents fail at run time",
    ),
    s(B::EQUAL, CMP_EQ, "quantized: compared on a common scale"),
    s(
        B::NOT_EQUAL,
        CMP_EQ,
        "quantized: compared on a common scale",
    ),
    s(B::LESS, CMP, "quantized: compared on a common scale"),
    s(B::LESS_EQUAL, CMP, "quantized: compared on a common scale"),
    s(B::GREATER, CMP, "quantized: compared on a common scale"),
    s(
        B::GREATER_EQUAL,
        CMP,
        "quantized: compared on a common scale",
    ),
    s(B::LOGICAL_AND, &["bool"], ""),
    s(B::LOGICAL_OR, &["bool"], ""),
    s(B::LOGICAL_NOT, &["bool"], ""),
    s(
        B::SELECT,
        ANY,
        "scalar, rank-1 (first axis) or same-shape condition",
    ),
    s(
        B::SELECT_V2,
        ANY,
        "broadcasting of all three operands up to rank 6",
    ),
];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    use Comparison as C;
    Some(match code {
        B::SUB => arithmetic(ctx, Arith::Sub),
        B::DIV => arithmetic(ctx, Arith::Div),
        B::SQUARED_DIFFERENCE => arithmetic(ctx, Arith::SquaredDifference),
        B::MAXIMUM => arithmetic(ctx, Arith::Maximum),
        B::MINIMUM => arithmetic(ctx, Arith::Minimum),
        B::POW => arithmetic(ctx, Arith::Pow),
        B::EQUAL => comparison(ctx, C::Equal),
        B::NOT_EQUAL => comparison(ctx, C::NotEqual),
        B::LESS => comparison(ctx, C::Less),
        B::LESS_EQUAL => comparison(ctx, C::LessEqual),
        B::GREATER => comparison(ctx, C::Greater),
        B::GREATER_EQUAL => comparison(ctx, C::GreaterEqual),
        B::LOGICAL_AND => logical(ctx, false),
        B::LOGICAL_OR => logical(ctx, true),
        B::LOGICAL_NOT => logical_not(ctx),
        B::SELECT => prepare_select(ctx, false),
        B::SELECT_V2 => prepare_select(ctx, true),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arith {
    Sub,
    Div,
    SquaredDifference,
    Maximum,
    Minimum,
    Pow,
}

/// The plan of a two-input node, after checking arity and the broadcast; records the
/// output shape.
fn binary_plan(ctx: &PrepareCtx<'_>) -> Result<QPlan> {
    ctx.expect_arity(2, 2, 1)?;
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    let plan = QPlan::new(&a.shape, &b.shape).map_err(|_| {
        ctx.invalid(format!(
            "shapes {:?} and {:?} do not broadcast (or rank > 6)",
            a.shape, b.shape
        ))
    })?;
    ctx.set_output_shape(0, &plan.output_shape())?;
    Ok(plan)
}

/// The fused activation of SUB and DIV (absent options mean none).
fn activation(ctx: &PrepareCtx<'_>, op: Arith) -> Result<Activation> {
    Ok(match (&ctx.op.options, op) {
        (OpOptions::Add { activation, .. }, Arith::Sub)
        | (OpOptions::Div { activation }, Arith::Div) => *activation,
        (OpOptions::None, _) => Activation::None,
        (_, Arith::Sub | Arith::Div) => {
            return Err(ctx.invalid("options do not belong to this operator"))
        }
        _ => Activation::None,
    })
}

fn arithmetic(ctx: &PrepareCtx<'_>, op: Arith) -> Result<Prepared> {
    let plan = binary_plan(ctx)?;
    let (a, b, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    if a.dtype != b.dtype || a.dtype != out.dtype {
        return Err(ctx.unsupported_dtypes());
    }
    let act = activation(ctx, op)?;
    let q = |t, what| ctx.per_tensor(t, what);
    let err = |e| ctx.quant_err(e);
    let kernel: Box<dyn Kernel> = match (a.dtype, op) {
        (DType::F32, _) => {
            let f_plan = BroadcastPlan::new(&a.shape, &b.shape)
                .ok_or_else(|| ctx.invalid("shapes do not broadcast"))?;
            Box::new(FloatArith {
                op,
                plan: f_plan,
                lens: plan.lens(),
                clamp: match op {
                    Arith::Sub | Arith::Div => clamp(act),
                    _ => Clamp::IDENTITY,
                },
            })
        }
        (DType::I32, _) | (DType::I64, Arith::Sub | Arith::Maximum | Arith::Minimum) => {
            let (lo, hi) = match act {
                Activation::Relu => (0, i64::MAX),
                Activation::Relu6 => (0, 6),
                Activation::ReluN1To1 => (-1, 1),
                _ => (i64::MIN, i64::MAX),
            };
            Box::new(IntArith {
                op,
                plan,
                clamp: IntClamp { lo, hi },
                wide: a.dtype == DType::I64,
            })
        }
        (DType::I16, Arith::Maximum | Arith::Minimum) => Box::new(MinMax16 {
            max: op == Arith::Maximum,
            plan,
        }),
        (DType::I8 | DType::U8, Arith::Maximum | Arith::Minimum) => Box::new(RawMinMax {
            max: op == Arith::Maximum,
            plan,
            signed: a.dtype == DType::I8,
        }),
        (DType::I8, Arith::Sub) => Box::new(QuantBinary {
            kind: QuantKind::Sub(TermTables::new(
                SubQuant::new::<i8>(
                    q(a, "input 0")?,
                    q(b, "input 1")?,
                    q(out, "output")?,
                    fused(act),
                )
                .map_err(err)?,
                true,
            )),
            plan,
            signed: true,
        }),
        (DType::U8, Arith::Sub) => Box::new(QuantBinary {
            kind: QuantKind::Sub(TermTables::new(
                SubQuant::new::<u8>(
                    q(a, "input 0")?,
                    q(b, "input 1")?,
                    q(out, "output")?,
                    fused(act),
                )
                .map_err(err)?,
                false,
            )),
            plan,
            signed: false,
        }),
        (DType::I8, Arith::Div) => Box::new(QuantBinary {
            kind: QuantKind::Div(
                DivQuant::new::<i8>(
                    q(a, "input 0")?,
                    q(b, "input 1")?,
                    q(out, "output")?,
                    fused(act),
                )
                .map_err(err)?,
            ),
            plan,
            signed: true,
        }),
        (DType::U8, Arith::Div) => Box::new(QuantBinary {
            kind: QuantKind::Div(
                DivQuant::new::<u8>(
                    q(a, "input 0")?,
                    q(b, "input 1")?,
                    q(out, "output")?,
                    fused(act),
                )
                .map_err(err)?,
            ),
            plan,
            signed: false,
        }),
        (DType::I8, Arith::SquaredDifference) => Box::new(QuantBinary {
            kind: QuantKind::SquaredDifference(TermTables::new(
                SquaredDifferenceQuant::new(q(a, "input 0")?, q(b, "input 1")?, q(out, "output")?)
                    .map_err(err)?,
                true,
            )),
            plan,
            signed: true,
        }),
        (DType::I16, Arith::Sub) => {
            let pot = match &ctx.op.options {
                OpOptions::Add {
                    pot_scale_int16, ..
                } => *pot_scale_int16,
                _ => true,
            };
            super::quant_binary::sub_i16(ctx, plan, fused(act), pot)?
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(kernel))
}

struct FloatArith {
    op: Arith,
    plan: BroadcastPlan,
    /// Elements of input 0, input 1 and the output.
    lens: (usize, usize, usize),
    clamp: Clamp,
}

impl Kernel for FloatArith {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (la, lb, lo) = self.lens;
        let (a, b) = (e.inputs.get::<f32>(0)?, e.inputs.get::<f32>(1)?);
        let out = cast_mut::<f32>(e.output)?;
        let (a, b, out) = match (a.get(..la), b.get(..lb), out.get_mut(..lo)) {
            (Some(a), Some(b), Some(o)) => (a, b, o),
            _ => {
                return Err(Error::Internal(
                    "operand buffers shorter than planned".into(),
                ))
            }
        };
        let (p, c) = (&self.plan, self.clamp);
        match self.op {
            Arith::Sub => fb::sub_f32(p, a, b, out, c),
            Arith::Div => fb::div_f32(p, a, b, out, c),
            Arith::SquaredDifference => fb::binary_f32(p, a, b, out, c, |x, y| {
                let d = x - y;
                d * d
            }),
            Arith::Maximum => fb::binary_f32(p, a, b, out, c, maximum),
            Arith::Minimum => fb::binary_f32(p, a, b, out, c, minimum),
            Arith::Pow => fb::binary_f32(p, a, b, out, c, f32::powf),
        }
        Ok(())
    }
}

/// int32 (and for SUB, MAXIMUM, MINIMUM int64) arithmetic.
struct IntArith {
    op: Arith,
    plan: QPlan,
    clamp: IntClamp,
    wide: bool,
}

impl IntArith {
    fn run32(&self, a: &[i32], b: &[i32], out: &mut [i32]) -> Result<()> {
        let c = self.clamp;
        let r = match self.op {
            Arith::Sub => {
                broadcast_map(&self.plan, a, b, out, |x, y| c.apply_i32(x.wrapping_sub(y)))
            }
            Arith::Div => {
                if b.contains(&0) {
                    return Err(Error::Input("DIV: integer division by zero".into()));
                }
                // With no zero divisor, only MIN / −1 overflows; it wraps to MIN.
                broadcast_map(&self.plan, a, b, out, |x, y| {
                    c.apply_i32(x.checked_div(y).unwrap_or(i32::MIN))
                })
            }
            Arith::SquaredDifference => broadcast_map(&self.plan, a, b, out, |x, y| {
                let d = x.wrapping_sub(y);
                d.wrapping_mul(d)
            }),
            Arith::Maximum => broadcast_map(&self.plan, a, b, out, maximum),
            Arith::Minimum => broadcast_map(&self.plan, a, b, out, minimum),
            Arith::Pow => {
                if b.iter().any(|&y| y < 0) {
                    return Err(Error::Input("POW: negative int32 exponent".into()));
                }
                broadcast_map(&self.plan, a, b, out, pow_i32)
            }
        };
        r.map_err(kernel_err)
    }

    fn run64(&self, a: &[i64], b: &[i64], out: &mut [i64]) -> Result<()> {
        let c = self.clamp;
        match self.op {
            Arith::Sub => {
                broadcast_map(&self.plan, a, b, out, |x, y| c.apply_i64(x.wrapping_sub(y)))
            }
            Arith::Maximum => broadcast_map(&self.plan, a, b, out, maximum),
            _ => broadcast_map(&self.plan, a, b, out, minimum),
        }
        .map_err(kernel_err)
    }
}

impl Kernel for IntArith {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        if self.wide {
            self.run64(e.inputs.get(0)?, e.inputs.get(1)?, cast_mut(e.output)?)
        } else {
            self.run32(e.inputs.get(0)?, e.inputs.get(1)?, cast_mut(e.output)?)
        }
    }
}

/// MAXIMUM / MINIMUM of 8-bit quantized tensors: the reference compares the stored values
/// without looking at the quantization parameters.
struct RawMinMax {
    max: bool,
    plan: QPlan,
    signed: bool,
}

/// MAXIMUM / MINIMUM of int16 tensors, on the stored values like the 8-bit ones.
struct MinMax16 {
    max: bool,
    plan: QPlan,
}

impl Kernel for MinMax16 {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (a, b) = (e.inputs.get::<i16>(0)?, e.inputs.get::<i16>(1)?);
        let out = cast_mut::<i16>(e.output)?;
        if self.max {
            broadcast_map(&self.plan, a, b, out, maximum)
        } else {
            broadcast_map(&self.plan, a, b, out, minimum)
        }
        .map_err(kernel_err)
    }
}

impl Kernel for RawMinMax {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (a, b) = (e.inputs.bytes(0)?, e.inputs.bytes(1)?);
        let r = match (self.signed, self.max) {
            (true, true) => broadcast_map(&self.plan, a, b, e.output, |x, y| {
                maximum(x as i8, y as i8) as u8
            }),
            (true, false) => broadcast_map(&self.plan, a, b, e.output, |x, y| {
                minimum(x as i8, y as i8) as u8
            }),
            (false, true) => broadcast_map(&self.plan, a, b, e.output, maximum),
            (false, false) => broadcast_map(&self.plan, a, b, e.output, minimum),
        };
        r.map_err(kernel_err)
    }
}

enum QuantKind {
    /// SUB and SQUARED_DIFFERENCE rescale each input on its own: from tables.
    Sub(TermTables<SubQuant>),
    Div(DivQuant),
    SquaredDifference(TermTables<SquaredDifferenceQuant>),
}

struct QuantBinary {
    kind: QuantKind,
    plan: QPlan,
    signed: bool,
}

impl Kernel for QuantBinary {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (a, b) = (e.inputs.bytes(0)?, e.inputs.bytes(1)?);
        let value = |v: u8| {
            if self.signed {
                i32::from(v as i8)
            } else {
                i32::from(v)
            }
        };
        if let QuantKind::Div(q) = &self.kind {
            // The reference checks the whole divisor tensor before dividing.
            if b.iter().any(|&v| value(v) == q.divisor_zero()) {
                return Err(Error::Input("DIV: division by zero".into()));
            }
        }
        // Results are already clamped to the element type: the low byte is the value. One
        // loop per kind, so that each inlines its operation.
        match &self.kind {
            QuantKind::Sub(t) => {
                broadcast_map(&self.plan, a, b, e.output, |x, y| t.apply(x, y) as u8)
            }
            QuantKind::Div(q) => broadcast_map(&self.plan, a, b, e.output, |x, y| {
                q.apply(value(x), value(y)) as u8
            }),
            QuantKind::SquaredDifference(t) => {
                broadcast_map(&self.plan, a, b, e.output, |x, y| t.apply(x, y) as u8)
            }
        }
        .map_err(kernel_err)
    }
}

fn comparison(ctx: &PrepareCtx<'_>, op: Comparison) -> Result<Prepared> {
    let plan = binary_plan(ctx)?;
    let (a, b, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    if a.dtype != b.dtype || out.dtype != DType::Bool {
        return Err(ctx.unsupported_dtypes());
    }
    let is_eq = matches!(op, Comparison::Equal | Comparison::NotEqual);
    let kind = match a.dtype {
        DType::F32 => CmpKind::F32,
        DType::I32 => CmpKind::I32,
        DType::I64 => CmpKind::I64,
        DType::Bool if is_eq => CmpKind::Bool,
        DType::I8 | DType::U8 => {
            let q = CompareQuant::new(ctx.per_tensor(a, "input 0")?, ctx.per_tensor(b, "input 1")?)
                .map_err(|e| {
                    ctx.unsupported(format!(
                        "quantized comparison with an input scale of 1 or more ({e})"
                    ))
                })?;
            CmpKind::Quant(q, a.dtype == DType::I8)
        }
        _ => return Err(ctx.unsupported_dtypes()),
    };
    Ok(Prepared::Kernel(Box::new(Compare { op, kind, plan })))
}

enum CmpKind {
    F32,
    I32,
    I64,
    Bool,
    /// Quantized, signed or not.
    Quant(CompareQuant, bool),
}

struct Compare {
    op: Comparison,
    kind: CmpKind,
    plan: QPlan,
}

impl Compare {
    fn typed<T: Pod + PartialOrd>(&self, e: Eval<'_>) -> Result<()> {
        let (a, b) = (e.inputs.get::<T>(0)?, e.inputs.get::<T>(1)?);
        let op = self.op;
        broadcast_map(&self.plan, a, b, e.output, |x, y| u8::from(op.eval(x, y)))
            .map_err(kernel_err)
    }
}

impl Kernel for Compare {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let op = self.op;
        match &self.kind {
            CmpKind::F32 => self.typed::<f32>(e),
            CmpKind::I32 => self.typed::<i32>(e),
            CmpKind::I64 => self.typed::<i64>(e),
            CmpKind::Bool => {
                let (a, b) = (e.inputs.bytes(0)?, e.inputs.bytes(1)?);
                broadcast_map(&self.plan, a, b, e.output, |x, y| {
                    u8::from(op.eval(x != 0, y != 0))
                })
                .map_err(kernel_err)
            }
            CmpKind::Quant(q, signed) => {
                let (a, b) = (e.inputs.bytes(0)?, e.inputs.bytes(1)?);
                let value = |v: u8| {
                    if *signed {
                        i32::from(v as i8)
                    } else {
                        i32::from(v)
                    }
                };
                broadcast_map(&self.plan, a, b, e.output, |x, y| {
                    u8::from(op.eval(q.scaled1(value(x)), q.scaled2(value(y))))
                })
                .map_err(kernel_err)
            }
        }
    }
}

fn logical(ctx: &PrepareCtx<'_>, or: bool) -> Result<Prepared> {
    let plan = binary_plan(ctx)?;
    let (a, b, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output(0)?);
    if a.dtype != DType::Bool || b.dtype != DType::Bool || out.dtype != DType::Bool {
        return Err(ctx.unsupported_dtypes());
    }
    Ok(Prepared::Kernel(Box::new(Logical { or, plan })))
}

struct Logical {
    or: bool,
    plan: QPlan,
}

impl Kernel for Logical {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let (a, b) = (e.inputs.bytes(0)?, e.inputs.bytes(1)?);
        let or = self.or;
        broadcast_map(&self.plan, a, b, e.output, |x, y| {
            u8::from(if or {
                x != 0 || y != 0
            } else {
                x != 0 && y != 0
            })
        })
        .map_err(kernel_err)
    }
}

fn logical_not(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(1, 1, 1)?;
    let (a, out) = (ctx.input(0)?, ctx.output(0)?);
    if a.dtype != DType::Bool || out.dtype != DType::Bool {
        return Err(ctx.unsupported_dtypes());
    }
    ctx.set_output_shape(0, &a.shape)?;
    Ok(Prepared::Kernel(Box::new(LogicalNot)))
}

struct LogicalNot;

impl Kernel for LogicalNot {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        for (o, &x) in e.output.iter_mut().zip(e.inputs.bytes(0)?) {
            *o = u8::from(x == 0);
        }
        Ok(())
    }
}

/// SELECT (`v2 = false`) and SELECT_V2.
fn prepare_select(ctx: &PrepareCtx<'_>, v2: bool) -> Result<Prepared> {
    ctx.expect_arity(3, 3, 1)?;
    let (c, x, y, out) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?, ctx.output(0)?);
    if c.dtype != DType::Bool || x.dtype != y.dtype || x.dtype != out.dtype {
        return Err(ctx.unsupported_dtypes());
    }
    let elem = match x.dtype.size() {
        Some(n @ (1 | 2 | 4 | 8)) => n,
        _ => return Err(ctx.unsupported_dtypes()),
    };
    let same = c.shape == x.shape && x.shape == y.shape;
    let mode = if c.numel == 1 && x.numel == 1 && y.numel == 1 && out.numel == 1 {
        // The reference keeps the recorded output shape when every operand is one value.
        SelectMode::Same
    } else if same {
        ctx.set_output_shape(0, &x.shape)?;
        SelectMode::Same
    } else if v2 {
        let plan = Broadcast3::new([&c.shape, &x.shape, &y.shape]).ok_or_else(|| {
            ctx.invalid(format!(
                "shapes {:?}, {:?} and {:?} do not broadcast (or rank > 6)",
                c.shape, x.shape, y.shape
            ))
        })?;
        ctx.set_output_shape(0, plan.output_shape())?;
        SelectMode::Broadcast(Box::new(plan))
    } else {
        let low_rank =
            c.shape.is_empty() || (c.shape.len() == 1 && x.shape.first() == Some(&c.shape[0]));
        if !low_rank || x.shape != y.shape {
            return Err(ctx.invalid(format!(
                "SELECT needs a scalar condition or one over the first axis, and equal x and y \
                 shapes; found {:?}, {:?}, {:?}",
                c.shape, x.shape, y.shape
            )));
        }
        ctx.set_output_shape(0, &x.shape)?;
        SelectMode::Slices
    };
    Ok(Prepared::Kernel(Box::new(Select { mode, elem })))
}

enum SelectMode {
    /// All operands have the output's element count.
    Same,
    Slices,
    Broadcast(Box<Broadcast3>),
}

struct Select {
    mode: SelectMode,
    /// Bytes per element: values are copied without interpretation.
    elem: usize,
}

impl Select {
    fn run<T: Pod>(&self, e: Eval<'_>) -> Result<()> {
        let cond = e.inputs.bytes(0)?;
        let (x, y) = (e.inputs.get::<T>(1)?, e.inputs.get::<T>(2)?);
        let out = cast_mut::<T>(e.output)?;
        let ok = match &self.mode {
            SelectMode::Same => {
                let n = out.len();
                if cond.len() < n || x.len() < n || y.len() < n {
                    false
                } else {
                    for (i, o) in out.iter_mut().enumerate() {
                        *o = if cond[i] != 0 { x[i] } else { y[i] };
                    }
                    true
                }
            }
            SelectMode::Slices => select_slices(cond, x, y, out),
            SelectMode::Broadcast(plan) => select(plan, cond, x, y, out),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Internal(
                "SELECT operands shorter than planned".into(),
            ))
        }
    }
}

impl Kernel for Select {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        match self.elem {
            1 => self.run::<u8>(e),
            2 => self.run::<u16>(e),
            4 => self.run::<u32>(e),
            _ => self.run::<u64>(e),
        }
    }
}
