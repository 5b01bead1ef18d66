"""Fixtures of the layers family: TRANSPOSE_CONV, BATCH_MATMUL, LOG_SOFTMAX,
L2_NORMALIZATION, RANGE, DEQUANTIZE of int4 constants and DENSIFY.

Shapes are small and odd so that no two axes share a size. TRANSPOSE_CONV needs a static
batch (its output_shape input is a constant). RANGE only survives conversion when its
operands depend on a dynamic shape; int4 weights and sparse weights need patches (see the
`patch_*` functions below).
"""

import numpy as np

X = [1, 4, 5, 3]


def transpose_conv(g, cin, cout, k, stride, padding, act="none", use_bias=True, out_hw=None):
    """tf.nn.conv2d_transpose from [1, 4, 5, cin]; `out_hw` overrides the output size
    (any size the forward conv maps back to the input is valid)."""

    def build(rng):
        tf = g._import_tf()
        activation, bias, weights = g.activation, g.bias, g.weights
        w = tf.constant(weights(rng, [k[0], k[1], cout, cin], k[0] * k[1] * cin / (stride[0] * stride[1])))
        b = tf.constant(bias(rng, cout)) if use_bias else None
        h, wd = X[1], X[2]
        if out_hw is None:
            if padding == "SAME":
                oh, ow = h * stride[0], wd * stride[1]
            else:
                oh, ow = (h - 1) * stride[0] + k[0], (wd - 1) * stride[1] + k[1]
        else:
            oh, ow = out_hw

        def fn(x):
            y = tf.nn.conv2d_transpose(x, w, [1, oh, ow, cout], strides=[1, *stride, 1], padding=padding)
            if b is not None:
                y = tf.nn.bias_add(y, b)
            return activation(y, act)

        return fn

    return build


def keras_transpose_conv(rng):
    """Keras Conv2DTranspose with a dynamic batch: the converter computes output_shape at run
    time (SHAPE, STRIDED_SLICE, PACK), which ferrolite folds at preparation."""
    import keras
    from keras import layers

    keras.backend.clear_session()
    inp = keras.Input((4, 5, 3), name="input")
    out = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(inp)
    model = keras.Model(inp, out)
    layer = model.layers[-1]
    layer.set_weights(
        [
            rng.normal(0.0, 0.6, size=(3, 3, 4, 3)).astype(np.float32),
            rng.uniform(-0.5, 0.5, size=4).astype(np.float32),
        ]
    )
    return model


def fn(f):
    def build(rng):
        return f

    return build


def with_const(shape, f, scale=1.0):
    def build(rng):
        import tensorflow as tf

        c = tf.constant((rng.uniform(-1.0, 1.0, size=shape) * scale).astype(np.float32))
        return lambda x: f(x, c)

    return build


def patch_range_f32(g, start, limit, delta):
    """Turns the int32 RANGE (fed by shape arithmetic, then CAST to float) into a float32
    RANGE of constant operands feeding the MUL directly: the converter folds constant float
    ranges, and ferrolite folds RANGE only when its operands are known at preparation."""

    def patch(model):
        from ai_edge_litert import schema_py_generated as schema

        sg = model.subgraphs[0]
        (rng_op,) = g._ops_named(model, "RANGE")
        (cast_op,) = g._ops_named(model, "CAST")
        for k, v in enumerate((start, limit, delta)):
            t = schema.TensorT()
            t.shape = []
            t.type = schema.TensorType.FLOAT32
            t.name = f"range_operand_{k}".encode()
            b = schema.BufferT()
            b.data = np.array([v], np.float32).view(np.uint8)
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
            sg.tensors.append(t)
            rng_op.inputs[k] = len(sg.tensors) - 1
        sg.tensors[rng_op.outputs[0]].type = schema.TensorType.FLOAT32
        cast_out = cast_op.outputs[0]
        for op in sg.operators:
            op.inputs = [rng_op.outputs[0] if i == cast_out else i for i in op.inputs]
        sg.operators.remove(cast_op)

    return patch


