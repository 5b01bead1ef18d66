//! SSD detection post-processing (TFLite's `TFLite_Detection_PostProcess` custom operator):
//! box decoding against anchors, then greedy non-maximum suppression in one of two flavours.
//!
//! Everything here reproduces the reference kernel's order of operations, because the order
//! decides which of two equal scores wins and therefore which boxes come out:
//! - candidates are ranked by score, highest first, equal scores by lower anchor index (the
//!   reference uses a stable sort over anchors in index order);
//! - the "fast" flavour ranks each anchor's classes with `std::partial_sort` as implemented
//!   by libstdc++ (not a stable sort), emulated exactly in [`partial_sort_desc`], or with a
//!   first-maximum arg-max when only one class per anchor is kept;
//! - the "regular" flavour merges per-class results with a stable merge, earlier classes
//!   first among equal scores.
//!
//! No function allocates: every buffer comes from the caller. Results do not depend on the
//! thread count (everything is sequential; the reference's multi-threaded regular NMS merges
//! classes in a thread-dependent order, and its one-thread order is the one reproduced here).

/// A decoded box as `[ymin, xmin, ymax, xmax]`.
pub type Corners = [f32; 4];

/// Converts one center-size encoding `[y, x, h, w]` to corners, relative to an anchor given
/// as `[y_center, x_center, h, w]`, with `scales = [y_scale, x_scale, h_scale, w_scale]`.
///
/// The arithmetic is in double and rounded to float once per quantity, as the reference does;
/// the exponent uses the platform's `exp` (glibc on Linux, like the reference builds).
pub fn decode_center_size(encoding: [f32; 4], anchor: [f32; 4], scales: [f32; 4]) -> Corners {
    let d = |v: f32| v as f64;
    let [y, x, h, w] = encoding;
    let [ay, ax, ah, aw] = anchor;
    let [sy, sx, sh, sw] = scales;
    let yc = (d(y) / d(sy) * d(ah) + d(ay)) as f32;
    let xc = (d(x) / d(sx) * d(aw) + d(ax)) as f32;
    let half_h = (0.5 * (d(h) / d(sh)).exp() * d(ah)) as f32;
    let half_w = (0.5 * (d(w) / d(sw)).exp() * d(aw)) as f32;
    [yc - half_h, xc - half_w, yc + half_h, xc + half_w]
}

/// Whether every box has `ymin <= ymax` and `xmin <= xmax`. The reference refuses to run
/// suppression otherwise (NaN coordinates pass, as there).
pub fn boxes_are_valid(boxes: &[Corners]) -> bool {
    !boxes.iter().any(|b| b[0] > b[2] || b[1] > b[3])
}

/// Intersection over union of two boxes; 0 when either has no positive area.
pub fn iou(a: &Corners, b: &Corners) -> f32 {
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    // `max`/`min` written as comparisons so that NaN behaves like std::max/std::min (the
    // first argument wins unless the comparison is true).
    let ymin = if a[0] < b[0] { b[0] } else { a[0] };
    let xmin = if a[1] < b[1] { b[1] } else { a[1] };
    let ymax = if b[2] < a[2] { b[2] } else { a[2] };
    let xmax = if b[3] < a[3] { b[3] } else { a[3] };
    let dy = ymax - ymin;
    let dx = xmax - xmin;
    let inter = (if dy < 0.0 { 0.0 } else { dy }) * (if dx < 0.0 { 0.0 } else { dx });
    inter / (area_a + area_b - inter)
}

/// A sort key for scores that passed a `>=` threshold (so none is NaN): equal floats get
/// equal keys (-0 and +0 included), and the order is total, as `sort_unstable_by` needs.
fn score_key(s: f32) -> f32 {
    if s == 0.0 {
        0.0
    } else {
        s
    }
}

/// Buffers for [`nms_single_class`], each at least as long as the number of anchors.
pub struct NmsScratch<'a> {
    /// Anchor indices of the candidates above the score threshold.
    pub candidates: &'a mut [u32],
    /// Whether each ranked candidate is still alive (1) or suppressed (0).
    pub active: &'a mut [u32],
}

