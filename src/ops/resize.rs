//! RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (NHWC, constant int32 size).
//!
//! The arithmetic follows the reference kernels per dtype: float32 and uint8 bilinear use the
//! float template (uint8 rounds by adding 0.5), int8 and int16 bilinear the integer one, and
//! nearest neighbor copies pixels for any element size. See `ferrolite_kernels::resize`.

use ferrolite_kernels::resize::{nearest, nearest_indices, BilinearF32, BilinearInt, ResizeShape};

use super::layout::{elem_size, kernel_or_fold, same_dtype};
use super::registry::{s, OpSupport};
use super::{cast, cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::Result;
use crate::options::OpOptions;
use crate::schema::BuiltinOperator as B;

pub(super) const SUPPORT: &[OpSupport] = &[
    s(
        B::RESIZE_BILINEAR,
        &["float32", "int8", "uint8", "int16"],
        "align_corners, half_pixel_centers; constant size",
    ),
    s(
        B::RESIZE_NEAREST_NEIGHBOR,
        &[
            "float32", "int8", "uint8", "int16", "int32", "int64", "bool",
        ],
        "align_corners, half_pixel_centers; constant size",
    ),
];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    Some(match code {
        B::RESIZE_BILINEAR => prepare_resize(ctx, true),
        B::RESIZE_NEAREST_NEIGHBOR => prepare_resize(ctx, false),
        _ => return None,
    })
}

fn prepare_resize(ctx: &PrepareCtx<'_>, bilinear: bool) -> Result<Prepared> {
    ctx.expect_arity(2, 2, 1)?;
    let (align_corners, half_pixel) = match &ctx.op.options {
        OpOptions::Resize {
            align_corners,
            half_pixel_centers,
        } => (*align_corners, *half_pixel_centers),
        OpOptions::None => (false, false),
        _ => return Err(ctx.invalid("options do not belong to this resize")),
    };
    let input = ctx.input(0)?;
    let output = ctx.output(0)?;
    same_dtype(ctx, output, input, "output")?;
    let [batch, in_h, in_w, channels] = input.shape[..] else {
        return Err(ctx.invalid(format!("input must be 4-D, has shape {:?}", input.shape)));
    };
    let size_t = ctx.input(1)?;
    if size_t.dtype != DType::I32 || size_t.shape != [2] {
        return Err(ctx.invalid(format!(
            "size must be an int32 vector of 2 values, is {}{:?}",
            size_t.dtype, size_t.shape
        )));
    }
    let size = ctx
        .const_vec::<i32>(1)?
        .ok_or_else(|| ctx.unsupported("non-constant size is not supported"))?;
    if bilinear && half_pixel && align_corners {
        return Err(ctx.invalid("half_pixel_centers and align_corners cannot both be set"));
    }
    let dim = |v: i32| -> Result<usize> {
        match usize::try_from(v) {
            Ok(d) if d > 0 || !bilinear => Ok(d),
            _ => Err(ctx.invalid(format!("output size {size:?} must be positive"))),
        }
    };
    let shape = ResizeShape {
        batch,
        in_h,
        in_w,
        channels,
        out_h: dim(size[0])?,
        out_w: dim(size[1])?,
    };
    if !shape.is_valid() {
        return Err(ctx.unsupported(format!(
            "resize of {:?} to {size:?} (sizes up to 2^20, non-empty input)",
            input.shape
        )));
    }
    ctx.set_output_shape(0, &[batch, shape.out_h, shape.out_w, channels])?;
    let kind = if bilinear {
        match input.dtype {
            DType::F32 => Kind::Float(BilinearF32::new(shape, align_corners, half_pixel), false),
            DType::U8 => Kind::Float(BilinearF32::new(shape, align_corners, half_pixel), true),
            DType::I8 | DType::I16 => Kind::Int(BilinearInt::new(shape, align_corners, half_pixel)),
            _ => return Err(ctx.unsupported_dtypes()),
        }
    } else {
        Kind::Nearest {
            ys: nearest_indices(shape.out_h, in_h, align_corners, half_pixel),
            xs: nearest_indices(shape.out_w, in_w, align_corners, half_pixel),
        }
    };
    let esize = elem_size(ctx, input)?;
    kernel_or_fold(ctx, Box::new(Resize { shape, kind, esize }))
}

enum Kind {
    /// Float arithmetic; `true` for uint8 tensors.
    Float(BilinearF32, bool),
    Int(BilinearInt),
    Nearest {
        ys: Vec<usize>,
        xs: Vec<usize>,
    },
}

struct Resize {
    shape: ResizeShape,
    kind: Kind,
    esize: usize,
}

impl Kernel for Resize {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let src = e.inputs.bytes(0)?;
        let out = e.output;
        let t = e.threads;
        match &self.kind {
            Kind::Float(k, false) => k.run_f32(cast(src)?, cast_mut(out)?, t),
            Kind::Float(k, true) => k.run_u8(src, out, t),
            Kind::Int(k) if self.esize == 1 => k.run::<i8>(cast(src)?, cast_mut(out)?, t),
            Kind::Int(k) => k.run::<i16>(cast(src)?, cast_mut(out)?, t),
            Kind::Nearest { ys, xs } => {
                let s = &self.shape;
                match self.esize {
                    1 => nearest::<u8>(s, ys, xs, src, out, t),
                    2 => nearest::<u16>(s, ys, xs, cast(src)?, cast_mut(out)?, t),
                    4 => nearest::<u32>(s, ys, xs, cast(src)?, cast_mut(out)?, t),
                    _ => nearest::<u64>(s, ys, xs, cast(src)?, cast_mut(out)?, t),
                }
            }
        }
        Ok(())
    }

    fn reads_input(&self, k: usize) -> bool {
        k == 0
    }
}
