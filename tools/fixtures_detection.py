"""Fixtures for TFLite_Detection_PostProcess (the SSD post-processing custom operator).

The converter fuses a tf.function declared with
experimental_implements='name: "TFLite_Detection_PostProcess" attr {...} ...' into the
custom operator, with the attributes as its flexbuffer options; this is how the TF Object
Detection API exports SSD models. The function body is a placeholder that is never run.

Two things the converter cannot express are patched into the flatbuffer afterwards:
- detections_per_class: the converter drops it from the options (the op then defaults to
  100), so regular-NMS fixtures that need a smaller value get it written into the map;
- uint8 operands: the converter only emits float inputs for this op, while models exported
  by the old quantizer feed it uint8 box encodings, class predictions and anchors; the
  uint8 fixtures take uint8 graph inputs and get quantization parameters patched on.
"""

import numpy as np

NAME = "TFLite_Detection_PostProcess"


def implements_signature(opts: dict) -> str:
    """The experimental_implements string for `opts` (int, float or bool values)."""
    parts = [f'name: "{NAME}"']
    for key, v in opts.items():
        if isinstance(v, bool):
            parts.append(f'attr {{ key: "{key}" value {{ b: {str(v).lower()} }} }}')
        elif isinstance(v, int):
            parts.append(f'attr {{ key: "{key}" value {{ i: {v} }} }}')
        else:
            parts.append(f'attr {{ key: "{key}" value {{ f: {float(v)!r} }} }}')
    return " ".join(parts)


def postprocess_fn(tf, opts: dict):
    """A function of (box encodings, class predictions, anchors) that converts to the op."""

    @tf.function(experimental_implements=implements_signature(opts))
    def postprocess(boxes, scores, anchors):
        del boxes, scores, anchors
        return (
            tf.constant(0.0, name="detection_boxes"),
            tf.constant(0.0, name="detection_classes"),
            tf.constant(0.0, name="detection_scores"),
            tf.constant(0.0, name="num_detections"),
        )

    return postprocess


def grid_anchors(cells: int, sizes) -> np.ndarray:
    """[cells * cells * len(sizes), 4] anchors as (y_center, x_center, h, w): a square grid
    over [0, 1] with one anchor per size per cell. Neighbouring cells and the sizes of one
    cell overlap, so suppression has work to do."""
    out = []
    step = 1.0 / cells
    for i in range(cells):
        for j in range(cells):
            for s in sizes:
                out.append([(i + 0.5) * step, (j + 0.5) * step, s, s * 0.8])
    return np.array(out, dtype=np.float32)


def base_options(**kw) -> dict:
    opts = {
        "max_detections": 6,
        "max_classes_per_detection": 1,
        "num_classes": 3,
        "nms_score_threshold": 0.3,
        "nms_iou_threshold": 0.5,
        "y_scale": 10.0,
        "x_scale": 10.0,
        "h_scale": 5.0,
        "w_scale": 5.0,
        "use_regular_nms": False,
    }
    opts.update(kw)
    return opts


def postprocess_only(g, opts: dict, anchors: np.ndarray, quantized=False, coarse=False):
    """The op alone: graph inputs are the box encodings and class predictions. With
    `coarse`, scores are floored to quarters first (FLOOR before the op), so that equal
    scores are everywhere and the tie-breaking rules decide the output."""

    def build(rng):
        tf = g._import_tf()
        fn = postprocess_fn(tf, opts)
        if quantized:
            # Anchors as uint8 with scale 1/255 (patched on later), rounded here.
            a = tf.constant(np.clip(np.round(anchors * 255.0), 0, 255).astype(np.uint8))
        else:
            a = tf.constant(anchors)
        if coarse:
            return lambda boxes, scores: fn(boxes, tf.floor(scores * 4.0) * 0.25, a)
        return lambda boxes, scores: fn(boxes, scores, a)

    return build


# Quantization patched onto uint8 operands: (scale, zero point).
UINT8_PARAMS = {"boxes": (0.02, 128), "scores": (1.0 / 256.0, 0), "anchors": (1.0 / 255.0, 0)}


def _custom_ops(model):
    ops = []
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        if code.customCode is not None and bytes(code.customCode).decode() == NAME:
            ops.append(op)
    return ops


