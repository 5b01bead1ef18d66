//! `TFLite_Detection_PostProcess`: the custom operator that ends SSD detectors exported by the
//! TF Object Detection API. TFLite's builtin resolver ships it, so ferrolite resolves it by
//! name without registration; a user registration of the same name takes precedence (as a
//! custom op added to a TFLite resolver replaces the shipped one).
//!
//! Inputs: box encodings `[1, anchors, >=4]` (`[y, x, h, w]` first), class predictions
//! `[1, anchors, classes (+1 background column)]`, anchors `[anchors, 4]`
//! (`[y_center, x_center, h, w]`). Each is float32 or uint8; uint8 box encodings need uint8
//! anchors (the reference reads both with their own scale and zero point). The reference
//! kernel has no int8 path: int8 detectors from the converter dequantize before this op.
//! Outputs, all float32: boxes `[1, slots, 4]`, classes `[1, slots]`, scores `[1, slots]`,
//! the detection count `[1]`, with `slots = max_detections · max_classes_per_detection`.
//! Slots past the detections found are zero (the reference leaves them unwritten).
//!
//! Options come from a flexbuffer map. Everything the reference would trip over at run time
//! (no classes per detection, an IoU threshold outside (0, 1], no detections per class) or
//! mishandle (regular suppression with zero output slots, which it writes past) is refused
//! here instead.

use ferrolite_kernels::detection::{
    self as k, Corners, DetectionOut, FastScratch, NmsConfig, NmsScratch, RegularScratch,
};

use super::{cast, cast_mut, Eval, Kernel, PrepareCtx, Prepared};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The custom code this operator is registered under.
pub(crate) const NAME: &str = "TFLite_Detection_PostProcess";

/// What the reference uses when `detections_per_class` is absent.
const DEFAULT_DETECTIONS_PER_CLASS: i64 = 100;

/// Prepares the node if `name` is this operator's custom code.
pub(super) fn prepare_custom(ctx: &PrepareCtx<'_>, name: &str) -> Option<Result<Prepared>> {
    (name == NAME).then(|| prepare(ctx))
}

/// The decoded options, checked.
#[derive(Debug, Clone, Copy)]
struct Options {
    max_detections: usize,
    max_classes_per_detection: usize,
    detections_per_class: usize,
    use_regular_nms: bool,
    score_threshold: f32,
    iou_threshold: f32,
    num_classes: usize,
    /// `[y, x, h, w]` scales.
    scales: [f32; 4],
}

/// One flexbuffer value, refused unless it is a number (or a bool where one is expected).
enum Value {
    Missing,
    Int(i64),
    Float(f64),
}

fn value(map: &flexbuffers::MapReader<&[u8]>, key: &str) -> std::result::Result<Value, String> {
    use flexbuffers::FlexBufferType as T;
    let Ok(r) = map.index(key) else {
        return Ok(Value::Missing);
    };
    let bad = |e: flexbuffers::ReaderError| format!("option {key}: {e}");
    match r.flexbuffer_type() {
        T::Null => Ok(Value::Missing),
        T::Int => r.get_i64().map(Value::Int).map_err(bad),
        T::UInt => {
            let v = r.get_u64().map_err(bad)?;
            i64::try_from(v)
                .map(Value::Int)
                .map_err(|_| format!("option {key} is out of range"))
        }
        T::Bool => r.get_bool().map(|b| Value::Int(b as i64)).map_err(bad),
        T::Float => r.get_f64().map(Value::Float).map_err(bad),
        other => Err(format!("option {key} has flexbuffer type {other:?}")),
    }
}

/// An integer option in `0..=i32::MAX` (the reference reads them as int32).
fn int(
    map: &flexbuffers::MapReader<&[u8]>,
    key: &str,
    default: Option<i64>,
) -> std::result::Result<usize, String> {
    let v = match value(map, key)? {
        Value::Int(v) => v,
        Value::Missing => default.ok_or_else(|| format!("option {key} is missing"))?,
        Value::Float(_) => return Err(format!("option {key} must be an integer")),
    };
    if !(0..=i32::MAX as i64).contains(&v) {
        return Err(format!("option {key} = {v} is out of range"));
    }
    Ok(v as usize)
}