def patch_int4(g, per_channel, zero_point=0, seed=7):
    """Replaces the (fp16) weights of the model's weight DEQUANTIZE with packed INT4 values
    (two per byte, low nibble first), quantized per tensor or per output channel (axis 0)."""

    def patch(model):
        from ai_edge_litert import schema_py_generated as schema

        sg = model.subgraphs[0]
        # The weights' DEQUANTIZE: the one with the largest constant.
        dq = max(g._ops_named(model, "DEQUANTIZE"), key=lambda o: np.prod(sg.tensors[o.inputs[0]].shape))
        t = sg.tensors[dq.inputs[0]]
        n = int(np.prod(t.shape))
        rng = np.random.default_rng(seed)
        q = rng.integers(-8, 8, size=n).astype(np.int16)
        nib = (q & 0xF).astype(np.uint8)
        if n % 2:
            nib = np.append(nib, np.uint8(rng.integers(0, 16)))  # unused high nibble
        packed = (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)
        b = schema.BufferT()
        b.data = packed
        model.buffers.append(b)
        t.buffer = len(model.buffers) - 1
        t.type = schema.TensorType.INT4
        qp = schema.QuantizationParametersT()
        if per_channel:
            c = t.shape[0]
            qp.scale = list((0.05 + 0.1 * rng.random(c)).astype(np.float32))
            qp.zeroPoint = [zero_point] * c
            qp.quantizedDimension = 0
        else:
            qp.scale = [0.0731]
            qp.zeroPoint = [zero_point]
        t.quantization = qp

    return patch


def sparse_weights_conv(rng_mask=0.75):
    """CONV_2D with mostly-zero weights (the dense float model is the reference)."""

    def build(rng):
        import tensorflow as tf

        w = rng.normal(0.0, 0.5, size=[3, 3, 5, 4]).astype(np.float32)
        w[rng.random(w.shape) < rng_mask] = 0.0
        w = tf.constant(w)
        return lambda x: tf.nn.conv2d(x, w, strides=1, padding="SAME")

    return build


