"""Fixtures of the data-movement family: CONCATENATION, PAD, PADV2, MIRROR_PAD, TRANSPOSE,
STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK, UNPACK, SHAPE, TILE, BROADCAST_TO.

Every op reads at least one model input (the converter folds ops on constants). Shapes are
small and odd so that no two axes have the same size. Some variants need patches:
`_uint8` fixtures are int8 conversions whose int8 tensors were turned into uint8 (zero point
+ 128), and `strided_slice_offset_*` sets the `offset` option, which the converter does not
emit, rewriting `end` into sizes.
"""

import numpy as np

X4 = [1, 5, 7, 3]

INT8_KEPT = {
    "concat_lastaxis",
    "concat_axis1_const",
    "pad_hw",
    "padv2_const",
    "mirror_pad_reflect",
    "mirror_pad_symmetric",
    "transpose_nchw",
    "strided_slice_negstride",
    "strided_slice_offset",
    "split_axis2",
    "pack_axis1",
    "unpack_axis1",
}


def fn(f):
    def build(rng):
        return f

    return build


def with_const(shape, f):
    """f(x, c) with a random constant c of `shape`."""

    def build(rng):
        import tensorflow as tf

        c = tf.constant(rng.uniform(-1.0, 1.0, size=shape).astype(np.float32))
        return lambda x: f(x, c)

    return build


# ---------------------------------------------------------------- patches


def _ops_named(g, model, name):
    return g._ops_named(model, name)


def patch_to_uint8(model):
    """Turns every int8 tensor of subgraph 0 into uint8 with the zero point moved by 128
    (the same real values), so that the ops run their uint8 kernels."""
    from ai_edge_litert import schema_py_generated as schema

    sg = model.subgraphs[0]
    for t in sg.tensors:
        if t.type != schema.TensorType.INT8:
            continue
        t.type = schema.TensorType.UINT8
        q = t.quantization
        if q is not None and q.zeroPoint is not None:
            q.zeroPoint = [int(z) + 128 for z in q.zeroPoint]
        buf = model.buffers[t.buffer]
        if buf.data is not None and len(buf.data) > 0:
            buf.data = (np.frombuffer(bytes(buf.data), dtype=np.int8).astype(np.int16) + 128).astype(np.uint8)


def patch_concat_uint8_rescale(model):
    """uint8 CONCATENATION whose inputs have their own scales and zero points, so that the
    reference rescales them (ConcatenationWithScaling)."""
    patch_to_uint8(model)
    sg = model.subgraphs[0]
    op = sg.operators[0]
    for k, (scale, zp) in zip(op.inputs, [(0.011, 100), (0.02, 140)]):
        q = sg.tensors[k].quantization
        q.scale = [scale]
        q.zeroPoint = [zp]


def patch_strided_slice_offset(g):
    def patch(model):
        import numpy as np

        ops = _ops_named(g, model, "STRIDED_SLICE")
        assert len(ops) == 1
        op = ops[0]
        o = op.builtinOptions
        o.offset = True
        sg = model.subgraphs[0]
        dims = sg.tensors[op.inputs[0]].shape
        begin = sg.tensors[op.inputs[1]]
        end = sg.tensors[op.inputs[2]]
        b = np.frombuffer(bytes(model.buffers[begin.buffer].data), dtype=np.int32)
        e = np.frombuffer(bytes(model.buffers[end.buffer].data), dtype=np.int32).copy()
        # In offset mode the reference sizes the output from `end` alone, masks or not:
        # spell masked axes out as whole ranges and clear the masks.
        for i in range(len(e)):
            if o.beginMask & (1 << i):
                b = b.copy()
                b[i] = 0
            if o.endMask & (1 << i):
                e[i] = dims[i]
        o.beginMask = 0
        o.endMask = 0
        # end becomes a size relative to begin (buffers may be shared: give each its own).
        for t, values in [(begin, b), (end, e - b)]:
            model.buffers.append(type(model.buffers[t.buffer])())
            model.buffers[-1].data = values.astype(np.int32).view(np.uint8)
            t.buffer = len(model.buffers) - 1

    return patch