fn float(map: &flexbuffers::MapReader<&[u8]>, key: &str) -> std::result::Result<f32, String> {
    match value(map, key)? {
        Value::Float(v) => Ok(v as f32),
        Value::Int(v) => Ok(v as f32),
        Value::Missing => Err(format!("option {key} is missing")),
    }
}

fn parse_options(bytes: &[u8]) -> std::result::Result<Options, String> {
    if bytes.is_empty() {
        return Err("the node has no options".into());
    }
    crate::flexcheck::check(bytes).map_err(|e| format!("options are not a flexbuffer: {e}"))?;
    let root = flexbuffers::Reader::get_root(bytes)
        .map_err(|e| format!("options are not a flexbuffer: {e}"))?;
    let map = root
        .get_map()
        .map_err(|e| format!("options are not a flexbuffer map: {e}"))?;
    let use_regular_nms = match value(&map, "use_regular_nms")? {
        Value::Missing => false,
        Value::Int(v) => v != 0,
        Value::Float(_) => return Err("option use_regular_nms must be a bool".into()),
    };
    let options = Options {
        max_detections: int(&map, "max_detections", None)?,
        max_classes_per_detection: int(&map, "max_classes_per_detection", None)?,
        detections_per_class: int(
            &map,
            "detections_per_class",
            Some(DEFAULT_DETECTIONS_PER_CLASS),
        )?,
        use_regular_nms,
        score_threshold: float(&map, "nms_score_threshold")?,
        iou_threshold: float(&map, "nms_iou_threshold")?,
        num_classes: int(&map, "num_classes", None)?,
        scales: [
            float(&map, "y_scale")?,
            float(&map, "x_scale")?,
            float(&map, "h_scale")?,
            float(&map, "w_scale")?,
        ],
    };
    if options.num_classes == 0 {
        return Err("num_classes must be positive".into());
    }
    // The reference checks these at run time, on every invoke.
    if !(options.iou_threshold > 0.0 && options.iou_threshold <= 1.0) {
        return Err(format!(
            "nms_iou_threshold {} is outside (0, 1]",
            options.iou_threshold
        ));
    }
    if options.use_regular_nms {
        if options.detections_per_class.min(options.max_detections) == 0 {
            return Err(
                "regular suppression needs detections_per_class and max_detections above 0".into(),
            );
        }
        // The reference writes max_detections slots whatever the output size.
        if options.max_classes_per_detection == 0 {
            return Err("regular suppression with max_classes_per_detection 0".into());
        }
    } else if options.max_classes_per_detection == 0 {
        return Err("max_classes_per_detection must be positive".into());
    }
    // A zero scale divides by zero in the decoding; the reference would produce inf/NaN boxes.
    if options.scales.iter().any(|s| *s == 0.0 || !s.is_finite()) {
        return Err(format!(
            "box scales {:?} must be finite and non-zero",
            options.scales
        ));
    }
    Ok(options)
}

/// How an input's values become floats.
#[derive(Debug, Clone, Copy)]
enum Source {
    F32,
    /// uint8 with `(scale, zero_point)`.
    U8(f32, i32),
}

fn source(ctx: &PrepareCtx<'_>, k: usize, what: &str) -> Result<Source> {
    let t = ctx.input(k)?;
    match t.dtype {
        DType::F32 => Ok(Source::F32),
        DType::U8 => {
            let q = ctx.per_tensor(t, what)?;
            let zp = i32::try_from(q.zero_point)
                .map_err(|_| ctx.invalid(format!("{what} zero point out of range")))?;
            Ok(Source::U8(q.scale, zp))
        }
        DType::I8 => Err(ctx.unsupported(format!(
            "int8 {what} (the reference kernel dequantizes only uint8)"
        ))),
        _ => Err(ctx.unsupported_dtypes()),
    }
}

