"""Fixtures of the elementwise family: SUB, DIV, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM, POW,
the six comparisons, LOGICAL_AND/OR/NOT, SELECT and SELECT_V2.

Two-input fixtures give the second input a wider representative range (`rep_scales`), so
that int8 versions see two different input scales. Broadcasting variants use shapes that
broadcast along both operands.
"""

import numpy as np

SMALL = [1, 5, 7, 3]
A4 = [1, 4, 1, 3]
B4 = [1, 1, 5, 3]
TWO = (1.0, 2.5)

_TF = None


def _tf():
    global _TF
    if _TF is None:
        import tensorflow

        _TF = tensorflow
    return _TF


def two(f):
    """f(a, b) on two model inputs."""

    def build(rng):
        return f

    return build


def with_const(f, shape, lo=-1.5, hi=1.5, dtype=np.float32):
    """f(x, c) with a constant c of `shape` drawn from [lo, hi)."""

    def build(rng):
        tf = _tf()
        if np.issubdtype(dtype, np.integer):
            c = tf.constant(rng.integers(int(lo), int(hi), size=shape).astype(dtype))
        else:
            c = tf.constant(rng.uniform(lo, hi, size=shape).astype(dtype))
        return lambda x: f(x, c)

    return build


def fixtures(g):
    tf = g._import_tf()
    fx = []

    def add(name, build, shapes, mode=g.F32, **kw):
        fx.append(g.Fixture(name, build, shapes, mode, **kw))

    relu6 = tf.nn.relu6
    i32 = ("int32", "int32")
    i64 = ("int64", "int64")

    for dt, mode in [("f32", g.F32), ("int8", g.INT8)]:
        # SUB
        add(f"sub_same_{dt}", two(tf.subtract), [SMALL, SMALL], mode, rep_scales=TWO)
        add(f"sub_same_relu6_{dt}", two(lambda a, b: relu6(a - b)), [SMALL, SMALL], mode, rep_scales=(3.0, 3.0))
        add(f"sub_bcast_channel_{dt}", with_const(tf.subtract, [3]), [SMALL], mode)
        add(f"sub_bcast_both_{dt}", two(tf.subtract), [A4, B4], mode, rep_scales=TWO)
        add(f"sub_const_minus_x_{dt}", with_const(lambda x, c: c - x, [5, 1, 3]), [SMALL], mode)
        # SQUARED_DIFFERENCE
        add(f"squared_difference_same_{dt}", two(tf.math.squared_difference), [SMALL, SMALL], mode, rep_scales=TWO)
        add(f"squared_difference_bcast_{dt}", two(tf.math.squared_difference), [A4, B4], mode, rep_scales=TWO)
        # MAXIMUM / MINIMUM
        add(f"maximum_same_{dt}", two(tf.maximum), [SMALL, SMALL], mode, rep_scales=TWO)
        add(f"maximum_bcast_{dt}", with_const(tf.maximum, [3], -0.5, 0.5), [SMALL], mode)
        add(f"minimum_same_{dt}", two(tf.minimum), [SMALL, SMALL], mode, rep_scales=TWO)
        add(f"minimum_bcast_{dt}", two(tf.minimum), [A4, B4], mode, rep_scales=TWO)
        # Comparisons (bool outputs)
        add(f"less_same_{dt}", two(tf.less), [SMALL, SMALL], mode, rep_scales=TWO)
        add(f"less_equal_bcast_{dt}", two(tf.less_equal), [A4, B4], mode, rep_scales=TWO)
        add(f"greater_same_{dt}", two(tf.greater), [SMALL, SMALL], mode, rep_scales=TWO)
        add(f"greater_equal_bcast_{dt}", two(tf.greater_equal), [A4, B4], mode, rep_scales=TWO)
        add(f"equal_const_{dt}", with_const(tf.equal, [3], 0.0, 0.0), [SMALL], mode)
        add(f"not_equal_same_{dt}", two(tf.not_equal), [SMALL, SMALL], mode, rep_scales=(1.0, 1.0))
        # SELECT_V2 on a comparison of the inputs
        add(
            f"select_v2_cmp_{dt}",
            two(lambda a, b: tf.where(a > b, a, b * 0.5)),
            [SMALL, SMALL],
            mode,
            rep_scales=TWO,
        )

    # DIV: positive and negative divisors kept away from zero (the converter turns a
    # division by a constant into MUL, and an integer zero divisor is an error).
    for dt, mode in [("f32", g.F32), ("int8", g.INT8)]:
        add(f"div_same_{dt}", two(lambda a, b: a / (tf.abs(b) + 0.5)), [SMALL, SMALL], mode, rep_scales=TWO)
        add(f"div_negative_{dt}", two(lambda a, b: a / (tf.minimum(b, 0.0) - 0.5)), [A4, B4], mode, rep_scales=TWO)
    # Float-only: POW.
    add("div_bcast_relu_f32", two(lambda a, b: tf.nn.relu(a / b)), [A4, B4])
    add("pow_abs_f32", two(lambda a, b: tf.pow(tf.abs(a) + 0.1, b * 2.0)), [SMALL, SMALL])
    add("pow_bcast_f32", with_const(lambda x, c: tf.pow(tf.abs(x) + 0.1, c), [3], -2.0, 2.0), [SMALL])
    # Float comparisons on values that do tie.
    add("equal_round_f32", two(lambda a, b: tf.equal(tf.round(a * 2.0), tf.round(b * 2.0))), [SMALL, SMALL])
    add("not_equal_round_f32", two(lambda a, b: tf.not_equal(tf.round(a * 2.0), tf.round(b))), [A4, B4])

    # int32 / int64 versions (inputs are small non-negative integers).
    add("sub_same_int32", two(tf.subtract), [SMALL, SMALL], dtypes=i32)
    add("sub_bcast_relu_int32", two(lambda a, b: tf.nn.relu(a - b)), [A4, B4], dtypes=i32)
    add("sub_same_int64", two(tf.subtract), [SMALL, SMALL], dtypes=i64)
    add("maximum_bcast_int32", two(tf.maximum), [A4, B4], dtypes=i32)
    add("minimum_same_int64", two(tf.minimum), [SMALL, SMALL], dtypes=i64)
    add("squared_difference_same_int32", two(tf.math.squared_difference), [SMALL, SMALL], dtypes=i32)
    add("pow_same_int32", two(tf.pow), [SMALL, SMALL], dtypes=i32)
    add("div_const_int32", with_const(tf.truncatediv, [3], 1, 5, np.int32), [SMALL], dtypes=("int32",))
    add("equal_same_int32", two(tf.equal), [SMALL, SMALL], dtypes=i32)
    add("less_bcast_int32", two(tf.less), [A4, B4], dtypes=i32)
    add("greater_equal_same_int64", two(tf.greater_equal), [SMALL, SMALL], dtypes=i64)
    add("not_equal_bcast_int64", two(tf.not_equal), [A4, B4], dtypes=i64)
    add("greater_same_int32", two(tf.greater), [SMALL, SMALL], dtypes=i32)
    add("less_equal_same_int64", two(tf.less_equal), [SMALL, SMALL], dtypes=i64)
    # 16x8: MAXIMUM / MINIMUM compare the raw int16 values, ABS.
    add("maximum_same_int16", two(tf.maximum), [SMALL, SMALL], g.INT16X8, rep_scales=TWO)
    add("minimum_bcast_int16", two(tf.minimum), [A4, B4], g.INT16X8, rep_scales=TWO)
    add("abs_plain_int16", lambda rng: tf.abs, [SMALL], g.INT16X8)
    # ADD and MUL on plain integers (shape arithmetic, counters), one with a fused RELU after a
    # subtraction that goes negative.
    add("add_bcast_int32", two(tf.add), [A4, B4], dtypes=i32)
    add("add_relu_int32", two(lambda a, b: tf.nn.relu(a + (b - 5))), [SMALL, SMALL], dtypes=i32)
    add("add_same_int64", two(tf.add), [SMALL, SMALL], dtypes=i64)
    add("mul_bcast_int32", two(tf.multiply), [A4, B4], dtypes=i32)
    add("mul_same_int64", two(tf.multiply), [SMALL, SMALL], dtypes=i64)

    # Booleans.
    bb = ("bool", "bool")
    add("equal_same_bool", two(tf.equal), [SMALL, SMALL], dtypes=bb)
    add("logical_and_same_bool", two(tf.logical_and), [SMALL, SMALL], dtypes=bb)
    add("logical_or_bcast_bool", two(tf.logical_or), [A4, B4], dtypes=bb)
    add("logical_not_plain_bool", two(tf.logical_not), [SMALL], dtypes=("bool",))

    # SELECT_V2 with a bool input and broadcasting of all three operands; SELECT (v1)
    # with a rank-1 condition over the first dimension.
    add(
        "select_v2_bcast_f32",
        two(lambda c, x, y: tf.where(c, x, y)),
        [[1, 4, 1], [2, 4, 3], [3]],
        dtypes=("bool", "float32", "float32"),
    )
    add(
        "select_v2_same_int32",
        two(lambda c, x, y: tf.where(c, x, y)),
        [SMALL, SMALL, SMALL],
        dtypes=("bool", "int32", "int32"),
    )
    add(
        "select_rank1_f32",
        two(lambda c, x, y: tf.raw_ops.Select(condition=c, x=x, y=y)),
        [[4], [4, 3], [4, 3]],
        dtypes=("bool", "float32", "float32"),
    )
    add(
        "select_same_f32",
        two(lambda c, x, y: tf.raw_ops.Select(condition=c, x=x, y=y)),
        [[4, 3], [4, 3], [4, 3]],
        dtypes=("bool", "float32", "float32"),
    )

    # Legacy uint8 versions (see fixtures_activations.to_uint8).
    from fixtures_activations import to_uint8

    note = "int8 model with every int8 tensor moved to uint8 (zero point + 128)"
    for name, build, shapes in [
        ("sub_same", two(tf.subtract), [SMALL, SMALL]),
        ("maximum_bcast", two(tf.maximum), [A4, B4]),
        ("less_same", two(tf.less), [SMALL, SMALL]),
        # ABS has no uint8 kernel: keep the divisor positive with RELU.
        ("div_relu", two(lambda a, b: a / (tf.nn.relu(b) + 0.5)), [SMALL, SMALL]),
    ]:
        add(f"{name}_uint8", build, shapes, g.INT8, rep_scales=TWO, patch=to_uint8, note=note)
    return fx
