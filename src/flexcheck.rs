//! A bounds check of a whole flexbuffer before the `flexbuffers` crate reads it.
//!
//! The crate's reader trusts the offsets and widths stored in the buffer and indexes slices
//! with them, so a damaged buffer makes it panic (found by fuzzing custom options). This walk
//! follows every offset from the root with checked arithmetic and refuses the buffer when any
//! value, length prefix, key or type byte would lie outside it. Depth and total work are
//! bounded, so a buffer whose offsets form a cycle or a wide DAG cannot hang it.

/// Nesting deeper than this is refused (converter options are one flat map).
const MAX_DEPTH: usize = 16;
/// Values visited before giving up (shared subtrees are visited once per reference).
const MAX_VISITS: usize = 1 << 16;

/// Checks that every value reachable from the root lies inside `buf`.
pub(crate) fn check(buf: &[u8]) -> Result<(), String> {
    let n = buf.len();
    if n < 3 {
        return Err("flexbuffer shorter than 3 bytes".into());
    }
    let root_width = usize::from(buf[n - 1]);
    if !matches!(root_width, 1 | 2 | 4 | 8) {
        return Err(format!("flexbuffer root width {root_width}"));
    }
    let packed = buf[n - 2];
    let at = (n - 2)
        .checked_sub(root_width)
        .ok_or("flexbuffer root does not fit")?;
    let mut visits = 0;
    value(buf, at, root_width, packed, 0, &mut visits)
}

fn width_of(code: u8) -> usize {
    1 << (code & 3)
}

/// Reads an unsigned field of `w` bytes at `at`.
fn read(buf: &[u8], at: usize, w: usize) -> Result<u64, String> {
    let end = at.checked_add(w).ok_or("offset overflows")?;
    let b = buf.get(at..end).ok_or("field outside the buffer")?;
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate() {
        v |= u64::from(x) << (8 * i);
    }
    Ok(v)
}

/// The position an offset field at `at` (width `w`) points to: `at − value`.
fn target(buf: &[u8], at: usize, w: usize) -> Result<usize, String> {
    let off = usize::try_from(read(buf, at, w)?).map_err(|_| "offset too large")?;
    at.checked_sub(off)
        .ok_or_else(|| "offset points before the buffer".to_string())
}

/// Checks that `count` elements of width `w` start at `at` inside the buffer.
fn span(buf: &[u8], at: usize, count: usize, w: usize) -> Result<(), String> {
    let bytes = count.checked_mul(w).ok_or("vector size overflows")?;
    let end = at.checked_add(bytes).ok_or("vector end overflows")?;
    if end > buf.len() {
        return Err("vector outside the buffer".into());
    }
    Ok(())
}

/// Length prefix (width `w`) just before `at`.
fn length(buf: &[u8], at: usize, w: usize) -> Result<usize, String> {
    let p = at.checked_sub(w).ok_or("length prefix before the buffer")?;
    usize::try_from(read(buf, p, w)?).map_err(|_| "length too large".into())
}

/// Checks a null-terminated key starting at `at`.
fn key(buf: &[u8], at: usize) -> Result<(), String> {
    buf.get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == 0))
        .map(|_| ())
        .ok_or_else(|| "key without a terminator".to_string())
}

