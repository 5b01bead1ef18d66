"""Fixtures of the activation family: the RELU family, LEAKY_RELU, LOGISTIC, TANH,
HARD_SWISH, GELU, ELU, PRELU, and the unary math ops (EXP, LOG, SQRT, RSQRT, SQUARE, ABS,
NEG, FLOOR, CEIL, ROUND, SIN, COS).

Int8 versions of the table-driven ops use a 1024-element input so that nearly all 256
int8 values reach the lookup table. Representative data is widened (`rep_scales`) where
the interesting part of a function lies outside [-1, 1] (saturation of LOGISTIC and TANH,
the knees of HARD_SWISH and RELU6).
"""

import numpy as np

SMALL = [1, 5, 7, 3]
WIDE = [1, 16, 64]  # int8 LUT coverage


def unary(f):
    def build(rng):
        return f

    return build


def leaky(alpha):
    def build(rng):
        tf = _tf()
        return lambda x: tf.nn.leaky_relu(x, alpha=alpha)

    return build


def hard_swish(rng):
    tf = _tf()
    return lambda x: x * tf.nn.relu6(x + 3.0) / 6.0


def gelu(approximate):
    def build(rng):
        tf = _tf()
        return lambda x: tf.nn.gelu(x, approximate=approximate)

    return build


def prelu(shape, shared_axes):
    """A Keras PReLU layer (the converter maps it to PRELU; alpha has the input's shape
    without the batch, with 1 along `shared_axes`)."""

    def build(rng):
        import keras

        keras.backend.clear_session()
        inp = keras.Input(shape[1:], name="x0")
        layer = keras.layers.PReLU(shared_axes=shared_axes)
        model = keras.Model(inp, layer(inp))
        alpha_shape = layer.get_weights()[0].shape
        layer.set_weights([rng.uniform(0.05, 0.6, size=alpha_shape).astype(np.float32)])
        return model

    return build


def positive(f, offset):
    """f(|x| + offset): keeps LOG, SQRT and RSQRT on their domain in float models."""

    def build(rng):
        tf = _tf()
        return lambda x: f(tf.abs(x) + offset)

    return build


def patch_opcode(old, new):
    """Renames every use of builtin `old` to `new` (for ops the converter never emits, when
    another op has the same inputs, outputs and quantization)."""

    def patch(model):
        from ai_edge_litert import schema_py_generated as schema

        old_code, new_code = getattr(schema.BuiltinOperator, old), getattr(schema.BuiltinOperator, new)
        hits = 0
        for oc in model.operatorCodes:
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == old_code:
                oc.builtinCode = new_code
                # Codes above 127 live only in the int32 field; the byte holds the placeholder.
                oc.deprecatedBuiltinCode = min(new_code, 127)
                # The renamed op is registered from version 1 on, for every type it accepts.
                oc.version = 1
                hits += 1
        assert hits == 1, f"{old} not found"

    return patch


def to_uint8(model):
    """Turns an int8 model into the equivalent legacy uint8 one: every int8 tensor becomes
    uint8 with its zero point raised by 128 and its constant bytes shifted the same way."""
    from ai_edge_litert import schema_py_generated as schema

    for t in model.subgraphs[0].tensors:
        if t.type != schema.TensorType.INT8:
            continue
        t.type = schema.TensorType.UINT8
        q = t.quantization
        if q is not None and q.zeroPoint is not None:
            q.zeroPoint = [int(z) + 128 for z in q.zeroPoint]
        buf = model.buffers[t.buffer]
        if buf.data is not None and len(buf.data):
            buf.data = np.asarray(buf.data, dtype=np.uint8) ^ np.uint8(0x80)


_TF = None


def _tf():
    global _TF
    if _TF is None:
        import tensorflow

        _TF = tensorflow
    return _TF


