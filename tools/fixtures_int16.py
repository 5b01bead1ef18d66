"""Fixtures of the int16x8 quantization mode (int16 activations with zero point 0, int8
per-channel weights, int64 biases) for the common ops: CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED, ADD, SUB, MUL, LOGISTIC, TANH, SOFTMAX, HARD_SWISH, MEAN, SUM, the pools,
the RELU family, QUANTIZE, and a small conv -> add -> relu -> pool -> fc network.

Two-input ops get inputs with different ranges (`rep_scales`) so that the converter gives
them different scales. Activations whose interesting part lies outside [-1, 1] get wider
representative data.
"""

import numpy as np

X = [1, 9, 11, 5]
SMALL = [1, 5, 7, 3]


def _tf():
    import tensorflow as tf

    return tf


def fn(f):
    def build(rng):
        return f

    return build


def sub_binary(const=None, act="none", g=None):
    def build(rng):
        if const is None:
            return lambda a, b: g.activation(a - b, act)
        c = _tf().constant(rng.uniform(-1.5, 1.5, size=const).astype(np.float32))
        return lambda a: g.activation(a - c, act)

    return build


def mini_net(rng):
    """conv -> add (residual) -> relu -> avg pool -> reshape -> fc."""
    tf = _tf()
    w1 = tf.constant((rng.normal(0, 0.4, size=[3, 3, 4, 6])).astype(np.float32))
    b1 = tf.constant(rng.uniform(-0.5, 0.5, size=[6]).astype(np.float32))
    w2 = tf.constant((rng.normal(0, 0.4, size=[1, 1, 4, 6])).astype(np.float32))
    wf = tf.constant((rng.normal(0, 0.3, size=[6 * 4 * 3, 5])).astype(np.float32))
    bf = tf.constant(rng.uniform(-0.5, 0.5, size=[5]).astype(np.float32))

    def f(x):
        y = tf.nn.bias_add(tf.nn.conv2d(x, w1, strides=1, padding="SAME"), b1)
        s = tf.nn.conv2d(x, w2, strides=1, padding="SAME")
        y = tf.nn.relu(y + s)
        y = tf.nn.avg_pool2d(y, ksize=2, strides=2, padding="VALID")
        y = tf.reshape(y, [1, -1])
        return tf.matmul(y, wf) + bf

    return f


def patch_pot_scale(model):
    """Sets pot_scale_int16 on every ADD and SUB (the converter writes false); scales
    within 1e-3 of a power of two in log2, like the 1/32767-based ones here, then take the
    reference's power-of-two path."""
    for name in ("ADD", "SUB"):
        for op in _ops(model, name):
            op.builtinOptions.potScaleInt16 = True


def patch_single_filter_scale(op_name):
    """Keeps only the first channel's scale of the op's weights: the converter always
    quantizes int16x8 weights per channel, and a single scale selects TFLite's per-tensor
    paths."""

    def patch(model):
        import numpy as np

        for op in _ops(model, op_name):
            q = model.subgraphs[0].tensors[op.inputs[1]].quantization
            q.scale = np.array(q.scale[:1], dtype=np.float32)
            q.zeroPoint = np.array(q.zeroPoint[:1], dtype=np.int64)
            q.quantizedDimension = 0

    return patch


def patch_int32_bias(op_name):
    """Stores the op's int64 bias as int32 and sets quantized_bias_type to INT32, which
    selects TFLite's 32-bit accumulation (the converter writes int64 biases)."""

    def patch(model):
        import numpy as np
        from ai_edge_litert import schema_py_generated as schema

        for op in _ops(model, op_name):
            t = model.subgraphs[0].tensors[op.inputs[2]]
            buf = model.buffers[t.buffer]
            values = np.frombuffer(bytes(buf.data), dtype=np.int64)
            buf.data = np.frombuffer(values.astype(np.int32).tobytes(), dtype=np.uint8)
            t.type = schema.TensorType.INT32
            op.builtinOptions.quantizedBiasType = schema.TensorType.INT32

    return patch