fn prepare(ctx: &PrepareCtx<'_>) -> Result<Prepared> {
    ctx.expect_arity(3, 3, 4)?;
    let bytes = ctx
        .op
        .custom_options
        .as_ref()
        .and_then(|r| ctx.model.slice(r))
        .unwrap_or_default();
    let opts = parse_options(bytes).map_err(|m| ctx.invalid(m))?;

    let enc = ctx.input(0)?;
    let cls = ctx.input(1)?;
    let anchors = ctx.input(2)?;
    let (&[1, n, enc_len], &[1, cn, row], &[an, 4]) = (
        enc.shape.as_slice(),
        cls.shape.as_slice(),
        anchors.shape.as_slice(),
    ) else {
        return Err(ctx.invalid(format!(
            "expected box encodings [1, anchors, >=4], class predictions [1, anchors, classes] \
             and anchors [anchors, 4]; found {:?}, {:?} and {:?}",
            enc.shape, cls.shape, anchors.shape
        )));
    };
    if enc_len < 4 || cn != n || an != n {
        return Err(ctx.invalid(format!(
            "box encodings {:?}, class predictions {:?} and anchors {:?} disagree",
            enc.shape, cls.shape, anchors.shape
        )));
    }
    if row != opts.num_classes && row != opts.num_classes + 1 {
        return Err(ctx.invalid(format!(
            "class predictions have {row} columns for num_classes {}",
            opts.num_classes
        )));
    }
    // Indices encode anchor·row + column in u32.
    if n.checked_mul(row)
        .and_then(|v| u32::try_from(v).ok())
        .is_none()
    {
        return Err(ctx.unsupported("more than 2^32 class scores"));
    }

    let enc_src = source(ctx, 0, "box encodings")?;
    let cls_src = source(ctx, 1, "class predictions")?;
    let anchor_src = source(ctx, 2, "anchors")?;
    match (enc_src, anchor_src) {
        (Source::F32, Source::F32) | (Source::U8(..), Source::U8(..)) => {}
        _ => {
            return Err(ctx.unsupported(
                "box encodings and anchors of different types (the reference reads anchors \
                 with the encodings' type)",
            ))
        }
    }
    for k in 0..4 {
        if ctx.output(k)?.dtype != DType::F32 {
            return Err(ctx.unsupported_dtypes());
        }
    }

    let slots = opts
        .max_detections
        .checked_mul(opts.max_classes_per_detection)
        .ok_or_else(|| ctx.invalid("max_detections · max_classes_per_detection overflows"))?;
    ctx.set_output_shape(0, &[1, slots, 4])?;
    ctx.set_output_shape(1, &[1, slots])?;
    ctx.set_output_shape(2, &[1, slots])?;
    ctx.set_output_shape(3, &[1])?;

    let layout = Layout::new(&opts, n, row, matches!(cls_src, Source::U8(..)))
        .ok_or_else(|| ctx.invalid("scratch size overflows"))?;
    Ok(Prepared::Kernel(Box::new(PostProcess {
        opts,
        anchors: n,
        enc_len,
        row,
        enc_src,
        cls_src,
        anchor_src,
        layout,
    })))
}

/// Scratch layout in 4-byte words: decoded boxes, dequantized scores (uint8 predictions
/// only), then the buffers of the chosen suppression flavour.
#[derive(Debug, Clone, Copy)]
struct Layout {
    boxes: usize,
    scores: usize,
    /// `n`: per-anchor or per-class scores.
    per_anchor: usize,
    candidates: usize,
    active: usize,
    /// Survivors of one suppression: `min(limit, n)`.
    selected: usize,
    /// Fast: top classes `n·k`; regular: survivors' scores `selected`.
    extra: usize,
    /// Fast: partial-sort work `num_classes`; regular: ranked indices and scores, `m + p` each.
    work: usize,
    words: usize,
}

impl Layout {
    fn new(o: &Options, n: usize, row: usize, dequantize: bool) -> Option<Layout> {
        let boxes = n.checked_mul(4)?;
        let scores = if dequantize { n.checked_mul(row)? } else { 0 };
        let (selected, extra, work) = if o.use_regular_nms {
            let p = o.detections_per_class.min(o.max_detections).min(n);
            let m = o.max_detections.checked_add(p)?;
            (p, p, m.checked_mul(2)?)
        } else {
            let kk = o.max_classes_per_detection.min(o.num_classes);
            (o.max_detections.min(n), n.checked_mul(kk)?, o.num_classes)
        };
        let words = [boxes, scores, n, n, n, selected, extra, work]
            .iter()
            .try_fold(0usize, |acc, &w| acc.checked_add(w))?;
        words.checked_mul(4)?;
        Some(Layout {
            boxes,
            scores,
            per_anchor: n,
            candidates: n,
            active: n,
            selected,
            extra,
            work,
            words,
        })
    }
}