def patch_options(**entries):
    """Adds or replaces entries of the op's flexbuffer options."""

    def patch(model):
        from flatbuffers import flexbuffers

        ops = _custom_ops(model)
        assert len(ops) == 1, "expected one post-processing op"
        opts = flexbuffers.Loads(bytes(ops[0].customOptions))
        opts.update(entries)
        ops[0].customOptions = list(flexbuffers.Dumps(opts))

    return patch


def patch_uint8(**entries):
    """Sets uint8 quantization on the op's three inputs (and options like patch_options)."""

    def patch(model):
        from ai_edge_litert import schema_py_generated as schema

        if entries:
            patch_options(**entries)(model)
        op = _custom_ops(model)[0]
        tensors = model.subgraphs[0].tensors
        for key, t in zip(["boxes", "scores", "anchors"], op.inputs):
            assert tensors[t].type == schema.TensorType.UINT8, tensors[t].name
            q = schema.QuantizationParametersT()
            scale, zp = UINT8_PARAMS[key]
            q.scale = [scale]
            q.zeroPoint = [zp]
            tensors[t].quantization = q

    return patch


def ssd_head(g, opts: dict, classes: int):
    """A tiny SSD: three strided convs over a 32x32x3 image, box and class heads (3x3 convs)
    on the 8x8 and 4x4 feature maps with 2 and 3 anchors per cell, sigmoid class scores
    with a background column, constant anchors, then the post-processing op."""
    maps = [(8, [0.3, 0.45]), (4, [0.5, 0.7, 0.9])]

    def build(rng):
        tf = g._import_tf()
        fn = postprocess_fn(tf, opts)
        anchors = tf.constant(np.concatenate([grid_anchors(c, s) for c, s in maps]))

        def conv_w(cin, cout, gain=1.5):
            std = gain * np.sqrt(2.0 / (9 * cin))
            return tf.constant(rng.normal(0.0, std, size=[3, 3, cin, cout]).astype(np.float32))

        def bias(n, lo=-0.3, hi=0.3):
            return tf.constant(rng.uniform(lo, hi, size=[n]).astype(np.float32))

        trunk = [(3, 8), (8, 16), (16, 16)]
        trunk_w = [(conv_w(i, o), bias(o)) for i, o in trunk]
        heads = []
        for (cells, sizes), cin in zip(maps, [16, 16]):
            a = len(sizes)
            box_w = conv_w(cin, a * 4, gain=0.5)
            cls_w = conv_w(cin, a * (classes + 1), gain=0.6)
            heads.append((cells, a, box_w, bias(a * 4), cls_w, bias(a * (classes + 1), -1.0, 0.5)))

        def f(x):
            feats = []
            y = x
            for w, b in trunk_w:
                y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(y, w, strides=2, padding="SAME"), b))
                feats.append(y)
            boxes, scores = [], []
            for (cells, a, bw, bb, cw, cb), feat in zip(heads, feats[1:]):
                bx = tf.nn.bias_add(tf.nn.conv2d(feat, bw, strides=1, padding="SAME"), bb)
                cl = tf.nn.bias_add(tf.nn.conv2d(feat, cw, strides=1, padding="SAME"), cb)
                boxes.append(tf.reshape(bx, [1, cells * cells * a, 4]))
                scores.append(tf.reshape(cl, [1, cells * cells * a, classes + 1]))
            box = tf.concat(boxes, axis=1)
            score = tf.sigmoid(tf.concat(scores, axis=1))
            return fn(box, score, anchors)

        return f

    return build


