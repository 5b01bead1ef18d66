"""Fixtures of the indexing family: GATHER, GATHER_ND, DEPTH_TO_SPACE, SPACE_TO_DEPTH,
EMBEDDING_LOOKUP.

Index inputs that come from the model's inputs hold 0..7 (the input generator's integer
range), so the indexed axes have at least 8 entries there. EMBEDDING_LOOKUP is never emitted
by the TF 2.21 converter (it makes GATHER): `embedding_lookup_*` are GATHER models rewritten
in the flatbuffer (opcode, input order, options), and the `_hybrid` ones also get an int8 or
uint8 table with float output, the reference's dequantizing form.
"""

import numpy as np

X4 = [1, 6, 4, 8]


def fn(f):
    def build(rng):
        return f

    return build


def gather_const_params(shape, axis=0, batch_dims=0, dtype=np.float32):
    """GATHER from a constant table with run-time indices (the model's only input)."""

    def build(rng):
        import tensorflow as tf

        p = tf.constant((rng.uniform(-4, 4, size=shape)).astype(dtype))
        return lambda i: tf.gather(p, i, axis=axis, batch_dims=batch_dims)

    return build


def gather_const_indices(indices, axis=0, batch_dims=0):
    def build(rng):
        import tensorflow as tf

        idx = tf.constant(np.array(indices, dtype=np.int32))
        return lambda x: tf.gather(x, idx, axis=axis, batch_dims=batch_dims)

    return build


def gather_nd_const_indices(indices, batch_dims=0):
    def build(rng):
        import tensorflow as tf

        idx = tf.constant(np.array(indices, dtype=np.int32))
        return lambda x: tf.gather_nd(x, idx, batch_dims=batch_dims)

    return build


def lookup_table(rows, cols):
    def build(rng):
        import tensorflow as tf

        p = tf.constant(rng.uniform(-2, 2, size=[rows, cols]).astype(np.float32))
        return lambda i: tf.gather(p, i)

    return build


def patch_embedding_lookup(g, table_type=None, per_row=False):
    """GATHER(params, ids) -> EMBEDDING_LOOKUP(ids, value); optionally quantize the constant
    table to int8/uint8 (symmetric, zero point 0) keeping the float output."""

    def patch(model):
        from ai_edge_litert import schema_py_generated as schema

        ops = g._ops_named(model, "GATHER")
        assert len(ops) == 1
        op = ops[0]
        code = schema.OperatorCodeT()
        code.builtinCode = schema.BuiltinOperator.EMBEDDING_LOOKUP
        code.deprecatedBuiltinCode = schema.BuiltinOperator.EMBEDDING_LOOKUP
        code.version = 1
        model.operatorCodes.append(code)
        op.opcodeIndex = len(model.operatorCodes) - 1
        op.inputs = [op.inputs[1], op.inputs[0]]
        op.builtinOptionsType = 0
        op.builtinOptions = None
        if table_type is None:
            return
        sg = model.subgraphs[0]
        t = sg.tensors[op.inputs[1]]
        data = np.frombuffer(bytes(model.buffers[t.buffer].data), dtype=np.float32).reshape(t.shape)
        if per_row:
            scales = np.abs(data).max(axis=1) / 127.0
        else:
            scales = np.array([np.abs(data).max() / 127.0])
        q = np.round(data / scales.reshape(-1, 1)).clip(-127, 127).astype(np.int8)
        t.type = table_type
        qp = schema.QuantizationParametersT()
        qp.scale = [float(s) for s in scales.astype(np.float32)]
        qp.zeroPoint = [0] * len(scales)
        qp.quantizedDimension = 0
        t.quantization = qp
        # uint8 tables hold the same bytes: the reference reads them as int8.
        model.buffers[t.buffer].data = q.view(np.uint8).reshape(-1)

    return patch