def fixtures(g):
    tf = g._import_tf()
    fx = []

    def add(name, build, shapes, mode, **kw):
        fx.append(g.Fixture(name, build, shapes, mode, **kw))

    for dt, mode in [("f32", g.F32), ("int8", g.INT8)]:
        shape = SMALL if dt == "f32" else WIDE
        add(f"relu_plain_{dt}", unary(tf.nn.relu), [shape], mode, rep_scales=(2.0,))
        add(f"relu6_plain_{dt}", unary(tf.nn.relu6), [shape], mode, rep_scales=(8.0,))
        add(
            f"relu_n1_to_1_plain_{dt}",
            unary(lambda x: tf.clip_by_value(x, -1.0, 1.0)),
            [shape],
            mode,
            rep_scales=(2.0,),
        )
        add(
            f"relu_0_to_1_patched_{dt}",
            unary(tf.nn.relu6),
            [shape],
            mode,
            rep_scales=(2.0,),
            patch=patch_opcode("RELU6", "RELU_0_TO_1"),
            note="RELU6 renamed RELU_0_TO_1 (the converter never emits it)",
        )
        add(f"leaky_relu_a0p2_{dt}", leaky(0.2), [shape], mode, rep_scales=(2.0,))
        add(f"leaky_relu_a1p5_{dt}", leaky(1.5), [shape], mode, rep_scales=(2.0,))
        add(f"leaky_relu_am0p5_{dt}", leaky(-0.5), [shape], mode, rep_scales=(2.0,))
        add(f"logistic_plain_{dt}", unary(tf.sigmoid), [shape], mode, rep_scales=(8.0,))
        add(f"tanh_plain_{dt}", unary(tf.tanh), [shape], mode, rep_scales=(4.0,))
        add(f"hard_swish_plain_{dt}", hard_swish, [shape], mode, rep_scales=(5.0,))
        add(f"gelu_exact_{dt}", gelu(False), [shape], mode, rep_scales=(4.0,))
        add(f"gelu_approx_{dt}", gelu(True), [shape], mode, rep_scales=(4.0,))
        add(f"prelu_channel_{dt}", prelu(SMALL, [1, 2]), [SMALL], mode, rep_scales=(2.0,), keras=True)
        add(f"prelu_hwc_{dt}", prelu(SMALL, None), [SMALL], mode, rep_scales=(2.0,), keras=True)
        add(f"prelu_w1_{dt}", prelu(SMALL, [2]), [SMALL], mode, rep_scales=(2.0,), keras=True)
        add(f"exp_plain_{dt}", unary(tf.exp), [shape], mode, rep_scales=(2.0,))
        add(f"log_abs_{dt}", positive(tf.math.log, 0.05), [shape], mode, rep_scales=(3.0,))
        add(f"sqrt_abs_{dt}", positive(tf.sqrt, 0.0), [shape], mode, rep_scales=(3.0,))
        add(f"rsqrt_abs_{dt}", positive(tf.math.rsqrt, 0.1), [shape], mode, rep_scales=(3.0,))
        add(f"abs_plain_{dt}", unary(tf.abs), [shape], mode, rep_scales=(2.0,))

    # Float-only ops (the converter keeps them in float around QUANTIZE/DEQUANTIZE).
    for name, f, rep in [
        ("elu_plain", tf.nn.elu, 3.0),
        ("square_plain", tf.square, 2.0),
        ("neg_plain", tf.negative, 2.0),
        ("floor_plain", tf.floor, 4.0),
        ("ceil_plain", tf.math.ceil, 4.0),
        ("round_plain", tf.round, 4.0),
        ("sin_plain", tf.sin, 4.0),
        ("cos_plain", tf.cos, 4.0),
    ]:
        add(f"{name}_f32", unary(lambda x, f=f, rep=rep: f(x * rep)), [SMALL], g.F32)
    # ELU int8 exists in the reference but the converter never quantizes it: an int8 EXP
    # renamed ELU has the same tensors.
    add(
        "elu_patched_int8",
        unary(tf.exp),
        [WIDE],
        g.INT8,
        rep_scales=(3.0,),
        patch=patch_opcode("EXP", "ELU"),
        note="int8 EXP renamed ELU (the converter keeps ELU in float)",
    )
    # Integer ABS and NEG.
    add("abs_plain_int32", unary(tf.abs), [SMALL], g.F32, dtypes=("int32",))
    add("neg_plain_int32", unary(tf.negative), [SMALL], g.F32, dtypes=("int32",))
    add("neg_plain_int64", unary(tf.negative), [SMALL], g.F32, dtypes=("int64",))

    # Legacy uint8 versions: int8 models with every int8 tensor moved to uint8.
    for name, build, shape, rep, kw in [
        ("relu6_plain", unary(tf.nn.relu6), WIDE, 8.0, {}),
        ("leaky_relu_a0p2", leaky(0.2), WIDE, 2.0, {}),
        ("logistic_plain", unary(tf.sigmoid), WIDE, 8.0, {}),
        ("tanh_plain", unary(tf.tanh), WIDE, 4.0, {}),
        ("hard_swish_plain", hard_swish, WIDE, 5.0, {}),
        ("gelu_approx", gelu(True), WIDE, 4.0, {}),
        ("prelu_channel", prelu(SMALL, [1, 2]), SMALL, 2.0, {"keras": True}),
    ]:
        add(
            f"{name}_uint8",
            build,
            [shape],
            g.INT8,
            rep_scales=(rep,),
            patch=to_uint8,
            note="int8 model with every int8 tensor moved to uint8 (zero point + 128)",
            **kw,
        )
    return fx