def block_sparse_fc(k=8, units=3):
    """x @ w with w [k, units] zero except for some 4-wide blocks along k (the converter stores
    FULLY_CONNECTED weights as [units, k], so blocks run along the second dimension)."""

    def build(rng):
        import tensorflow as tf

        w = rng.normal(0.0, 0.5, size=[units, k]).astype(np.float32)
        keep = rng.random([units, k // 4]) < 0.5
        keep[0, 0] = True
        keep[1, :] = False  # one row with no blocks at all
        w *= np.repeat(keep, 4, axis=1)
        w = tf.constant(w.T.copy())
        return lambda x: tf.matmul(x, w)

    return build


def sparse_add(rng):
    """x + c with c [3, 8] zero except for some 4-wide blocks."""
    import tensorflow as tf

    c = rng.uniform(-1.0, 1.0, size=[3, 8]).astype(np.float32)
    c[:, :4] *= np.array([[1.0], [0.0], [1.0]], np.float32)
    c[:, 4:] *= np.array([[0.0], [0.0], [1.0]], np.float32)
    c = tf.constant(c)
    return lambda x: x + c


def patch_densify(g, op_name, block=None, index_type="int32", native=False):
    """Stores the weights (input 1) of the model's `op_name` sparsely and inserts a DENSIFY
    that rebuilds them: CSR on the last dimension, or (block=n, 2-D weights) CSR over blocks
    of n along dimension 1 with a dense inner block dimension. Index vectors are int32 or
    uint8. `native`: no DENSIFY, the op reads the sparse weights itself."""

    def patch(model):
        from ai_edge_litert import schema_py_generated as schema

        sg = model.subgraphs[0]
        (op,) = g._ops_named(model, op_name)
        wi = op.inputs[1]
        w = sg.tensors[wi]
        dtype = np.float32 if w.type == schema.TensorType.FLOAT32 else np.int8
        dense = np.frombuffer(bytes(model.buffers[w.buffer].data), dtype=dtype).reshape(w.shape)
        # int8: blocks holding only the zero point are dropped (DENSIFY refills them with raw
        # 0, so the patched model differs from the float one; the reference defines it).
        zero = 0
        if dtype == np.int8 and w.quantization is not None and w.quantization.zeroPoint is not None:
            zero = int(w.quantization.zeroPoint[0])

        def dense_dim(n):
            m = schema.DimensionMetadataT()
            m.format = schema.DimensionType.DENSE
            m.denseSize = int(n)
            return m

        def vec(values):
            if index_type == "int32":
                v = schema.Int32VectorT()
                v.values = [int(x) for x in values]
                return schema.SparseIndexVector.Int32Vector, v
            v = schema.Uint8VectorT()
            v.values = [int(x) for x in values]
            return schema.SparseIndexVector.Uint8Vector, v

        def csr_dim(segments, indices):
            m = schema.DimensionMetadataT()
            m.format = schema.DimensionType.SPARSE_CSR
            m.arraySegmentsType, m.arraySegments = vec(segments)
            m.arrayIndicesType, m.arrayIndices = vec(indices)
            return m

        segs, idx, vals = [0], [], []
        if block is None:
            for row in dense.reshape(-1, dense.shape[-1]):
                nz = np.nonzero(row)[0]
                idx += list(nz)
                vals += list(row[nz])
                segs.append(len(idx))
            traversal = list(range(dense.ndim))
            block_map = []
            dims = [dense_dim(n) for n in dense.shape[:-1]] + [csr_dim(segs, idx)]
        else:
            r, c = dense.shape
            blocks = dense.reshape(r, c // block, block)
            for i in range(r):
                for j in range(c // block):
                    if np.any(blocks[i, j] != zero):
                        idx.append(j)
                        vals += list(blocks[i, j])
                segs.append(len(idx))
            traversal = [0, 1, 2]
            block_map = [1]
            dims = [dense_dim(r), csr_dim(segs, idx), dense_dim(block)]
        sparsity = schema.SparsityParametersT()
        sparsity.traversalOrder = traversal
        sparsity.blockMap = block_map
        sparsity.dimMetadata = dims

        b = schema.BufferT()
        b.data = np.array(vals, dtype=dtype).view(np.uint8)
        model.buffers.append(b)
        if native:
            w.sparsity = sparsity
            w.buffer = len(model.buffers) - 1
            return
        st = schema.TensorT()
        st.shape = list(w.shape)
        st.type = w.type
        st.name = w.name + b"_sparse"
        st.quantization = w.quantization
        st.sparsity = sparsity
        st.buffer = len(model.buffers) - 1
        sg.tensors.append(st)
        # The dense weights become DENSIFY's output: no data of their own.
        model.buffers.append(schema.BufferT())
        w.buffer = len(model.buffers) - 1

        code = next(
            (i for i, c in enumerate(model.operatorCodes) if max(c.builtinCode, c.deprecatedBuiltinCode) == 124),
            None,
        )
        if code is None:
            c = schema.OperatorCodeT()
            c.builtinCode = 124
            c.deprecatedBuiltinCode = 124
            c.version = 1
            model.operatorCodes.append(c)
            code = len(model.operatorCodes) - 1
        d = schema.OperatorT()
        d.opcodeIndex = code
        d.inputs = [len(sg.tensors) - 1]
        d.outputs = [wi]
        d.builtinOptionsType = schema.BuiltinOptions.DensifyOptions
        d.builtinOptions = schema.DensifyOptionsT()
        sg.operators.insert(0, d)

    return patch


def fixtures(g):
    tf = g._import_tf()
    fx = []

    def add(name, build, shapes, mode=g.F32, **kw):
        fx.append(g.Fixture(name, build, shapes, mode, **kw))

    # ------------------------------------------------------------ TRANSPOSE_CONV
    tc = [
        ("same_s2", dict(k=(3, 3), stride=(2, 2), padding="SAME")),
        ("valid_s2_relu", dict(k=(3, 3), stride=(2, 2), padding="VALID", act="relu")),
        ("same_s1_k2x3_nobias", dict(k=(2, 3), stride=(1, 1), padding="SAME", use_bias=False)),
        ("valid_s2x1_k3x2_relu6", dict(k=(3, 2), stride=(2, 1), padding="VALID", act="relu6")),
        # SAME with an odd output size: the odd padding pixel and a non-multiple size.
        ("same_s2_odd", dict(k=(3, 3), stride=(2, 2), padding="SAME", out_hw=(7, 9))),
    ]
    for dt, mode in (("f32", g.F32), ("int8", g.INT8)):
        for tag, kw in tc:
            add(f"transpose_conv_{tag}_{dt}", transpose_conv(g, 3, 4, **kw), [X], mode)
    add("transpose_conv_keras_dynbatch_f32", keras_transpose_conv, [[None, 4, 5, 3]], keras=True)
    add("transpose_conv_keras_dynbatch_int8", keras_transpose_conv, [[None, 4, 5, 3]], g.INT8, keras=True)
    add("transpose_conv_same_s2_int16", transpose_conv(g, 3, 4, k=(3, 3), stride=(2, 2), padding="SAME"), [X], g.INT16X8)
    add("transpose_conv_same_s2_bias32_int16", transpose_conv(g, 3, 4, k=(3, 3), stride=(2, 2), padding="SAME"), [X], g.INT16X8_BIAS32)
    # Dynamic range: the converter only quantizes weights of 1024 values or more.
    for tag, kw in tc[:2]:
        add(f"transpose_conv_{tag}_dynamic", transpose_conv(g, 16, 12, **kw), [[1, 4, 5, 16]], g.DYNAMIC)
    add("transpose_conv_same_s2_pertensor_int8", transpose_conv(g, 3, 4, k=(3, 3), stride=(2, 2), padding="SAME"), [X], g.INT8, per_tensor=True)

    # ------------------------------------------------------------ BATCH_MATMUL
    mm = tf.linalg.matmul
    two = (1.0, 2.0)
    for dt, mode in (("f32", g.F32), ("int8", g.INT8)):
        add(f"batch_matmul_rank3_{dt}", fn(lambda a, b: mm(a, b)), [[2, 3, 4], [2, 4, 5]], mode, rep_scales=two)
        add(f"batch_matmul_adjx_{dt}", fn(lambda a, b: mm(a, b, adjoint_a=True)), [[2, 4, 3], [2, 4, 5]], mode, rep_scales=two)
        add(f"batch_matmul_adjy_{dt}", fn(lambda a, b: mm(a, b, adjoint_b=True)), [[2, 3, 4], [2, 5, 4]], mode, rep_scales=two)
        add(
            f"batch_matmul_bcast_{dt}",
            fn(lambda a, b: mm(a, b)),
            [[2, 1, 3, 4], [3, 4, 5]],
            mode,
            rep_scales=two,
        )
        add(f"batch_matmul_rank5_{dt}", fn(lambda a, b: mm(a, b)), [[2, 1, 2, 3, 4], [1, 3, 1, 4, 2]], mode, rep_scales=two)
        add(f"batch_matmul_constrhs_{dt}", with_const([2, 4, 5], lambda a, c: mm(a, c)), [[2, 3, 4]], mode)
    # Dynamic-range quantization: float lhs, constant int8 rhs (asymmetric input rows). The
    # quantizer leaves constants under 1024 elements in float.
    add("batch_matmul_constrhs_dynamic", with_const([2, 64, 8], lambda a, c: mm(a, c)), [[2, 3, 64]], g.DYNAMIC)
    add("batch_matmul_bcast_dynamic", with_const([2, 1, 64, 8], lambda a, c: mm(a, c)), [[2, 2, 3, 64]], g.DYNAMIC)
    add("batch_matmul_rank3_int16", fn(lambda a, b: mm(a, b)), [[2, 3, 4], [2, 4, 5]], g.INT16X8, rep_scales=two)

    # ------------------------------------------------------------ LOG_SOFTMAX
    for dt, mode in (("f32", g.F32), ("int8", g.INT8)):
        add(f"log_softmax_rank2_{dt}", fn(lambda x: tf.nn.log_softmax(x)), [[2, 10]], mode, rep_scales=(4.0,))
        add(f"log_softmax_rank4_{dt}", fn(lambda x: tf.nn.log_softmax(x)), [[1, 3, 2, 7]], mode, rep_scales=(8.0,))
        add(f"log_softmax_wide_{dt}", fn(lambda x: tf.nn.log_softmax(x)), [[3, 40]], mode, rep_scales=(1.0,))

    # ------------------------------------------------------------ L2_NORMALIZATION
    for dt, mode in (("f32", g.F32), ("int8", g.INT8)):
        add(f"l2_norm_rank2_{dt}", fn(lambda x: tf.math.l2_normalize(x, axis=-1)), [[2, 10]], mode)
        add(f"l2_norm_rank4_{dt}", fn(lambda x: tf.math.l2_normalize(x, axis=-1)), [[1, 3, 4, 6]], mode, rep_scales=(3.0,))

    # ------------------------------------------------------------ RANGE
    # Operands come from the (dynamic) batch size, 1 in the file: shape arithmetic that both
    # interpreters resolve before running.
    def shaped_range(limit, delta, dtype=None):
        def f(x):
            b = tf.shape(x, out_type=dtype or tf.int32)[0]
            return tf.cast(tf.range(b, limit, delta), tf.float32) * x

        return fn(f)

    add("range_int32_f32", shaped_range(13, 2), [[None, 6]])
    add("range_int32_down_f32", shaped_range(-9, -3), [[None, 4]])
    add("range_int64_f32", shaped_range(20, 3, tf.int64), [[None, 7]])
    add(
        "range_float_f32",
        shaped_range(13, 2),
        [[None, 6]],
        patch=patch_range_f32(g, 0.3, 2.2, 0.35),
        note="RANGE turned float32 with constant operands 0.3, 2.2, 0.35",
    )

    # ------------------------------------------------------------ DEQUANTIZE of int4
    # fp16 conversions (one DEQUANTIZE of the weights) whose weights are patched to INT4.
    add(
        "dequantize_int4_pc_conv2d_f32",
        g.conv2d(5, 4, act="relu", use_bias=False),
        [[1, 9, 11, 5]],
        g.FP16,
        patch=patch_int4(g, per_channel=True),
        note="conv weights patched to per-channel INT4",
    )
    add(
        "dequantize_int4_pt_odd_fc_f32",
        g.fully_connected(7, 3, use_bias=False),
        [[2, 7]],
        g.FP16,
        patch=patch_int4(g, per_channel=False, zero_point=1),
        note="21 FC weights patched to per-tensor INT4 with zero point 1",
    )

    # ------------------------------------------------------------ DENSIFY
    add(
        "densify_csr_conv2d_f32",
        sparse_weights_conv(),
        [[1, 6, 7, 5]],
        patch=patch_densify(g, "CONV_2D"),
        note="conv weights stored sparse (CSR on the last dimension, int32 indices) + DENSIFY",
    )
    add(
        "densify_block_fc_f32",
        block_sparse_fc(),
        [[2, 8]],
        patch=patch_densify(g, "FULLY_CONNECTED", block=4, index_type="uint8"),
        note="FC weights stored in 1x4 blocks (uint8 indices) + DENSIFY",
    )
    add(
        "sparse_native_fc_f32",
        block_sparse_fc(),
        [[2, 8]],
        patch=patch_densify(g, "FULLY_CONNECTED", block=4, index_type="uint8", native=True),
        note="FC weights stored in 1x4 blocks, read by FULLY_CONNECTED itself (no DENSIFY)",
    )
    add(
        "densify_block_add_int8",
        sparse_add,
        [[3, 8]],
        g.INT8,
        patch=patch_densify(g, "ADD", block=4, index_type="uint8"),
        note="int8 ADD constant stored in 1x4 blocks (uint8 indices) + DENSIFY",
    )
    return fx
