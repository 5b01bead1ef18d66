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
    add("transpose_conv_same_s2_int16", transpose_conv(g, 3, 4, k=(3, 3), stride=(2, 2), padding="SAME"), [X], g.INT16X8)
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
    return fx