def patch_strided_slice(g, spec_begin, spec_end, spec_strides, **masks):
    """Replaces the slice spec of the model's STRIDED_SLICE (the converter resolves
    ellipsis and new-axis specs itself, so those masks need a patch)."""

    def patch(model):
        from ai_edge_litert import schema_py_generated as schema

        ops = _ops_named(g, model, "STRIDED_SLICE")
        assert len(ops) == 1
        op = ops[0]
        sg = model.subgraphs[0]
        for k, values in zip(op.inputs[1:], [spec_begin, spec_end, spec_strides]):
            buf = schema.BufferT()
            buf.data = np.array(values, dtype=np.int32).view(np.uint8)
            model.buffers.append(buf)
            t = sg.tensors[k]
            t.buffer = len(model.buffers) - 1
            t.shape = [len(values)]
        o = op.builtinOptions
        o.beginMask = masks.get("begin", 0)
        o.endMask = masks.get("end", 0)
        o.ellipsisMask = masks.get("ellipsis", 0)
        o.newAxisMask = masks.get("new_axis", 0)
        o.shrinkAxisMask = masks.get("shrink", 0)

    return patch


def patch_slice_to_offset_strided_slice(g):
    """SLICE(x, begin, size) -> STRIDED_SLICE(x, begin, size, ones) with offset=true: the
    converter's form of a dynamic slice, with the (run-time) begin kept."""

    def patch(model):
        from ai_edge_litert import schema_py_generated as schema

        ops = _ops_named(g, model, "SLICE")
        assert len(ops) == 1
        op = ops[0]
        sg = model.subgraphs[0]
        rank = len(sg.tensors[op.inputs[0]].shape)
        buf = schema.BufferT()
        buf.data = np.ones(rank, dtype=np.int32).view(np.uint8)
        model.buffers.append(buf)
        t = schema.TensorT()
        t.shape = [rank]
        t.type = schema.TensorType.INT32
        t.buffer = len(model.buffers) - 1
        t.name = "strides"
        sg.tensors.append(t)
        op.inputs = list(op.inputs) + [len(sg.tensors) - 1]
        code = schema.OperatorCodeT()
        code.builtinCode = schema.BuiltinOperator.STRIDED_SLICE
        code.deprecatedBuiltinCode = schema.BuiltinOperator.STRIDED_SLICE
        code.version = 1
        model.operatorCodes.append(code)
        op.opcodeIndex = len(model.operatorCodes) - 1
        o = schema.StridedSliceOptionsT()
        o.offset = True
        op.builtinOptionsType = schema.BuiltinOptions.StridedSliceOptions
        op.builtinOptions = o

    return patch