/// Greedy suppression over one score per anchor.
///
/// Keeps anchors with `scores[i] >= score_threshold`, ranks them (highest score first, lower
/// index among equals), then walks the ranking: each still-active candidate is selected and
/// suppresses every later candidate whose IoU with it exceeds `iou_threshold`. Stops after
/// `max_out` selections. Writes the selected anchor indices, best first, to `selected` and
/// returns how many there are.
///
/// Preconditions: `boxes.len() == scores.len()`, the scratch slices are at least that long
/// and `selected.len() >= min(max_out, scores.len())`; `scores.len()` fits in `u32`. When they
/// do not hold, nothing is selected.
pub fn nms_single_class(
    boxes: &[Corners],
    scores: &[f32],
    score_threshold: f32,
    iou_threshold: f32,
    max_out: usize,
    scratch: &mut NmsScratch<'_>,
    selected: &mut [u32],
) -> usize {
    let n = scores.len();
    if boxes.len() != n
        || scratch.candidates.len() < n
        || scratch.active.len() < n
        || selected.len() < max_out.min(n)
        || u32::try_from(n).is_err()
    {
        return 0;
    }
    let mut kept = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s >= score_threshold {
            scratch.candidates[kept] = i as u32;
            kept += 1;
        }
    }
    let candidates = &mut scratch.candidates[..kept];
    // (score descending, index ascending) is a strict total order, so an unstable sort gives
    // exactly the reference's stable order.
    candidates.sort_unstable_by(|&a, &b| {
        let (sa, sb) = (score_key(scores[a as usize]), score_key(scores[b as usize]));
        sb.total_cmp(&sa).then(a.cmp(&b))
    });
    let active = &mut scratch.active[..kept];
    active.fill(1);
    let limit = max_out.min(kept);
    let mut count = 0;
    for i in 0..kept {
        if count >= limit {
            break;
        }
        if active[i] == 0 {
            continue;
        }
        let chosen = candidates[i];
        selected[count] = chosen;
        count += 1;
        active[i] = 0;
        let chosen_box = &boxes[chosen as usize];
        for j in i + 1..kept {
            if active[j] != 0 && iou(chosen_box, &boxes[candidates[j] as usize]) > iou_threshold {
                active[j] = 0;
            }
        }
    }
    count
}

/// Index of the first maximum of `values` under `>` (index 0 if the first value is NaN or
/// `values` is empty), as the reference's arg-max.
pub fn first_argmax(values: &[f32]) -> usize {
    let mut best = 0;
    let Some(&first) = values.first() else {
        return 0;
    };
    let mut best_value = first;
    for (i, &v) in values.iter().enumerate().skip(1) {
        if v > best_value {
            best_value = v;
            best = i;
        }
    }
    best
}

/// Emulates libstdc++'s `std::partial_sort(idx, idx + k, idx + n, cmp)` with
/// `cmp(i, j) = values[i] > values[j]` on `idx = 0..n`, writing the first `k` results to
/// `out`. This is not a stable sort: equal values come out in the order the heap operations
/// leave them, which is what decides ties in the reference's "fast" suppression.
///
/// `work` needs `values.len()` entries; `out` needs `k`; `k <= values.len()` and the length
/// fits in `u32`. Returns `false` (writing nothing) otherwise.
pub fn partial_sort_desc(values: &[f32], k: usize, work: &mut [u32], out: &mut [u32]) -> bool {
    let n = values.len();
    if k > n || work.len() < n || out.len() < k || u32::try_from(n).is_err() {
        return false;
    }
    let idx = &mut work[..n];
    for (i, v) in idx.iter_mut().enumerate() {
        *v = i as u32;
    }
    // The comparison every heap step uses: "a sorts before b".
    let before = |a: u32, b: u32| values[a as usize] > values[b as usize];
    // Heap select: a heap of the first k under `before` (its root is the element that sorts
    // last), then every later element that sorts before the root replaces it.
    make_heap(&mut idx[..k], &before);
    for i in k..n {
        if before(idx[i], idx[0]) {
            // pop_heap(first, middle, i): the root goes to position i, the old idx[i] sifts in.
            let value = idx[i];
            idx[i] = idx[0];
            adjust_heap(&mut idx[..k], 0, value, &before);
        }
    }
    // sort_heap(first, middle).
    let mut last = k;
    while last > 1 {
        last -= 1;
        let value = idx[last];
        idx[last] = idx[0];
        adjust_heap(&mut idx[..last], 0, value, &before);
    }
    out[..k].copy_from_slice(&idx[..k]);
    true
}