struct PostProcess {
    opts: Options,
    anchors: usize,
    enc_len: usize,
    row: usize,
    enc_src: Source,
    cls_src: Source,
    anchor_src: Source,
    layout: Layout,
}

fn internal(what: &str) -> Error {
    Error::Internal(format!("detection post-processing: {what}"))
}

/// Splits `words` 4-byte words off the front of `rest`.
fn take<'a>(rest: &mut &'a mut [u8], words: usize) -> Result<&'a mut [u8]> {
    let taken = std::mem::take(rest);
    if taken.len() < words * 4 {
        return Err(internal("scratch too small"));
    }
    let (head, tail) = taken.split_at_mut(words * 4);
    *rest = tail;
    Ok(head)
}

impl PostProcess {
    /// Reads four values of row `i` of an `[n, len]` input as floats.
    fn four(bytes: &[u8], src: Source, i: usize, len: usize) -> Result<[f32; 4]> {
        let base = i * len;
        let mut v = [0f32; 4];
        match src {
            Source::F32 => {
                let x: &[f32] = cast(bytes)?;
                let row = x
                    .get(base..base + 4)
                    .ok_or_else(|| internal("input size"))?;
                v.copy_from_slice(row);
            }
            Source::U8(scale, zp) => {
                let row = bytes
                    .get(base..base + 4)
                    .ok_or_else(|| internal("input size"))?;
                // The reference subtracts in float, then scales in float.
                for (o, &q) in v.iter_mut().zip(row) {
                    *o = (q as f32 - zp as f32) * scale;
                }
            }
        }
        Ok(v)
    }
}

impl Kernel for PostProcess {
    fn eval(&self, e: Eval<'_>) -> Result<()> {
        let n = self.anchors;
        let o = &self.opts;
        let l = &self.layout;
        let mut rest: &mut [u8] = e.scratch;
        let boxes: &mut [Corners] = cast_mut(take(&mut rest, l.boxes)?)?;

        let enc = e.inputs.bytes(0)?;
        let anchors = e.inputs.bytes(2)?;
        for (i, b) in boxes.iter_mut().enumerate() {
            let code = Self::four(enc, self.enc_src, i, self.enc_len)?;
            let anchor = Self::four(anchors, self.anchor_src, i, 4)?;
            *b = k::decode_center_size(code, anchor, o.scales);
        }

        let deq = take(&mut rest, l.scores)?;
        let scores: &[f32] = match self.cls_src {
            Source::F32 => e.inputs.get::<f32>(1)?,
            Source::U8(scale, zp) => {
                let q = e.inputs.bytes(1)?;
                let out: &mut [f32] = cast_mut(deq)?;
                if q.len() != out.len() {
                    return Err(internal("class predictions size"));
                }
                // The reference's dequantization: the product in double, rounded once.
                for (o, &v) in out.iter_mut().zip(q) {
                    *o = (scale as f64 * (v as i64 - zp as i64) as f64) as f32;
                }
                out
            }
        };
        let scores = scores
            .get(..n * self.row)
            .ok_or_else(|| internal("class predictions size"))?;

        // Zero every output first: the suppression writes only the slots it fills.
        let (out_boxes, more) = (e.output, e.more_outputs);
        let [classes, out_scores, count, ..] = more else {
            return Err(internal("outputs"));
        };
        out_boxes.fill(0);
        classes.fill(0);
        out_scores.fill(0);
        let mut out = DetectionOut {
            boxes: cast_mut(out_boxes)?,
            classes: cast_mut(classes)?,
            scores: cast_mut(out_scores)?,
        };

        if !k::boxes_are_valid(boxes) {
            return Err(Error::Input(
                "detection post-processing: a decoded box has min > max (the reference \
                 refuses such boxes)"
                    .into(),
            ));
        }
        let cfg = NmsConfig {
            max_detections: o.max_detections,
            max_classes_per_detection: o.max_classes_per_detection,
            detections_per_class: o.detections_per_class.min(o.max_detections),
            score_threshold: o.score_threshold,
            iou_threshold: o.iou_threshold,
            num_classes: o.num_classes,
            label_offset: self.row - o.num_classes,
        };
        let per_anchor: &mut [f32] = cast_mut(take(&mut rest, l.per_anchor)?)?;
        let nms = NmsScratch {
            candidates: cast_mut(take(&mut rest, l.candidates)?)?,
            active: cast_mut(take(&mut rest, l.active)?)?,
        };
        let selected: &mut [u32] = cast_mut(take(&mut rest, l.selected)?)?;
        let extra = take(&mut rest, l.extra)?;
        let work = take(&mut rest, l.work)?;
        let found = if o.use_regular_nms {
            let (ranked_index, ranked_score) = work.split_at_mut(l.work / 2 * 4);
            k::regular_nms(
                &cfg,
                boxes,
                scores,
                RegularScratch {
                    class_scores: per_anchor,
                    nms,
                    selected,
                    selected_scores: cast_mut(extra)?,
                    ranked_index: cast_mut(ranked_index)?,
                    ranked_score: cast_mut(ranked_score)?,
                },
                &mut out,
            )
        } else {
            k::fast_nms(
                &cfg,
                boxes,
                scores,
                FastScratch {
                    max_scores: per_anchor,
                    nms,
                    selected,
                    top_classes: cast_mut(extra)?,
                    work: cast_mut(work)?,
                },
                &mut out,
            )
        }
        .ok_or_else(|| internal("suppression buffers"))?;
        let count: &mut [f32] = cast_mut(count)?;
        *count.first_mut().ok_or_else(|| internal("count output"))? = found as f32;
        Ok(())
    }