def fixtures(g):
    tf = g._import_tf()
    fx = []

    def add(name, build, shapes, mode, **kw):
        # Pure copies run the same code for every 1-byte type: keep int8 versions only where
        # quantization matters (parameter checks, pad values) or the converter emits
        # something else for int8.
        if mode == g.INT8 and name.endswith("_int8") and name[: -len("_int8")] not in INT8_KEPT:
            return
        fx.append(g.Fixture(name, build, shapes, mode, **kw))

    two = (1.0, 2.5)
    for dt, mode in [("f32", g.F32), ("int8", g.INT8)]:
        # CONCATENATION
        add(
            f"concat_lastaxis_{dt}",
            fn(lambda a, b: tf.concat([a, b], axis=-1)),
            [[1, 5, 7, 3], [1, 5, 7, 2]],
            mode,
            rep_scales=two,
        )
        add(
            f"concat_axis1_const_{dt}",
            with_const([1, 2, 7, 3], lambda x, c: tf.concat([x, c, x * 2.0], axis=1)),
            [X4],
            mode,
        )
        # PAD, PADV2, MIRROR_PAD
        add(f"pad_hw_{dt}", fn(lambda x: tf.pad(x, [[0, 0], [1, 2], [2, 0], [0, 0]])), [X4], mode)
        add(f"pad_all_{dt}", fn(lambda x: tf.pad(x, [[1, 0], [0, 1], [1, 1], [2, 1]])), [X4], mode)
        add(
            f"padv2_const_{dt}",
            fn(lambda x: tf.pad(x, [[0, 0], [2, 1], [0, 3], [0, 0]], constant_values=0.5)),
            [X4],
            mode,
        )
        for m in ["REFLECT", "SYMMETRIC"]:
            add(
                f"mirror_pad_{m.lower()}_{dt}",
                fn(lambda x, m=m: tf.pad(x, [[0, 0], [2, 1], [1, 2], [0, 0]], mode=m)),
                [X4],
                mode,
            )
        # TRANSPOSE
        add(f"transpose_nchw_{dt}", fn(lambda x: tf.transpose(x, [0, 3, 1, 2])), [X4], mode)
        add(f"transpose_rank5_{dt}", fn(lambda x: tf.transpose(x, [4, 2, 0, 3, 1])), [[2, 3, 1, 5, 4]], mode)
        add(f"transpose_rank2_{dt}", fn(lambda x: tf.transpose(x)), [[6, 5]], mode)
        # STRIDED_SLICE (masks come from Python slicing)
        add(f"strided_slice_basic_{dt}", fn(lambda x: x[:, 1:4, ::2, :]), [X4], mode)
        add(f"strided_slice_negstride_{dt}", fn(lambda x: x[:, ::-1, 5:0:-2, :]), [X4], mode)
        add(f"strided_slice_shrink_{dt}", fn(lambda x: x[:, 2, :, 1]), [X4], mode)
        add(f"strided_slice_negidx_{dt}", fn(lambda x: x[:, -3:, :-1, -2:]), [X4], mode)
        add(f"strided_slice_ellipsis_{dt}", fn(lambda x: x[..., 1:3]), [X4], mode)
        add(f"strided_slice_newaxis_{dt}", fn(lambda x: x[:, tf.newaxis, 1:4, 2]), [[1, 5, 7]], mode)
        add(
            f"strided_slice_offset_{dt}",
            fn(lambda x: x[:, 1:4, 2:6, :]),
            [X4],
            mode,
            patch=patch_strided_slice_offset(g),
            note="offset=true, end rewritten as sizes",
        )
        # SLICE
        add(f"slice_sizes_{dt}", fn(lambda x: tf.slice(x, [0, 1, 2, 0], [1, 3, -1, 2])), [X4], mode)
        # SPLIT, SPLIT_V
        add(f"split_axis2_{dt}", fn(lambda x: tf.split(x, 3, axis=2)), [[1, 5, 6, 3]], mode)
        add(f"split_v_{dt}", fn(lambda x: tf.split(x, [2, -1, 1], axis=1)), [[1, 7, 5, 3]], mode)
        # PACK, UNPACK
        add(f"pack_axis1_{dt}", fn(lambda a, b: tf.stack([a, b * 2.0, a + b], axis=1)), [[5, 3], [5, 3]], mode, rep_scales=(1.0, 1.0))
        add(f"unpack_axis1_{dt}", fn(lambda x: tf.unstack(x, axis=1)), [[2, 3, 5]], mode)
        # TILE, BROADCAST_TO
        add(f"tile_{dt}", fn(lambda x: tf.tile(x, [2, 1, 3])), [[2, 3, 4]], mode)
        add(f"broadcast_to_{dt}", fn(lambda x: tf.broadcast_to(x, [2, 4, 5, 3])), [[4, 1, 3]], mode)

    # Ellipsis and new-axis masks as the reference resolves them (patched specs).
    ss = fn(lambda x: x[:, 1:2])
    for name, shape, spec, masks, note in [
        ("ellipsis_last", [1, 5, 7, 3], ([0, 1], [0, 3], [1, 1]), {"ellipsis": 1}, "x[..., 1:3]"),
        ("ellipsis_mid", [4, 5, 6, 3], ([1, 0, 0], [3, 0, 2], [1, 1, 1]), {"ellipsis": 2}, "x[1:3, ..., 0:2]"),
        (
            "newaxis_mask",
            [4, 5, 3],
            ([1, 0, 0, 0], [3, 0, 0, 2], [1, 1, 1, 1]),
            {"new_axis": 2, "begin": 4, "end": 4},
            "x[1:3, newaxis, :, 0:2]",
        ),
        (
            "ellipsis_newaxis",
            [4, 5, 3],
            ([0, 0, 1], [0, 0, 2], [1, 1, 1]),
            {"ellipsis": 1, "new_axis": 2},
            "x[..., newaxis, 1:2]",
        ),
        (
            "shrink_neg",
            [4, 5, 3],
            ([-1, 0, -2], [0, 0, 0], [1, -1, 1]),
            {"shrink": 5, "begin": 2, "end": 2},
            "x[-1, ::-1, -2]",
        ),
    ]:
        add(
            f"strided_slice_{name}_f32",
            ss,
            [shape],
            g.F32,
            patch=patch_strided_slice(g, *spec, **masks),
            note=f"spec patched to {note}",
        )

    # Run-time begin (the input generator's int32 values are 0..7, all valid here).
    dyn = fn(lambda x, b: tf.slice(x, b, [1, 2, 3]))
    add("slice_dynbegin_f32", dyn, [[8, 9, 10], [3]], g.F32, dtypes=("float32", "int32"))
    add(
        "strided_slice_offset_dynbegin_f32",
        dyn,
        [[8, 9, 10], [3]],
        g.F32,
        dtypes=("float32", "int32"),
        patch=patch_slice_to_offset_strided_slice(g),
        note="SLICE rewritten as STRIDED_SLICE with offset=true",
    )

    # Dtype coverage for the byte movers: int32, int64 and bool tensors.
    for name, dtype in [("int32", "int32"), ("int64", "int64"), ("bool", "bool")]:
        add(f"concat_axis0_{name}", fn(lambda a, b: tf.concat([a, b], axis=0)), [[2, 3], [1, 3]], g.F32, dtypes=(dtype, dtype))
        add(f"transpose_{name}", fn(lambda x: tf.transpose(x, [1, 2, 0])), [[2, 3, 4]], g.F32, dtypes=(dtype,))
        add(f"strided_slice_{name}", fn(lambda x: x[1:, ::-2]), [[3, 5]], g.F32, dtypes=(dtype,))
        add(f"tile_{name}", fn(lambda x: tf.tile(x, [3, 2])), [[2, 3]], g.F32, dtypes=(dtype,))
        add(f"pad_{name}", fn(lambda x: tf.pad(x, [[1, 0], [0, 2]])), [[2, 3]], g.F32, dtypes=(dtype,))

    # int16 activations (int16x8 quantization).
    # (one source, so that the converter needs no int16 requantization to align scales)
    add("concat_lastaxis_int16", fn(lambda x: tf.concat([x, x[..., 1:]], axis=-1)), [X4], g.INT16X8)
    add("pad_hw_int16", fn(lambda x: tf.pad(x, [[0, 0], [1, 2], [2, 0], [0, 0]])), [X4], g.INT16X8)
    add("transpose_nchw_int16", fn(lambda x: tf.transpose(x, [0, 3, 1, 2])), [X4], g.INT16X8)
    add("strided_slice_negstride_int16", fn(lambda x: x[:, ::-1, 5:0:-2, :]), [X4], g.INT16X8)

    # SHAPE (dynamic batch keeps it from being folded) and the flatten pattern that uses it.
    add("shape_int32", fn(lambda x: tf.shape(x)), [[None, 4, 6]], g.F32)
    add("shape_int64", fn(lambda x: tf.shape(x, out_type=tf.int64)), [[None, 4, 6]], g.F32)
    add("shape_flatten_f32", fn(lambda x: tf.reshape(x, [tf.shape(x)[0], -1])), [[None, 3, 4, 5]], g.F32)
    # uint8 kernels: CONCATENATION with rescaling, PAD with the zero point.
    add(
        "concat_rescale_uint8",
        fn(lambda a, b: tf.concat([a, b], axis=-1)),
        [[1, 5, 7, 3], [1, 5, 7, 2]],
        g.INT8,
        rep_scales=two,
        patch=patch_concat_uint8_rescale,
        note="int8 model turned uint8, inputs given their own quantization",
    )
    add(
        "pad_uint8",
        fn(lambda x: tf.pad(x, [[0, 0], [1, 2], [2, 0], [0, 0]])),
        [X4],
        g.INT8,
        patch=patch_to_uint8,
        note="int8 model turned uint8",
    )
    return fx
