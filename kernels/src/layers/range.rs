//! RANGE: `start, start + delta, …` up to (excluding) `limit`, as TFLite's `range.cc`.
//!
//! The element count is `ceil(|limit − start| / |delta|)`: for integers in exact
//! arithmetic (TFLite's int formula `(|limit − start| + |delta| − 1) / |delta|`, which it
//! computes in the element type), for floats in f32 as `ceil(|(limit − start) / delta|)`.
//! Values are produced by repeated addition (`value += delta`), not `start + i·delta`, which
//! matters for floats.

/// Why a range cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// `delta` is zero.
    ZeroDelta,
    /// `delta` points away from `limit`.
    WrongDirection,
    /// The count is not finite or exceeds `max`.
    TooLarge,
}

impl core::fmt::Display for RangeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RangeError::ZeroDelta => "delta is zero",
            RangeError::WrongDirection => "delta does not move start towards limit",
            RangeError::TooLarge => "the range has too many elements",
        })
    }
}

/// Element count of an integer range, at most `max`.
pub fn len_int(start: i64, limit: i64, delta: i64, max: usize) -> Result<usize, RangeError> {
    if delta == 0 {
        return Err(RangeError::ZeroDelta);
    }
    if !((start >= limit && delta < 0) || (start <= limit && delta > 0)) {
        return Err(RangeError::WrongDirection);
    }
    let span = (i128::from(limit) - i128::from(start)).abs();
    let step = i128::from(delta).abs();
    let n = (span + step - 1) / step;
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= max)
        .ok_or(RangeError::TooLarge)
}

/// Element count of a float range, at most `max`.
pub fn len_f32(start: f32, limit: f32, delta: f32, max: usize) -> Result<usize, RangeError> {
    if delta == 0.0 {
        return Err(RangeError::ZeroDelta);
    }
    if !((start >= limit && delta < 0.0) || (start <= limit && delta > 0.0)) {
        return Err(RangeError::WrongDirection);
    }
    let n = ((limit - start) / delta).abs().ceil();
    if !n.is_finite() || n > max as f32 {
        return Err(RangeError::TooLarge);
    }
    Ok(n as usize)
}

/// Fills `out` with `start, start + delta, …` by repeated addition (wrapping for integers).
pub fn fill<T: Copy>(start: T, delta: T, add: impl Fn(T, T) -> T, out: &mut [T]) {
    let mut v = start;
    for o in out {
        *o = v;
        v = add(v, delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(len_int(0, 10, 3, 100), Ok(4));
        assert_eq!(len_int(10, 0, -3, 100), Ok(4));
        assert_eq!(len_int(5, 5, 1, 100), Ok(0));
        assert_eq!(len_int(0, 10, 0, 100), Err(RangeError::ZeroDelta));
        assert_eq!(len_int(0, 10, -1, 100), Err(RangeError::WrongDirection));
        assert_eq!(
            len_int(i64::MIN, i64::MAX, 1, usize::MAX >> 1),
            Err(RangeError::TooLarge)
        );
        assert_eq!(len_f32(0.0, 1.0, 0.3, 100), Ok(4));
        assert_eq!(len_f32(1.0, 0.0, -0.25, 100), Ok(4));
        assert_eq!(
            len_f32(0.0, f32::INFINITY, 1.0, 100),
            Err(RangeError::TooLarge)
        );
        assert_eq!(
            len_f32(0.0, 1.0, f32::NAN, 100),
            Err(RangeError::WrongDirection)
        );
    }

    #[test]
    fn values_accumulate() {
        let mut out = [0.0f32; 4];
        fill(0.0, 0.1, |a, b| a + b, &mut out);
        assert_eq!(out, [0.0, 0.1, 0.1 + 0.1, 0.1 + 0.1 + 0.1]);
        let mut out = [0i32; 3];
        fill(7, -3, i32::wrapping_add, &mut out);
        assert_eq!(out, [7, 4, 1]);
    }
}