    fn scratch_bytes(&self) -> usize {
        self.layout.words * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flexbuffer map like the converter writes, with `extra` entries added or replaced.
    fn options(extra: &[(&str, f64)]) -> Vec<u8> {
        let mut b = flexbuffers::Builder::default();
        let mut m = b.start_map();
        let mut entries: Vec<(&str, f64)> = vec![
            ("max_detections", 10.0),
            ("max_classes_per_detection", 1.0),
            ("num_classes", 3.0),
            ("nms_score_threshold", 0.3),
            ("nms_iou_threshold", 0.5),
            ("y_scale", 10.0),
            ("x_scale", 10.0),
            ("h_scale", 5.0),
            ("w_scale", 5.0),
        ];
        for &(k, v) in extra {
            entries.retain(|(e, _)| *e != k);
            entries.push((k, v));
        }
        for (k, v) in entries {
            if k.ends_with("threshold") || k.ends_with("scale") {
                m.push(k, v as f32);
            } else if k == "use_regular_nms" {
                m.push(k, v != 0.0);
            } else {
                m.push(k, v as i64);
            }
        }
        m.end_map();
        b.view().to_vec()
    }

    #[test]
    fn parses_converter_style_options() {
        let o = parse_options(&options(&[])).unwrap();
        assert_eq!(o.max_detections, 10);
        assert_eq!(o.detections_per_class, 100);
        assert!(!o.use_regular_nms);
        assert_eq!(o.scales, [10.0, 10.0, 5.0, 5.0]);
        let o = parse_options(&options(&[("use_regular_nms", 1.0)])).unwrap();
        assert!(o.use_regular_nms);
    }

    #[test]
    fn refuses_hostile_options() {
        for bad in [
            &[("max_detections", -1.0)][..],
            &[("max_detections", 3e9)],
            &[("num_classes", 0.0)],
            &[("nms_iou_threshold", 0.0)],
            &[("nms_iou_threshold", 1.5)],
            &[("max_classes_per_detection", 0.0)],
            &[("use_regular_nms", 1.0), ("detections_per_class", 0.0)],
            &[("use_regular_nms", 1.0), ("max_detections", 0.0)],
            &[("y_scale", 0.0)],
        ] {
            assert!(parse_options(&options(bad)).is_err(), "{bad:?}");
        }
        assert!(parse_options(&[]).is_err());
        assert!(parse_options(&[1, 2, 3, 4]).is_err());
    }
}