/// libstdc++'s `__make_heap`.
fn make_heap(heap: &mut [u32], before: &impl Fn(u32, u32) -> bool) {
    let len = heap.len();
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = heap[parent];
        adjust_heap(heap, parent, value, before);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// libstdc++'s `__adjust_heap`: moves the hole at `hole` down to a leaf along the larger
/// children, then pushes `value` back up from there.
fn adjust_heap(heap: &mut [u32], mut hole: usize, value: u32, before: &impl Fn(u32, u32) -> bool) {
    let len = heap.len();
    let top = hole;
    let mut child = hole;
    while child < (len.saturating_sub(1)) / 2 {
        child = 2 * (child + 1);
        if before(heap[child], heap[child - 1]) {
            child -= 1;
        }
        heap[hole] = heap[child];
        hole = child;
    }
    if len % 2 == 0 && len >= 2 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        heap[hole] = heap[child - 1];
        hole = child - 1;
    }
    // __push_heap(first, hole, top, value).
    while hole > top {
        let parent = (hole - 1) / 2;
        if !before(heap[parent], value) {
            break;
        }
        heap[hole] = heap[parent];
        hole = parent;
    }
    heap[hole] = value;
}

/// Stable merge of two runs sorted by score, highest first: the kept list
/// `(index[..a], score[..a])` and `(extra_index, extra_score)`. The first `cap` results are
/// written back to `index`/`score`; returns the new length. Among equal scores the kept
/// entries stay first, like `std::inplace_merge`.
///
/// Needs `index.len()` and `score.len()` of at least `min(a + extra, cap)` and `a`, and
/// `extra_score.len() == extra_index.len()`; otherwise returns `a` unchanged (clamped).
pub fn merge_ranked(
    index: &mut [u32],
    score: &mut [f32],
    a: usize,
    extra_index: &[u32],
    extra_score: &[f32],
    cap: usize,
) -> usize {
    let total = a + extra_index.len();
    let keep = total.min(cap);
    let room = index.len().min(score.len());
    if room < keep || room < a || extra_score.len() != extra_index.len() {
        return a.min(room);
    }
    // Walk from the back so that nothing is overwritten before it is read; results landing
    // at or past `keep` are dropped.
    let (mut i, mut j, mut pos) = (a, extra_index.len(), total);
    while j > 0 {
        pos -= 1;
        // The reference's merge takes an extra entry first only when it scores strictly
        // higher, so from the back an extra entry goes last unless it scores strictly higher.
        let (ix, sc) = if i == 0 || extra_score[j - 1] <= score[i - 1] {
            j -= 1;
            (extra_index[j], extra_score[j])
        } else {
            i -= 1;
            (index[i], score[i])
        };
        if pos < keep {
            index[pos] = ix;
            score[pos] = sc;
        }
    }
    keep
}

/// Options of the suppression, validated by the caller.
#[derive(Debug, Clone, Copy)]
pub struct NmsConfig {
    pub max_detections: usize,
    /// Fast flavour: classes reported per kept anchor (its output slots per detection).
    pub max_classes_per_detection: usize,
    /// Regular flavour: survivors kept per class, already capped at `max_detections`.
    pub detections_per_class: usize,
    pub score_threshold: f32,
    pub iou_threshold: f32,
    /// Classes without the background column.
    pub num_classes: usize,
    /// 1 when the score rows start with a background column, else 0.
    pub label_offset: usize,
}