/// Checks the value stored in the field at `at` of width `parent_w`, typed by `packed`.
fn value(
    buf: &[u8],
    at: usize,
    parent_w: usize,
    packed: u8,
    depth: usize,
    visits: &mut usize,
) -> Result<(), String> {
    *visits += 1;
    if depth > MAX_DEPTH || *visits > MAX_VISITS {
        return Err("flexbuffer nested too deeply or too large".into());
    }
    let ty = packed >> 2;
    let w = width_of(packed);
    // Inline scalars live in the field itself.
    if matches!(ty, 0..=3 | 26) {
        return read(buf, at, parent_w).map(|_| ());
    }
    let data = target(buf, at, parent_w)?;
    match ty {
        // KEY: a null-terminated string.
        4 => key(buf, data),
        // STRING and BLOB: length prefix, bytes (strings also their terminator).
        5 | 25 => {
            let len = length(buf, data, w)?;
            span(
                buf,
                data,
                len.checked_add(usize::from(ty == 5)).ok_or("length")?,
                1,
            )
        }
        // Indirect scalars.
        6..=8 => read(buf, data, w).map(|_| ()),
        // MAP: keys offset and keys width before the length prefix, values, type bytes.
        9 => {
            let len = length(buf, data, w)?;
            let keys_w_at = data
                .checked_sub(2 * w)
                .ok_or("map header before the buffer")?;
            let keys_w = usize::try_from(read(buf, keys_w_at, w)?).map_err(|_| "keys width")?;
            if !matches!(keys_w, 1 | 2 | 4 | 8) {
                return Err(format!("map keys width {keys_w}"));
            }
            let keys_at = data
                .checked_sub(3 * w)
                .ok_or("map header before the buffer")?;
            let keys = target(buf, keys_at, w)?;
            if length(buf, keys, keys_w)? != len {
                return Err("map keys and values differ in length".into());
            }
            span(buf, keys, len, keys_w)?;
            for i in 0..len {
                key(buf, target(buf, keys + i * keys_w, keys_w)?)?;
            }
            untyped(buf, data, len, w, depth, visits)
        }
        // VECTOR: elements, then one type byte per element.
        10 => {
            let len = length(buf, data, w)?;
            untyped(buf, data, len, w, depth, visits)
        }
        // Typed vectors with a length prefix (int, uint, float, key) and bools. (15, the
        // deprecated string vector, is refused: its strings would need their own checks.)
        11..=14 | 36 => {
            let len = length(buf, data, w)?;
            span(buf, data, len, w)?;
            if ty == 14 {
                for i in 0..len {
                    key(buf, target(buf, data + i * w, w)?)?;
                }
            }
            Ok(())
        }
        // Fixed-length typed vectors of 2, 3 or 4 elements.
        16..=24 => span(buf, data, usize::from((ty - 16) / 3 + 2), w),
        t => Err(format!("unknown flexbuffer type {t}")),
    }
}

/// The elements and type bytes of an untyped vector or a map's values.
fn untyped(
    buf: &[u8],
    data: usize,
    len: usize,
    w: usize,
    depth: usize,
    visits: &mut usize,
) -> Result<(), String> {
    span(buf, data, len, w)?;
    let types = data + len * w;
    span(buf, types, len, 1)?;
    for i in 0..len {
        value(buf, data + i * w, w, buf[types + i], depth + 1, visits)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = flexbuffers::Builder::default();
        let mut m = b.start_map();
        m.push("max_detections", 10i32);
        m.push("nms_iou_threshold", 0.5f32);
        m.push("use_regular_nms", true);
        m.push("name", "ssd");
        m.end_map();
        b.view().to_vec()
    }

    #[test]
    fn builder_output_passes() {
        check(&sample()).unwrap();
        // And the crate reads what passed.
        let bytes = sample();
        let r = flexbuffers::Reader::get_root(bytes.as_slice()).unwrap();
        assert_eq!(r.as_map().idx("max_detections").as_i64(), 10);
    }

    #[test]
    fn every_truncation_and_single_byte_change_is_checked_or_readable() {
        // Whatever the check lets through must be readable without a panic.
        let good = sample();
        let mut cases: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                cases.push(b);
            }
        }
        for b in cases {
            if check(&b).is_ok() {
                let r = flexbuffers::Reader::get_root(b.as_slice());
                if let Ok(r) = r {
                    let m = r.as_map();
                    for k in [
                        "max_detections",
                        "nms_iou_threshold",
                        "use_regular_nms",
                        "name",
                    ] {
                        let _ = m.index(k).map(|v| (v.as_f64(), v.as_str().len()));
                    }
                }
            }
        }
    }
}