def fixtures(g):
    fx = []
    anchors = grid_anchors(4, [0.4, 0.3])  # 32 anchors
    n = len(anchors)

    def add(name, build, shapes, mode=g.F32, **kw):
        fx.append(g.Fixture(name, build, shapes, mode, **kw))

    # The float op alone, converter-built.
    # The fast flavour leaves slots past the detection count unwritten (stale memory in the
    # reference's goldens), so its fixtures fill every slot; the regular flavour zeroes them.
    fast = base_options(max_detections=10, nms_score_threshold=0.8)
    add("detection_postprocess_fast_f32", postprocess_only(g, fast, anchors), [[1, n, 4], [1, n, 4]])
    multi = base_options(max_classes_per_detection=2, max_detections=8, nms_score_threshold=0.7)
    add("detection_postprocess_fast_multiclass_f32", postprocess_only(g, multi, anchors), [[1, n, 4], [1, n, 4]])
    # Every class reported per detection; box encodings with keypoint columns after the
    # four box values; no background column. (More classes per detection than classes would
    # leave slots the reference never writes: their golden values would be stale memory.)
    wide = base_options(max_classes_per_detection=3, num_classes=3, max_detections=4, nms_iou_threshold=0.3)
    add("detection_postprocess_fast_nobg_f32", postprocess_only(g, wide, anchors), [[1, n, 6], [1, n, 3]])
    regular = base_options(use_regular_nms=True, max_detections=10, nms_score_threshold=0.7)
    add(
        "detection_postprocess_regular_f32",
        postprocess_only(g, regular, anchors),
        [[1, n, 4], [1, n, 4]],
        patch=patch_options(detections_per_class=3),
        note="detections_per_class = 3 written into the options (the converter drops it)",
    )
    add(
        "detection_postprocess_regular_default_f32",
        postprocess_only(g, base_options(use_regular_nms=True, max_detections=12, nms_iou_threshold=0.4), anchors),
        [[1, n, 4], [1, n, 4]],
    )

    # Equal scores everywhere: ranking ties (anchor order), class ties within an anchor
    # (libstdc++ partial_sort order) and ties across classes (merge order).
    add(
        "detection_postprocess_fast_ties_f32",
        postprocess_only(g, base_options(max_classes_per_detection=3, num_classes=4, max_detections=6, nms_score_threshold=0.25), anchors, coarse=True),
        [[1, n, 4], [1, n, 5]],
    )
    add(
        "detection_postprocess_regular_ties_f32",
        postprocess_only(g, base_options(use_regular_nms=True, num_classes=4, max_detections=12, nms_score_threshold=0.5), anchors, coarse=True),
        [[1, n, 4], [1, n, 5]],
        patch=patch_options(detections_per_class=5),
        note="detections_per_class = 5 written into the options (the converter drops it)",
    )

    # uint8 operands, as the old quantizer exported them; coarse scores make ties common.
    u8 = ("uint8", "uint8")
    add(
        "detection_postprocess_fast_uint8",
        postprocess_only(g, base_options(max_detections=10, nms_score_threshold=0.8), anchors, quantized=True),
        [[1, n, 4], [1, n, 4]],
        dtypes=u8,
        patch=patch_uint8(),
        note="uint8 quantization set on the op's inputs",
    )
    add(
        "detection_postprocess_fast_multiclass_uint8",
        postprocess_only(g, base_options(max_classes_per_detection=3, max_detections=5), anchors, quantized=True),
        [[1, n, 4], [1, n, 4]],
        dtypes=u8,
        patch=patch_uint8(),
        note="uint8 quantization set on the op's inputs",
    )
    add(
        "detection_postprocess_regular_uint8",
        postprocess_only(g, base_options(use_regular_nms=True, max_detections=10, nms_score_threshold=0.9), anchors, quantized=True),
        [[1, n, 4], [1, n, 4]],
        dtypes=u8,
        patch=patch_uint8(detections_per_class=4),
        note="uint8 quantization set on the op's inputs; detections_per_class = 4",
    )

    # A whole (tiny) SSD detector. Quantized, the converter keeps the op in float behind two
    # DEQUANTIZEs (its int8 kernel does not exist), hence float I/O.
    ssd = base_options(max_detections=10, num_classes=3, nms_score_threshold=0.5, nms_iou_threshold=0.45)
    add("zoo_ssd_head_f32", ssd_head(g, ssd, 3), [[1, 32, 32, 3]])
    add("zoo_ssd_head_int8", ssd_head(g, ssd, 3), [[1, 32, 32, 3]], g.INT8_FLOATIO)
    add("zoo_ssd_head_fp16", ssd_head(g, ssd, 3), [[1, 32, 32, 3]], g.FP16)
    add("zoo_ssd_head_dynamic", ssd_head(g, ssd, 3), [[1, 32, 32, 3]], g.DYNAMIC)
    return fx