impl NmsConfig {
    fn row_len(&self) -> usize {
        self.num_classes + self.label_offset
    }
}

/// Where the detections go. Slots past the detections found are left as they are (the
/// caller zeroes them first).
pub struct DetectionOut<'a> {
    /// `[slots, 4]` corners.
    pub boxes: &'a mut [f32],
    /// `[slots]` class indices (without the background column) as floats.
    pub classes: &'a mut [f32],
    /// `[slots]`.
    pub scores: &'a mut [f32],
}

impl DetectionOut<'_> {
    fn put(&mut self, slot: usize, corners: &Corners, class: usize, score: f32) -> Option<()> {
        self.boxes
            .get_mut(slot * 4..slot * 4 + 4)?
            .copy_from_slice(corners);
        *self.classes.get_mut(slot)? = class as f32;
        *self.scores.get_mut(slot)? = score;
        Some(())
    }
}

/// Buffers for [`fast_nms`] with `n` anchors, `k = min(max_classes_per_detection,
/// num_classes)` and `m = min(max_detections, n)`.
pub struct FastScratch<'a> {
    /// `n`: each anchor's best class score.
    pub max_scores: &'a mut [f32],
    /// `n` each.
    pub nms: NmsScratch<'a>,
    /// `m`.
    pub selected: &'a mut [u32],
    /// `n * k`: each anchor's ranked classes.
    pub top_classes: &'a mut [u32],
    /// `num_classes`.
    pub work: &'a mut [u32],
}

/// The "fast" flavour: each anchor competes once, with its best class score; each kept
/// anchor reports its `k` best classes in `max_classes_per_detection` slots. `scores` holds
/// `[n, num_classes + label_offset]`. Returns the number of kept anchors, or `None` when a
/// buffer is too small.
pub fn fast_nms(
    cfg: &NmsConfig,
    boxes: &[Corners],
    scores: &[f32],
    scratch: FastScratch<'_>,
    out: &mut DetectionOut<'_>,
) -> Option<usize> {
    let n = boxes.len();
    let row = cfg.row_len();
    let k = cfg.max_classes_per_detection.min(cfg.num_classes);
    if scores.len() != n.checked_mul(row)? || k == 0 || scratch.max_scores.len() < n {
        return None;
    }
    let top = scratch.top_classes.get_mut(..n.checked_mul(k)?)?;
    for a in 0..n {
        let class_scores = &scores[a * row + cfg.label_offset..(a + 1) * row];
        let ranked = &mut top[a * k..(a + 1) * k];
        if k == 1 {
            ranked[0] = first_argmax(class_scores) as u32;
        } else if !partial_sort_desc(class_scores, k, scratch.work, ranked) {
            return None;
        }
        scratch.max_scores[a] = class_scores[ranked[0] as usize];
    }
    let mut nms = scratch.nms;
    let kept = nms_single_class(
        boxes,
        &scratch.max_scores[..n],
        cfg.score_threshold,
        cfg.iou_threshold,
        cfg.max_detections,
        &mut nms,
        scratch.selected,
    );
    for (d, &anchor) in scratch.selected[..kept].iter().enumerate() {
        let a = anchor as usize;
        for (c, &class) in top[a * k..(a + 1) * k].iter().enumerate() {
            let score = scores[a * row + cfg.label_offset + class as usize];
            out.put(
                d * cfg.max_classes_per_detection + c,
                &boxes[a],
                class as usize,
                score,
            )?;
        }
    }
    Some(kept)
}

/// Buffers for [`regular_nms`] with `n` anchors, `p = min(detections_per_class, n)` and
/// `m = max_detections`.
pub struct RegularScratch<'a> {
    /// `n`: one class's scores.
    pub class_scores: &'a mut [f32],
    /// `n` each.
    pub nms: NmsScratch<'a>,
    /// `p` each: one class's survivors, then their encoded indices and scores.
    pub selected: &'a mut [u32],
    pub selected_scores: &'a mut [f32],
    /// `m + p` each: the best detections over the classes so far.
    pub ranked_index: &'a mut [u32],
    pub ranked_score: &'a mut [f32],
}