def fixtures(g):
    tf = g._import_tf()
    from ai_edge_litert import schema_py_generated as schema

    fx = []

    def add(name, build, shapes, mode, **kw):
        # int8 versions only where the float one does not already cover the code path.
        if mode == g.INT8 and name[: -len("_int8")] not in ("gather_axis0", "gather_nd", "depth_to_space_b2"):
            return
        fx.append(g.Fixture(name, build, shapes, mode, **kw))

    for dt, mode in [("f32", g.F32), ("int8", g.INT8)]:
        add(f"gather_axis0_{dt}", gather_const_indices([3, 0, 5, 5, 1]), [[6, 4, 3]], mode)
        add(f"gather_axis2_{dt}", gather_const_indices([[1, 0], [2, 2], [0, 1]], axis=2), [X4], mode)
        add(f"gather_negaxis_{dt}", gather_const_indices([7, 0, 3], axis=-1), [X4], mode)
        add(
            f"gather_batchdims_{dt}",
            gather_const_indices([[2, 0, 1], [1, 1, 0]], axis=2, batch_dims=1),
            [[2, 4, 3, 5]],
            mode,
        )
        add(f"gather_nd_{dt}", gather_nd_const_indices([[0, 5, 1], [0, 2, 3], [0, 0, 0]]), [X4], mode)
        add(f"gather_nd_slices_{dt}", gather_nd_const_indices([[[4], [1]], [[0], [2]]]), [[5, 3, 2]], mode)
        add(f"depth_to_space_b2_{dt}", fn(lambda x: tf.nn.depth_to_space(x, 2)), [[1, 3, 5, 8]], mode)
        add(f"space_to_depth_b2_{dt}", fn(lambda x: tf.nn.space_to_depth(x, 2)), [[1, 4, 6, 3]], mode)
        add(f"depth_to_space_b3_{dt}", fn(lambda x: tf.nn.depth_to_space(x, 3)), [[1, 2, 3, 18]], mode)
    # Run-time indices (the model input): values 0..7.
    add("gather_runtime_idx_f32", gather_const_params([9, 5]), [[3, 4]], g.F32, dtypes=("int32",))
    add("gather_runtime_idx64_f32", gather_const_params([4, 8, 3], axis=1), [[5]], g.F32, dtypes=("int64",))
    add(
        "gather_runtime_idx_int32",
        gather_const_params([10, 3], dtype=np.int32),
        [[2, 2]],
        g.F32,
        dtypes=("int32",),
    )
    add(
        "gather_nd_runtime_f32",
        fn(lambda x, i: tf.gather_nd(x, i)),
        [[8, 8, 3], [4, 2]],
        g.F32,
        dtypes=("float32", "int32"),
    )
    add(
        "embedding_lookup_f32",
        lookup_table(10, 6),
        [[5]],
        g.F32,
        dtypes=("int32",),
        patch=patch_embedding_lookup(g),
        note="GATHER rewritten as EMBEDDING_LOOKUP",
    )
    add(
        "embedding_lookup_int8_hybrid",
        lookup_table(10, 6),
        [[5]],
        g.F32,
        dtypes=("int32",),
        patch=patch_embedding_lookup(g, schema.TensorType.INT8),
        note="EMBEDDING_LOOKUP with an int8 table (one scale), float output",
    )
    add(
        "embedding_lookup_perrow_hybrid",
        lookup_table(10, 6),
        [[5]],
        g.F32,
        dtypes=("int32",),
        patch=patch_embedding_lookup(g, schema.TensorType.INT8, per_row=True),
        note="EMBEDDING_LOOKUP with an int8 table (per-row scales), float output",
    )
    add(
        "embedding_lookup_uint8_hybrid",
        lookup_table(10, 6),
        [[5]],
        g.F32,
        dtypes=("int32",),
        patch=patch_embedding_lookup(g, schema.TensorType.UINT8),
        note="EMBEDDING_LOOKUP with a uint8 table, float output",
    )
    return fx