def patch_quantize_to_int8(model):
    """Keeps only the QUANTIZE that requantizes input x0 and makes its output an int8 graph
    output with a coarser scale and a zero point: an int16 -> int8 requantization, which
    the converter does not emit in int16x8 mode. Input x1 stays, unused."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    sg = model.subgraphs[0]
    (quant,) = _ops(model, "QUANTIZE")
    sg.operators = [quant]
    out = sg.tensors[quant.outputs[0]]
    out.type = schema.TensorType.INT8
    out.quantization.scale = np.array([out.quantization.scale[0] * 200.0], dtype=np.float32)
    out.quantization.zeroPoint = np.array([5], dtype=np.int64)
    sg.outputs = [quant.outputs[0]]


def patch_float_io(model):
    """Gives the int16 graph float32 I/O: a QUANTIZE (float32 -> int16) in front of every
    input and a DEQUANTIZE (int16 -> float32) after every output, as the converter does
    for float I/O (its int16x8 mode here is set up for int16 I/O)."""
    import copy

    from ai_edge_litert import schema_py_generated as schema

    def opcode(code):
        for i, c in enumerate(model.operatorCodes):
            if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
                return i
        c = schema.OperatorCodeT()
        c.builtinCode = code
        c.deprecatedBuiltinCode = code
        c.version = 1
        model.operatorCodes.append(c)
        return len(model.operatorCodes) - 1

    def float_twin(index, suffix):
        t = copy.deepcopy(sg.tensors[index])
        t.type = schema.TensorType.FLOAT32
        t.quantization = None
        t.name = sg.tensors[index].name + suffix
        t.buffer = 0
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def op(code, i, o):
        x = schema.OperatorT()
        x.opcodeIndex = opcode(code)
        x.inputs = [i]
        x.outputs = [o]
        return x

    sg = model.subgraphs[0]
    quant, dequant = schema.BuiltinOperator.QUANTIZE, schema.BuiltinOperator.DEQUANTIZE
    new_inputs = [float_twin(i, b"_float") for i in sg.inputs]
    new_outputs = [float_twin(o, b"_float") for o in sg.outputs]
    sg.operators = (
        [op(quant, f, q) for f, q in zip(new_inputs, sg.inputs)]
        + list(sg.operators)
        + [op(dequant, q, f) for q, f in zip(sg.outputs, new_outputs)]
    )
    sg.inputs, sg.outputs = new_inputs, new_outputs


def _ops(model, name):
    import tflite_inspect

    sg = model.subgraphs[0]
    return [
        op
        for op in sg.operators
        if tflite_inspect.OP_NAMES.get(tflite_inspect.op_code(model, op.opcodeIndex)) == name
    ]


def fixtures(g):
    out = []
    M = g.INT16X8

    def add(name, build, shapes, **kw):
        out.append(g.Fixture(name, build, shapes, M, **kw))


    def lazy(f):
        """A build whose function is made by f(tf) when the converter runs."""

        def build(rng):
            return f(_tf())

        return build

    # CONV_2D
    add("conv2d_same_s1_none_int16", g.conv2d(5, 4), [X])
    add("conv2d_same_s1_relu_int16", g.conv2d(5, 4, act="relu"), [X])
    add("conv2d_valid_s2_relu6_int16", g.conv2d(5, 6, stride=(2, 2), padding="VALID", act="relu6"), [X])
    add("conv2d_same_s2_n1to1_int16", g.conv2d(5, 6, stride=(2, 2), act="relu_n1_to_1"), [X])
    add("conv2d_same_d2_int16", g.conv2d(5, 4, dilation=(2, 2)), [X])
    add("conv2d_valid_k3x2_s2x1_nobias_int16", g.conv2d(5, 3, k=(3, 2), stride=(2, 1), padding="VALID", use_bias=False), [X])
    add("conv2d_same_pertensor_int16", g.conv2d(5, 4, act="relu"), [X],
        patch=patch_single_filter_scale("CONV_2D"), note="one filter scale")
    add("conv2d_same_bias32_int16", g.conv2d(5, 4, act="relu6"), [X],
        patch=patch_int32_bias("CONV_2D"), note="int32 bias")
    # DEPTHWISE_CONV_2D
    add("dwconv_m1_same_s1_int16", g.dwconv(5, 1), [X])
    add("dwconv_m2_valid_s1_int16", g.dwconv(5, 2, padding="VALID"), [X])
    add("dwconv_m1_same_s2_relu6_int16", g.dwconv(5, 1, stride=(2, 2), act="relu6"), [X])
    add("dwconv_m2_same_s2_relu_int16", g.dwconv(5, 2, stride=(2, 2), act="relu"), [X])
    add("dwconv_m1_valid_d2_int16", g.dwconv(5, 1, padding="VALID", dilation=(2, 2)), [X])
    # FULLY_CONNECTED
    add("fc_bias_int16", g.fully_connected(7, 4), [[3, 7]])
    add("fc_nobias_relu_int16", g.fully_connected(7, 4, use_bias=False, act="relu"), [[3, 7]])
    add("fc_keepdims_int16", g.fully_connected(7, 4), [[1, 5, 7]])
    add("fc_rank3_nokeep_int16", g.fully_connected(7, 4, flatten=True), [[1, 5, 7]])
    add("fc_bias_pertensor_int16", g.fully_connected(7, 4), [[3, 7]],
        patch=patch_single_filter_scale("FULLY_CONNECTED"), note="one filter scale")
    add("fc_bias32_int16", g.fully_connected(7, 4), [[3, 7]],
        patch=patch_int32_bias("FULLY_CONNECTED"), note="int32 bias")
    # ADD, SUB, MUL
    two = (1.0, 2.5)
    for op in ["add", "mul"]:
        add(f"{op}_same_int16", g.binary(op), [X, X], rep_scales=two)
        add(f"{op}_same_relu_int16", g.binary(op, act="relu"), [X, X], rep_scales=two)
        add(f"{op}_bcast_scalar_int16", g.binary(op, const=[]), [X])
        add(f"{op}_bcast_channel_int16", g.binary(op, const=[5]), [X])
        add(f"{op}_bcast_both_relu6_int16", g.binary(op, act="relu6"), [[1, 4, 1, 3], [1, 1, 5, 3]], rep_scales=(3.0, 3.0))
    add("sub_same_int16", sub_binary(g=g), [X, X], rep_scales=two)
    add("sub_bcast_both_relu_int16", sub_binary(act="relu", g=g), [[1, 4, 1, 3], [1, 1, 5, 3]], rep_scales=two)
    add("sub_bcast_channel_int16", sub_binary(const=[5], g=g), [X])
    # The power-of-two path: input 2 has twice the range, so input 1 is shifted.
    add("add_pot_int16", g.binary("add"), [X, X], rep_scales=(1.0, 2.0), patch=patch_pot_scale,
        note="pot_scale_int16 set")
    add("sub_pot_bcast_int16", sub_binary(g=g), [[1, 4, 1, 3], [1, 1, 5, 3]], rep_scales=(2.0, 1.0),
        patch=patch_pot_scale, note="pot_scale_int16 set")
    # Activations
    add("logistic_rank2_int16", lazy(lambda tf: tf.math.sigmoid), [[4, 64]], rep_scales=(8.0,))
    add("tanh_rank4_int16", lazy(lambda tf: tf.math.tanh), [[1, 4, 8, 8]], rep_scales=(4.0,))
    add("tanh_small_int16", lazy(lambda tf: tf.math.tanh), [[2, 16]], rep_scales=(0.5,))
    # Input scales 2^-12 (both) and 2^-11 (TANH): the power-of-two paths.
    add("tanh_pot_int16", lazy(lambda tf: tf.math.tanh), [[4, 64]], rep_scales=(8.0,))
    add("tanh_pot2_int16", lazy(lambda tf: tf.math.tanh), [[4, 64]], rep_scales=(16.0,))
    add("logistic_small_int16", lazy(lambda tf: tf.math.sigmoid), [[1, 4, 8, 8]], rep_scales=(3.0,))
    add("relu_int16", lazy(lambda tf: tf.nn.relu), [SMALL], rep_scales=(2.0,))
    add("relu6_int16", lazy(lambda tf: tf.nn.relu6), [SMALL], rep_scales=(8.0,))
    add("leaky_relu_int16", lazy(lambda tf: (lambda x: tf.nn.leaky_relu(x, alpha=0.3))), [SMALL], rep_scales=(2.0,))
    add("softmax_rank2_int16", g.softmax(), [[2, 10]], rep_scales=(4.0,))
    add("softmax_rank4_int16", g.softmax(), [[1, 3, 2, 7]], rep_scales=(4.0,))
    add(
        "softmax_beta0p5_int16",
        g.softmax(),
        [[2, 10]],
        rep_scales=(4.0,),
        patch=g.patch_softmax_beta(0.5),
        note="beta patched to 0.5",
    )
    add(
        "softmax_beta0p7_int16",
        g.softmax(),
        [[3, 9]],
        rep_scales=(3.0,),
        patch=g.patch_softmax_beta(0.7),
        note="beta patched to 0.7",
    )
    # Reductions and pools
    add("mean_hw_keepdims_int16", g.mean([1, 2], True), [X])
    add("mean_lastaxis_int16", g.mean([-1], False), [X])
    # SUM is left out: the reference kernel reads int16 data as uint8 bytes (see
    # src/ops/reductions.rs), so it has no reproducible result.
    for kind in ["avg", "max"]:
        add(f"{kind}pool_same_k3_s2_int16", g.pool(kind, (3, 3), (2, 2), "SAME"), [X])
        add(f"{kind}pool_valid_k2_s1_relu_int16", g.pool(kind, (2, 2), (1, 1), "VALID", act="relu"), [X])
    # QUANTIZE int16 -> int16 (the converter requantizes concatenation inputs)
    add("quantize_concat_int16", lazy(lambda tf: (lambda a, b: tf.concat([a, b], -1))), [SMALL, SMALL],
        rep_scales=(1.0, 3.0))
    add("quantize_to_int8_int16", lazy(lambda tf: (lambda a, b: tf.concat([a, b], -1))), [SMALL, SMALL],
        rep_scales=(1.0, 3.0), patch=patch_quantize_to_int8, note="int16 -> int8 QUANTIZE only")
    add("tanh_floatio_int16", lazy(lambda tf: tf.math.tanh), [[1, 4, 8, 8]], rep_scales=(4.0,),
        patch=patch_float_io, note="float32 I/O through QUANTIZE and DEQUANTIZE")
    # Network
    add("mini_net_int16", mini_net, [[1, 8, 6, 4]])
    return out