/// The "regular" flavour: suppression per class, keeping up to `detections_per_class`
/// survivors each, then the `max_detections` best over all classes (one slot each). Returns
/// the number of detections, or `None` when a buffer is too small.
pub fn regular_nms(
    cfg: &NmsConfig,
    boxes: &[Corners],
    scores: &[f32],
    scratch: RegularScratch<'_>,
    out: &mut DetectionOut<'_>,
) -> Option<usize> {
    let n = boxes.len();
    let row = cfg.row_len();
    if scores.len() != n.checked_mul(row)?
        || u32::try_from(scores.len()).is_err()
        || scratch.class_scores.len() < n
        || scratch.selected_scores.len() < scratch.selected.len()
    {
        return None;
    }
    let class_scores = &mut scratch.class_scores[..n];
    let mut nms = scratch.nms;
    let mut ranked = 0;
    for class in 0..cfg.num_classes {
        let col = class + cfg.label_offset;
        for (a, s) in class_scores.iter_mut().enumerate() {
            *s = scores[a * row + col];
        }
        let kept = nms_single_class(
            boxes,
            class_scores,
            cfg.score_threshold,
            cfg.iou_threshold,
            cfg.detections_per_class,
            &mut nms,
            scratch.selected,
        );
        for (sel, sc) in scratch.selected[..kept]
            .iter_mut()
            .zip(scratch.selected_scores.iter_mut())
        {
            let a = *sel as usize;
            *sc = class_scores[a];
            // Fits in u32: below scores.len(), checked above.
            *sel = (a * row + col) as u32;
        }
        ranked = merge_ranked(
            scratch.ranked_index,
            scratch.ranked_score,
            ranked,
            &scratch.selected[..kept],
            &scratch.selected_scores[..kept],
            cfg.max_detections,
        );
    }
    for d in 0..ranked {
        let index = scratch.ranked_index[d] as usize;
        let anchor = index / row;
        let class = index - anchor * row - cfg.label_offset;
        out.put(d, boxes.get(anchor)?, class, scratch.ranked_score[d])?;
    }
    Some(ranked)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    #[test]
    fn decode_by_hand() {
        // Anchor centered at (0.5, 0.25) of size 0.2 x 0.4; encoding y=1 with y_scale 10 moves
        // the center by 0.1 * 0.2; h = 0 keeps the height, w = ln(2) * 5 doubles the width.
        let w = 2f32.ln() * 5.0;
        let b = decode_center_size(
            [1.0, 0.0, 0.0, w],
            [0.5, 0.25, 0.2, 0.4],
            [10.0, 10.0, 5.0, 5.0],
        );
        let want = [0.52 - 0.1, 0.25 - 0.4, 0.52 + 0.1, 0.25 + 0.4];
        for (g, w) in b.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{b:?} vs {want:?}");
        }
    }

    #[test]
    fn iou_by_hand() {
        let a = [0.0, 0.0, 2.0, 2.0];
        let b = [1.0, 1.0, 3.0, 3.0];
        assert_eq!(iou(&a, &b), 1.0 / 7.0);
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[5.0, 5.0, 6.0, 6.0]), 0.0);
        assert_eq!(iou(&a, &[1.0, 1.0, 1.0, 3.0]), 0.0);
    }

    /// Straightforward suppression: rank with a stable sort, then quadratic greedy selection.
    fn naive_nms(boxes: &[Corners], scores: &[f32], st: f32, it: f32, max_out: usize) -> Vec<u32> {
        let mut cand: Vec<u32> = (0..scores.len() as u32)
            .filter(|&i| scores[i as usize] >= st)
            .collect();
        cand.sort_by(|&a, &b| scores[b as usize].partial_cmp(&scores[a as usize]).unwrap());
        let mut out: Vec<u32> = Vec::new();
        for &c in &cand {
            if out.len() >= max_out {
                break;
            }
            if out
                .iter()
                .all(|&s| iou(&boxes[s as usize], &boxes[c as usize]) <= it)
            {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn nms_matches_naive() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for round in 0..300 {
            let n = 1 + rng.below(40);
            let boxes: Vec<Corners> = (0..n)
                .map(|_| {
                    let (y, x) = (rng.unit(), rng.unit());
                    let (h, w) = (rng.unit() * 0.5, rng.unit() * 0.5);
                    [y, x, y + h, x + w]
                })
                .collect();
            // Coarse scores so that ties are common.
            let scores: Vec<f32> = (0..n).map(|_| rng.below(8) as f32 / 8.0).collect();
            let max_out = rng.below(n + 2);
            let (st, it) = (0.25, if round % 2 == 0 { 0.3 } else { 0.6 });
            let mut cand = vec![0; n];
            let mut active = vec![0; n];
            let mut sel = vec![0; n];
            let mut scratch = NmsScratch {
                candidates: &mut cand,
                active: &mut active,
            };
            let k = nms_single_class(&boxes, &scores, st, it, max_out, &mut scratch, &mut sel);
            assert_eq!(sel[..k], naive_nms(&boxes, &scores, st, it, max_out)[..]);
        }
    }

    /// Whatever the tie order, the first k must be the k largest values, best first.
    #[test]
    fn partial_sort_gives_the_top_k_in_order() {
        let mut rng = Rng(7);
        for _ in 0..500 {
            let n = 1 + rng.below(20);
            let k = 1 + rng.below(n);
            let values: Vec<f32> = (0..n).map(|_| rng.below(5) as f32).collect();
            let mut work = vec![0; n];
            let mut out = vec![0; k];
            assert!(partial_sort_desc(&values, k, &mut work, &mut out));
            let got: Vec<f32> = out.iter().map(|&i| values[i as usize]).collect();
            let mut want = values.clone();
            want.sort_by(|a, b| b.partial_cmp(a).unwrap());
            assert_eq!(got, want[..k]);
            let mut seen = out.clone();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), k, "indices repeat: {out:?}");
        }
    }

    #[test]
    fn partial_sort_ties_match_libstdcxx() {
        // (values, first k indices) printed by a C++ program calling libstdc++'s
        // std::partial_sort on 0..n with `values[i] > values[j]` (GCC, x86_64).
        let cases: &[(&[f32], &[u32])] = &[
            (&[2.0], &[0]),
            (&[0.0, 2.0, 1.0, 1.0, 0.0, 0.0, 1.0], &[1, 6, 3, 2, 0]),
            (&[1.0, 0.0, 1.0], &[0]),
            (&[0.0, 1.0, 0.0, 2.0], &[3, 1]),
            (&[1.0, 0.0], &[0, 1]),
            (&[1.0, 2.0, 1.0], &[1, 0]),
            (&[0.0, 2.0, 2.0, 0.0, 2.0], &[4, 1, 2, 0, 3]),
            (&[0.0, 2.0, 0.0, 0.0, 1.0], &[1, 4, 3, 0, 2]),
            (
                &[0.0, 2.0, 2.0, 2.0, 2.0, 0.0, 1.0, 2.0],
                &[3, 4, 1, 7, 2, 6],
            ),
            (
                &[0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 1.0, 2.0, 0.0],
                &[7, 3, 6, 2, 1, 4],
            ),
            (&[2.0, 2.0, 1.0, 2.0, 0.0, 1.0, 1.0, 2.0], &[1, 3, 7, 0]),
            (&[0.0, 0.0, 1.0, 0.0, 0.0], &[2, 0, 3, 1, 4]),
            (&[1.0; 4], &[0, 1]),
            (&[1.0; 4], &[0, 1, 2]),
        ];
        for (values, want) in cases {
            let mut work = vec![0; values.len()];
            let mut out = vec![0; want.len()];
            assert!(partial_sort_desc(values, want.len(), &mut work, &mut out));
            assert_eq!(out, *want, "{values:?}");
        }
    }

    #[test]
    fn first_argmax_takes_the_first_maximum() {
        assert_eq!(first_argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(first_argmax(&[f32::NAN, 3.0]), 0);
        assert_eq!(first_argmax(&[]), 0);
    }

    #[test]
    fn merge_is_stable_and_capped() {
        let mut index = [1, 2, 3, 0, 0];
        let mut score = [0.9, 0.5, 0.5, 0.0, 0.0];
        let n = merge_ranked(&mut index, &mut score, 3, &[10, 11], &[0.7, 0.5], 4);
        assert_eq!(n, 4);
        assert_eq!(index[..4], [1, 10, 2, 3]);
        assert_eq!(score[..4], [0.9, 0.7, 0.5, 0.5]);
        // Against a stable sort of the concatenation, on random runs.
        let mut rng = Rng(3);
        for _ in 0..300 {
            let cap = 1 + rng.below(8);
            let (la, lb) = (rng.below(6).min(cap), rng.below(6));
            let mut run = |len: usize, base: u32| {
                let mut v: Vec<(u32, f32)> = (0..len)
                    .map(|i| (base + i as u32, rng.below(4) as f32))
                    .collect();
                v.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap());
                v
            };
            let first = run(la, 0);
            let extra = run(lb, 100);
            let mut want: Vec<(u32, f32)> = first.iter().chain(&extra).copied().collect();
            want.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap());
            want.truncate(cap);
            let len = first.len() + extra.len();
            let mut index = vec![0; len];
            let mut score = vec![0.0; len];
            for (i, &(ix, sc)) in first.iter().enumerate() {
                index[i] = ix;
                score[i] = sc;
            }
            let ei: Vec<u32> = extra.iter().map(|e| e.0).collect();
            let es: Vec<f32> = extra.iter().map(|e| e.1).collect();
            let n = merge_ranked(&mut index, &mut score, first.len(), &ei, &es, cap);
            let got: Vec<(u32, f32)> = index[..n]
                .iter()
                .copied()
                .zip(score[..n].iter().copied())
                .collect();
            assert_eq!(got, want);
        }
    }

    fn random_case(rng: &mut Rng, n: usize, row: usize, levels: usize) -> (Vec<Corners>, Vec<f32>) {
        let boxes = (0..n)
            .map(|_| {
                let (y, x) = (rng.unit(), rng.unit());
                let (h, w) = (0.1 + rng.unit() * 0.4, 0.1 + rng.unit() * 0.4);
                [y, x, y + h, x + w]
            })
            .collect();
        let scores = (0..n * row)
            .map(|_| {
                if levels == 0 {
                    rng.unit()
                } else {
                    rng.below(levels) as f32 / levels as f32
                }
            })
            .collect();
        (boxes, scores)
    }

    #[test]
    fn regular_matches_per_class_suppression_then_a_stable_sort() {
        let mut rng = Rng(0x51ed);
        for round in 0..200 {
            let n = 1 + rng.below(30);
            let num_classes = 1 + rng.below(4);
            let label_offset = round % 2;
            let row = num_classes + label_offset;
            let max_detections = 1 + rng.below(8);
            let per_class = (1 + rng.below(5)).min(max_detections);
            let (boxes, scores) = random_case(&mut rng, n, row, 6);
            let cfg = NmsConfig {
                max_detections,
                max_classes_per_detection: 1,
                detections_per_class: per_class,
                score_threshold: 0.3,
                iou_threshold: 0.4,
                num_classes,
                label_offset,
            };
            // Naive: each class's survivors in suppression order, classes in order, then a
            // stable sort by score and the best max_detections.
            let mut all: Vec<(f32, usize, usize)> = Vec::new();
            for c in 0..num_classes {
                let cs: Vec<f32> = (0..n).map(|a| scores[a * row + c + label_offset]).collect();
                for a in naive_nms(&boxes, &cs, 0.3, 0.4, per_class) {
                    all.push((cs[a as usize], a as usize, c));
                }
            }
            all.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap());
            all.truncate(max_detections);

            let (mut cls, mut cand, mut act) = (vec![0.0; n], vec![0; n], vec![0; n]);
            let (mut sel, mut sel_s) = (vec![0; per_class.min(n)], vec![0.0; per_class.min(n)]);
            let m = max_detections + per_class;
            let (mut ri, mut rs) = (vec![0; m], vec![0.0; m]);
            let (mut ob, mut oc, mut os) = (
                vec![0.0; max_detections * 4],
                vec![0.0; max_detections],
                vec![0.0; max_detections],
            );
            let found = regular_nms(
                &cfg,
                &boxes,
                &scores,
                RegularScratch {
                    class_scores: &mut cls,
                    nms: NmsScratch {
                        candidates: &mut cand,
                        active: &mut act,
                    },
                    selected: &mut sel,
                    selected_scores: &mut sel_s,
                    ranked_index: &mut ri,
                    ranked_score: &mut rs,
                },
                &mut DetectionOut {
                    boxes: &mut ob,
                    classes: &mut oc,
                    scores: &mut os,
                },
            )
            .unwrap();
            assert_eq!(found, all.len());
            for (d, &(score, anchor, class)) in all.iter().enumerate() {
                assert_eq!(os[d], score);
                assert_eq!(oc[d], class as f32);
                assert_eq!(ob[d * 4..d * 4 + 4], boxes[anchor]);
            }
        }
    }

    #[test]
    fn fast_matches_best_class_suppression() {
        let mut rng = Rng(0xfa57);
        for round in 0..200 {
            let n = 1 + rng.below(30);
            let num_classes = 1 + rng.below(5);
            let label_offset = round % 2;
            let row = num_classes + label_offset;
            let max_detections = 1 + rng.below(8);
            let per_detection = 1 + rng.below(3);
            // Continuous scores: no ties, so the class ranking is a plain sort.
            let (boxes, scores) = random_case(&mut rng, n, row, 0);
            let cfg = NmsConfig {
                max_detections,
                max_classes_per_detection: per_detection,
                detections_per_class: 1,
                score_threshold: 0.5,
                iou_threshold: 0.3,
                num_classes,
                label_offset,
            };
            let k = per_detection.min(num_classes);
            let ranked: Vec<Vec<usize>> = (0..n)
                .map(|a| {
                    let mut c: Vec<usize> = (0..num_classes).collect();
                    let s = |c: usize| scores[a * row + label_offset + c];
                    c.sort_by(|&x, &y| s(y).partial_cmp(&s(x)).unwrap());
                    c.truncate(k);
                    c
                })
                .collect();
            let best: Vec<f32> = (0..n)
                .map(|a| scores[a * row + label_offset + ranked[a][0]])
                .collect();
            let kept = naive_nms(&boxes, &best, 0.5, 0.3, max_detections);

            let slots = max_detections * per_detection;
            let (mut ms, mut cand, mut act) = (vec![0.0; n], vec![0; n], vec![0; n]);
            let mut sel = vec![0; max_detections.min(n)];
            let (mut top, mut work) = (vec![0; n * k], vec![0; num_classes]);
            let (mut ob, mut oc, mut os) =
                (vec![0.0; slots * 4], vec![0.0; slots], vec![0.0; slots]);
            let found = fast_nms(
                &cfg,
                &boxes,
                &scores,
                FastScratch {
                    max_scores: &mut ms,
                    nms: NmsScratch {
                        candidates: &mut cand,
                        active: &mut act,
                    },
                    selected: &mut sel,
                    top_classes: &mut top,
                    work: &mut work,
                },
                &mut DetectionOut {
                    boxes: &mut ob,
                    classes: &mut oc,
                    scores: &mut os,
                },
            )
            .unwrap();
            assert_eq!(found, kept.len());
            for (d, &a) in kept.iter().enumerate() {
                let a = a as usize;
                for (c, &class) in ranked[a].iter().enumerate() {
                    let slot = d * per_detection + c;
                    assert_eq!(oc[slot], class as f32);
                    assert_eq!(os[slot], scores[a * row + label_offset + class]);
                    assert_eq!(ob[slot * 4..slot * 4 + 4], boxes[a]);
                }
            }
        }
    }
}
