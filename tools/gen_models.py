"""Build the small .tflite fixtures in tests/models/ and their MANIFEST.md.

Every fixture is a tiny TensorFlow function (or, for the ResNet, a Keras
model) with random weights drawn from a generator seeded by the fixture name,
converted with the TF 2.21 converter. Nothing is downloaded.

Usage (from the repository root):
    .venv/bin/python tools/gen_models.py              # all fixtures + manifest
    .venv/bin/python tools/gen_models.py conv2d_ mean # only names containing these
    .venv/bin/python tools/gen_models.py --manifest   # only rewrite MANIFEST.md
    .venv/bin/python tools/gen_models.py --list       # print fixture names

One fixture needs something the converter never emits (a SOFTMAX with
beta != 1): it is converted normally and then edited in the flatbuffer; the
manifest marks it "patched".
"""

import argparse
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
OUT = REPO / "tests" / "models"
sys.path.insert(0, str(TOOLS))

import tflite_inspect  # noqa: E402

# Imported lazily so that --list and --manifest stay fast.
tf = None


def _import_tf():
    global tf
    if tf is None:
        import tensorflow

        tensorflow.get_logger().setLevel("ERROR")
        tensorflow.autograph.set_verbosity(0)
        tf = tensorflow
    return tf


# Quantization modes, appended to the converter setup in `convert`.
F32 = "f32"
FP16 = "fp16"  # float16 weights + DEQUANTIZE
DYNAMIC = "dynamic"  # dynamic-range, MLIR quantizer (per-channel hybrid ops)
DYNAMIC_LEGACY_PT = "dynamic_legacy_pt"  # legacy quantizer, per-tensor weights
INT8 = "int8"  # full integer, int8 I/O
INT8_FLOATIO = "int8_floatio"  # full integer, float I/O (QUANTIZE/DEQUANTIZE)
INT8_UINT8IO = "int8_uint8io"  # full integer, uint8 I/O
INT16X8 = "int16x8"  # int16 activations, int8 weights, int16 I/O
# 16x8 where the converter can, float kernels (between QUANTIZE/DEQUANTIZE) where it cannot:
# what a user gets for a model with an op the 16x8 quantizer does not cover.
INT16X8_FALLBACK = "int16x8_fallback"
# 16x8 with int32 instead of int64 biases (the converter then sets quantized_bias_type).
INT16X8_BIAS32 = "int16x8_bias32"


@dataclass
class Fixture:
    name: str
    # Given a seeded generator, returns the function to convert (or a Keras
    # model when keras=True). Building inside the callback keeps every weight
    # a function of the fixture name only.
    build: Callable
    shapes: list
    mode: str = F32
    per_tensor: bool = False
    # Representative-data amplitude per input; inputs with a larger range get
    # a different quantization scale, so two-input ops see unequal scales.
    rep_scales: tuple = ()
    patch: Optional[Callable] = None
    keras: bool = False
    note: str = ""
    # TensorFlow dtype name per input ("float32" when absent). Non-float inputs get small
    # non-negative integers in the representative data, like the Rust input generator.
    dtypes: tuple = ()
    # Convert with resource variables enabled (stateful models with tf.Variable).
    resource_variables: bool = False

    def dtype(self, i: int) -> str:
        return self.dtypes[i] if i < len(self.dtypes) else "float32"


def rng_for(name: str, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(name.encode()), salt])


def weights(rng, shape, fan_in, gain=3.0):
    """Normal weights sized so that outputs on [-1, 1) inputs spread to about
    +-gain standard deviations: large enough that RELU6 and RELU_N1_TO_1 clamp."""
    std = gain * np.sqrt(3.0 / fan_in)
    return rng.normal(0.0, std, size=shape).astype(np.float32)


def bias(rng, n):
    # Never all-zero: the converter would drop it.
    return rng.uniform(-1.0, 1.0, size=[n]).astype(np.float32)


def activation(y, act):
    if act == "none":
        return y
    if act == "relu":
        return tf.nn.relu(y)
    if act == "relu6":
        return tf.nn.relu6(y)
    if act == "relu_n1_to_1":
        # The converter folds a clip to [-1, 1] into RELU_N1_TO_1.
        return tf.clip_by_value(y, -1.0, 1.0)
    raise ValueError(act)


# ---------------------------------------------------------------- op builders


def conv2d(cin, cout, k=(3, 3), stride=(1, 1), padding="SAME", dilation=(1, 1), act="none", use_bias=True):
    def build(rng):
        w = tf.constant(weights(rng, [k[0], k[1], cin, cout], k[0] * k[1] * cin))
        b = tf.constant(bias(rng, cout)) if use_bias else None

        def fn(x):
            y = tf.nn.conv2d(x, w, strides=[1, *stride, 1], padding=padding, dilations=[1, *dilation, 1])
            if b is not None:
                y = tf.nn.bias_add(y, b)
            return activation(y, act)

        return fn

    return build


def dwconv(cin, mult, k=(3, 3), stride=(1, 1), padding="SAME", dilation=(1, 1), act="none"):
    def build(rng):
        w = tf.constant(weights(rng, [k[0], k[1], cin, mult], k[0] * k[1]))
        b = tf.constant(bias(rng, cin * mult))

        def fn(x):
            y = tf.nn.depthwise_conv2d(x, w, strides=[1, *stride, 1], padding=padding, dilations=list(dilation))
            return activation(tf.nn.bias_add(y, b), act)

        return fn

    return build


def fully_connected(k, units, use_bias=True, flatten=False, act="none"):
    """flatten=True reshapes a rank-3 input to [-1, k] first: the converter
    then folds the reshape into FULLY_CONNECTED with keep_num_dims=false.
    A plain matmul on a rank-3 input gives keep_num_dims=true."""

    def build(rng):
        w = tf.constant(weights(rng, [k, units], k))
        b = tf.constant(bias(rng, units)) if use_bias else None

        def fn(x):
            if flatten:
                x = tf.reshape(x, [-1, k])
            y = tf.matmul(x, w)
            if b is not None:
                y = y + b
            return activation(y, act)

        return fn

    return build


def binary(op, const=None, act="none"):
    """ADD/MUL. With const=None both operands are model inputs; otherwise the
    second operand is a constant of shape `const` ([] for a scalar)."""

    def build(rng):
        f = tf.add if op == "add" else tf.multiply
        if const is None:
            return lambda a, b: activation(f(a, b), act)
        c = tf.constant(rng.uniform(-1.5, 1.5, size=const).astype(np.float32))
        return lambda a: activation(f(a, c), act)

    return build


def pool(kind, k, stride, padding, act="none"):
    def build(rng):
        f = tf.nn.avg_pool2d if kind == "avg" else tf.nn.max_pool2d
        return lambda x: activation(f(x, ksize=list(k), strides=list(stride), padding=padding), act)

    return build


def mean(axes, keepdims):
    def build(rng):
        return lambda x: tf.reduce_mean(x, axis=axes, keepdims=keepdims)

    return build


def reshape(shape):
    def build(rng):
        return lambda x: tf.reshape(x, shape)

    return build


def softmax(pre_scale=None):
    def build(rng):
        if pre_scale is None:
            return lambda x: tf.nn.softmax(x)
        return lambda x: tf.nn.softmax(x * pre_scale)

    return build


def resnet18_cifar(rng):
    """Keras model with the op sequence and (pruned) channel counts of the seed
    cifar10_resnet18_pruned.tflite: a 3x3 stem, four stages of two basic
    blocks (the first block of stages 2-4 downsamples with stride 2 and a 1x1
    projection), a BatchNorm+ReLU after the last block (it cannot fold into a
    conv there, so it becomes MUL+ADD), 4x4 average pooling, flatten, dense
    with softmax. Conv biases stand in for folded BatchNorms."""
    import keras
    from keras import layers

    def conv(x, filters, k, stride, relu):
        return layers.Conv2D(filters, k, strides=stride, padding="same", activation="relu" if relu else None)(x)

    # Keras numbers auto-generated names with process-wide counters; reset
    # them so a model's tensor names do not depend on what was built before.
    keras.backend.clear_session()
    inp = keras.Input((32, 32, 3), name="input")
    x = conv(inp, 15, 3, 1, True)
    # (block output channels, [(inner channels, stride) per block])
    stages = [(15, [(6, 1), (8, 1)]), (20, [(21, 2), (26, 1)]), (16, [(45, 2), (42, 1)]), (22, [(28, 2), (55, 1)])]
    for out_ch, blocks in stages:
        for mid, stride in blocks:
            y = conv(x, mid, 3, stride, True)
            y = conv(y, out_ch, 3, 1, False)
            shortcut = x if stride == 1 and x.shape[-1] == out_ch else conv(x, out_ch, 1, stride, False)
            x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.AveragePooling2D(4)(x)
    # A static [-1, 22] reshape like the seed's (Flatten would compute the
    # batch at run time: SHAPE, STRIDED_SLICE, PACK).
    x = layers.Lambda(lambda t: tf.reshape(t, [-1, 22]))(x)
    out = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inp, out)

    # Explicit weights, independent of Keras' initializer implementation.
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            fan_in = kh * kw * cin
            kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(kh, kw, cin, cout))
            layer.set_weights([kernel.astype(np.float32), rng.uniform(-0.2, 0.2, size=cout).astype(np.float32)])
        elif isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c).astype(np.float32),  # gamma
                    rng.uniform(-0.5, 0.5, c).astype(np.float32),  # beta
                    rng.uniform(0.0, 1.0, c).astype(np.float32),  # moving mean
                    rng.uniform(0.5, 2.0, c).astype(np.float32),  # moving variance
                ]
            )
        elif isinstance(layer, layers.Dense):
            k, units = layer.kernel.shape
            layer.set_weights(
                [
                    rng.normal(0.0, 1.0 / np.sqrt(k), size=(k, units)).astype(np.float32),
                    rng.uniform(-0.2, 0.2, units).astype(np.float32),
                ]
            )
    return model


# ---------------------------------------------------------------- patches


def _ops_named(model, name):
    sg = model.subgraphs[0]
    return [op for op in sg.operators if tflite_inspect.OP_NAMES.get(tflite_inspect.op_code(model, op.opcodeIndex)) == name]


def patch_softmax_beta(beta):
    def patch(model):
        ops = _ops_named(model, "SOFTMAX")
        assert len(ops) == 1
        ops[0].builtinOptions.beta = float(beta)

    return patch


# ---------------------------------------------------------------- fixture list

X = [1, 9, 11, 5]  # odd, non-square activations
ACTS = ["none", "relu", "relu6", "relu_n1_to_1"]


def fixtures() -> list:
    fx = []

    def add(name, build, shapes, mode=F32, **kw):
        fx.append(Fixture(name, build, shapes, mode, **kw))

    # ResNet18-CIFAR with the seed model's structure.
    for suffix, mode in [
        ("f32", F32),
        ("fp16", FP16),
        ("dynamic", DYNAMIC),
        ("int8_uint8io", INT8_UINT8IO),
        ("int8_floatio", INT8_FLOATIO),
    ]:
        add(f"resnet18_cifar_{suffix}", resnet18_cifar, [[None, 32, 32, 3]], mode, keras=True)

    # Float and int8 versions of the same op list.
    for dt, mode in [("f32", F32), ("int8", INT8)]:
        for act in ACTS:
            add(f"conv2d_same_s1_{act}_{dt}", conv2d(5, 4, act=act), [X], mode)
        add(f"conv2d_valid_s1_none_{dt}", conv2d(5, 4, padding="VALID"), [X], mode)
        add(f"conv2d_same_s2_relu_{dt}", conv2d(5, 6, stride=(2, 2), act="relu"), [X], mode)
        add(f"conv2d_valid_s2_relu6_{dt}", conv2d(5, 6, stride=(2, 2), padding="VALID", act="relu6"), [X], mode)
        add(f"conv2d_same_d2_none_{dt}", conv2d(5, 4, dilation=(2, 2)), [X], mode)
        add(f"conv2d_valid_d2_relu_{dt}", conv2d(5, 4, padding="VALID", dilation=(2, 2), act="relu"), [X], mode)
        add(f"conv2d_valid_k3x2_s2x1_{dt}", conv2d(5, 3, k=(3, 2), stride=(2, 1), padding="VALID"), [X], mode)
        add(f"conv2d_same_k1_s2_{dt}", conv2d(5, 7, k=(1, 1), stride=(2, 2)), [X], mode)

        add(f"dwconv_m1_same_s1_{dt}", dwconv(5, 1), [X], mode)
        add(f"dwconv_m2_valid_s1_{dt}", dwconv(5, 2, padding="VALID"), [X], mode)
        add(f"dwconv_m1_same_s2_relu6_{dt}", dwconv(5, 1, stride=(2, 2), act="relu6"), [X], mode)
        add(f"dwconv_m2_same_s2_relu_{dt}", dwconv(5, 2, stride=(2, 2), act="relu"), [X], mode)
        add(f"dwconv_m1_valid_d2_{dt}", dwconv(5, 1, padding="VALID", dilation=(2, 2)), [X], mode)

        add(f"fc_bias_{dt}", fully_connected(7, 4), [[3, 7]], mode)
        add(f"fc_nobias_relu_{dt}", fully_connected(7, 4, use_bias=False, act="relu"), [[3, 7]], mode)
        add(f"fc_keepdims_{dt}", fully_connected(7, 4), [[1, 5, 7]], mode)
        add(f"fc_rank3_nokeep_{dt}", fully_connected(7, 4, flatten=True), [[1, 5, 7]], mode)

        for op in ["add", "mul"]:
            two = (1.0, 2.5)  # second input gets a wider range -> another scale
            add(f"{op}_same_{dt}", binary(op), [X, X], mode, rep_scales=two)
            add(f"{op}_same_relu_{dt}", binary(op, act="relu"), [X, X], mode, rep_scales=two)
            add(f"{op}_bcast_scalar_{dt}", binary(op, const=[]), [X], mode)
            add(f"{op}_bcast_channel_{dt}", binary(op, const=[5]), [X], mode)
            add(f"{op}_bcast_both_{dt}", binary(op), [[1, 4, 1, 3], [1, 1, 5, 3]], mode, rep_scales=two)
            add(f"{op}_bcast_both_relu6_{dt}", binary(op, act="relu6"), [[1, 4, 1, 3], [1, 1, 5, 3]], mode, rep_scales=(3.0, 3.0))

        for kind in ["avg", "max"]:
            add(f"{kind}pool_same_k3_s2_{dt}", pool(kind, (3, 3), (2, 2), "SAME"), [X], mode)
            add(f"{kind}pool_same_k2x3_s1_{dt}", pool(kind, (2, 3), (1, 1), "SAME"), [X], mode)
            add(f"{kind}pool_valid_k3_s2_{dt}", pool(kind, (3, 3), (2, 2), "VALID"), [X], mode)
            add(f"{kind}pool_valid_k2_s1_relu_{dt}", pool(kind, (2, 2), (1, 1), "VALID", act="relu"), [X], mode)

        add(f"mean_hw_keepdims_{dt}", mean([1, 2], True), [X], mode)
        add(f"mean_hw_{dt}", mean([1, 2], False), [X], mode)
        add(f"mean_lastaxis_{dt}", mean([-1], False), [X], mode)
        add(f"mean_all_{dt}", mean([0, 1, 2, 3], False), [X], mode)

        add(f"reshape_shape_{dt}", reshape([4, 6]), [[1, 4, 6]], mode)
        add(f"reshape_rank4_{dt}", reshape([1, 2, 3, 4]), [[6, 4]], mode)
        # A dynamic batch keeps the -1 in the shape constant.
        add(f"reshape_minus1_{dt}", reshape([-1, 12]), [[None, 4, 6]], mode)

        add(f"softmax_rank2_{dt}", softmax(), [[2, 10]], mode, rep_scales=(4.0,))
        add(f"softmax_rank4_{dt}", softmax(), [[1, 3, 2, 7]], mode, rep_scales=(4.0,))
        add(
            f"softmax_beta0p5_{dt}",
            softmax(),
            [[2, 10]],
            mode,
            rep_scales=(4.0,),
            patch=patch_softmax_beta(0.5),
            note="beta patched to 0.5 (converter keeps x*beta as a MUL)",
        )
        add(f"softmax_mulbeta_{dt}", softmax(pre_scale=0.5), [[2, 10]], mode, rep_scales=(4.0,))

    # Float-only extras.
    add("dequantize_fp16_conv2d_f32", conv2d(5, 4, act="relu"), [X], FP16)
    # Only the legacy dynamic-range quantizer with per-channel disabled falls
    # back to DEQUANTIZE(int8 const) for a depthwise conv; it skips weights
    # with fewer than 1024 elements, hence 64 channels x 2 x 3x3.
    add("dequantize_int8_dwconv_f32", dwconv(64, 2), [[1, 5, 7, 64]], DYNAMIC_LEGACY_PT)

    # Dynamic-range (hybrid) ops: int8 weights, float activations.
    add("conv2d_same_relu_dynamic", conv2d(12, 10, act="relu"), [[1, 7, 9, 12]], DYNAMIC)
    add("conv2d_same_pertensor_dynamic", conv2d(12, 10), [[1, 7, 9, 12]], DYNAMIC_LEGACY_PT)
    add("dwconv_m1_same_dynamic", dwconv(128, 1), [[1, 5, 7, 128]], DYNAMIC)
    add("fc_asym_dynamic", fully_connected(64, 20), [[2, 64]], DYNAMIC)
    add("fc_sym_pertensor_dynamic", fully_connected(64, 20), [[2, 64]], DYNAMIC_LEGACY_PT)

    # Int8 per-tensor weights.
    add("conv2d_same_s1_relu_pertensor_int8", conv2d(5, 4, act="relu"), [X], INT8, per_tensor=True)
    add("dwconv_m2_same_s1_pertensor_int8", dwconv(5, 2), [X], INT8, per_tensor=True)
    add("fc_bias_pertensor_int8", fully_connected(7, 4), [[3, 7]], INT8, per_tensor=True)

    # Float I/O (QUANTIZE in, DEQUANTIZE out) and uint8 I/O (int8<->uint8 QUANTIZE).
    add("conv2d_same_s1_relu_floatio_int8", conv2d(5, 4, act="relu"), [X], INT8_FLOATIO)
    add("add_same_floatio_int8", binary("add"), [X, X], INT8_FLOATIO, rep_scales=(1.0, 2.5))
    add("softmax_rank2_floatio_int8", softmax(), [[2, 10]], INT8_FLOATIO, rep_scales=(4.0,))
    add("conv2d_same_s1_relu_uint8io_int8", conv2d(5, 4, act="relu"), [X], INT8_UINT8IO)
    add("avgpool_same_k3_s2_uint8io_int8", pool("avg", (3, 3), (2, 2), "SAME"), [X], INT8_UINT8IO)
    add("fc_bias_uint8io_int8", fully_connected(7, 4), [[3, 7]], INT8_UINT8IO)
    fx.extend(family_fixtures())
    return fx


def family_fixtures() -> list:
    """Fixtures of the operator families, one module each: tools/fixtures_<family>.py, each
    with a `fixtures(g)` function that receives this module and returns a list of Fixture."""
    import importlib

    sys.path.insert(0, str(TOOLS))
    out = []
    for path in sorted(TOOLS.glob("fixtures_*.py")):
        module = importlib.import_module(path.stem)
        out.extend(module.fixtures(sys.modules[__name__]))
    return out


# ---------------------------------------------------------------- conversion


def representative_data(fx: Fixture, count=48):
    rng = rng_for(fx.name, salt=1)
    scales = list(fx.rep_scales) + [1.0] * (len(fx.shapes) - len(fx.rep_scales))

    def gen():
        for _ in range(count):
            arrays = []
            for i, (shape, s) in enumerate(zip(fx.shapes, scales)):
                size = [1 if d is None else d for d in shape]
                if fx.dtype(i).startswith("float"):
                    arrays.append((rng.uniform(-1.0, 1.0, size=size) * s).astype(np.float32))
                else:
                    arrays.append(rng.integers(0, 8, size=size).astype(fx.dtype(i)))
            if fx.keras:
                yield arrays
            else:
                # Keyed by signature name: a plain list would be matched to
                # the converted model's input order, which the converter
                # sorts by name (descending), not by argument position.
                yield {f"x{i}": a for i, a in enumerate(arrays)}

    return gen


def make_converter(fx: Fixture):
    _import_tf()
    built = fx.build(rng_for(fx.name))
    if fx.keras:
        return tf.lite.TFLiteConverter.from_keras_model(built)
    module = tf.Module()
    if hasattr(built, "track"):
        # Objects (e.g. variables) the function uses, so the converter can find them.
        module.track = built.track
    module.f = tf.function(
        built,
        input_signature=[
            tf.TensorSpec(s, getattr(tf, fx.dtype(i)), name=f"x{i}") for i, s in enumerate(fx.shapes)
        ],
        autograph=False,
    )
    return tf.lite.TFLiteConverter.from_concrete_functions([module.f.get_concrete_function()], module)


def convert(fx: Fixture) -> bytes:
    conv = make_converter(fx)
    if fx.resource_variables:
        conv.experimental_enable_resource_variables = True
    mode = fx.mode
    if mode != F32:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == FP16:
        conv.target_spec.supported_types = [tf.float16]
    if mode == DYNAMIC_LEGACY_PT:
        conv.experimental_new_dynamic_range_quantizer = False
        conv._experimental_disable_per_channel = True
    if mode in (INT8, INT8_FLOATIO, INT8_UINT8IO):
        conv.representative_dataset = representative_data(fx)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv._experimental_disable_per_channel = fx.per_tensor
        if mode == INT8:
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        elif mode == INT8_UINT8IO:
            conv.inference_input_type = tf.uint8
            conv.inference_output_type = tf.uint8
    if mode in (INT16X8, INT16X8_FALLBACK, INT16X8_BIAS32):
        conv.representative_dataset = representative_data(fx)
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        if mode == INT16X8_FALLBACK:
            conv.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        if mode == INT16X8_BIAS32:
            conv._experimental_full_integer_quantization_bias_type = tf.int32
        conv.inference_input_type = tf.int16
        conv.inference_output_type = tf.int16
    data = conv.convert()
    if fx.patch is not None:
        from ai_edge_litert.tools import flatbuffer_utils

        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
        fx.patch(model)
        data = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    return data


# ---------------------------------------------------------------- manifest


def runtime_op_names(path: Path) -> list:
    """Op names as the interpreter sees them (no delegate, so no DELEGATE node)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    return [op["op_name"] for op in it._get_ops_details()]


def _io_text(t):
    shape = "x".join(str(d) for d in t["shape"]) or "scalar"
    q = f" s={t['scale']:.6g} zp={t['zero_point']}" if t["scale"] else ""
    sig = t["shape_signature"]
    dyn = f" (signature {sig})" if sig is not None and sig != t["shape"] else ""
    return f"{t['dtype']}[{shape}]{dyn}{q}"


def write_manifest(notes: dict) -> None:
    lines = [
        "# Fixture models",
        "",
        "Generated by `tools/gen_models.py` (do not edit by hand). For each model: size, graph",
        "inputs and outputs (with quantization), then the ops of subgraph 0 with their main options.",
        "Operand notation: `c` = constant, `=[..]` small int32 constant values, `/pt` / `/pc` =",
        "per-tensor / per-channel quantized constant.",
        "",
    ]
    total = 0
    for path in sorted(OUT.glob("*.tflite")):
        d = tflite_inspect.describe(path)
        names = [op["name"] for op in d["ops"]]
        rt = runtime_op_names(path)
        if rt != names:
            raise RuntimeError(f"{path.name}: interpreter ops {rt} differ from file ops {names}")
        size = path.stat().st_size
        total += size
        lines.append(f"## {path.stem}")
        lines.append("")
        lines.append(f"- size: {size} bytes")
        if notes.get(path.stem):
            lines.append(f"- {notes[path.stem]}")
        lines.append("- inputs: " + ", ".join(_io_text(t) for t in d["inputs"]))
        lines.append("- outputs: " + ", ".join(_io_text(t) for t in d["outputs"]))
        if len(d["ops"]) > 12:
            counts = {}
            for n in names:
                counts[n] = counts.get(n, 0) + 1
            lines.append("- op counts: " + ", ".join(f"{n} x{c}" for n, c in sorted(counts.items())))
        lines.append("- ops:")
        for i, op in enumerate(d["ops"]):
            lines.append(f"  {i}. `{tflite_inspect.op_line(op)}`")
        lines.append("")
    lines.insert(7, f"Total: {len(list(OUT.glob('*.tflite')))} models, {total} bytes.")
    lines.insert(8, "")
    (OUT / "MANIFEST.md").write_text("\n".join(lines))
    print(f"wrote {OUT / 'MANIFEST.md'} ({total} bytes of models)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("filters", nargs="*", help="only fixtures whose name contains one of these")
    ap.add_argument("--manifest", action="store_true", help="only rewrite MANIFEST.md")
    ap.add_argument("--list", action="store_true", help="print fixture names and exit")
    ap.add_argument("--out", type=Path, help="write here instead of tests/models (e.g. to check determinism)")
    args = ap.parse_args()
    global OUT
    if args.out is not None:
        OUT = args.out

    all_fx = fixtures()
    names = [f.name for f in all_fx]
    assert len(names) == len(set(names)), "duplicate fixture names"
    if args.list:
        print("\n".join(names))
        return
    notes = {f.name: ("patched: " if f.patch else "note: ") + f.note for f in all_fx if f.patch is not None or f.note}
    if not args.manifest:
        OUT.mkdir(parents=True, exist_ok=True)
        chosen = [f for f in all_fx if not args.filters or any(s in f.name for s in args.filters)]
        for fx in chosen:
            data = convert(fx)
            (OUT / f"{fx.name}.tflite").write_bytes(data)
            d = tflite_inspect.describe(OUT / f"{fx.name}.tflite")
            print(f"{fx.name}: {len(data)} bytes: " + " ".join(op["name"] for op in d["ops"]), flush=True)
    write_manifest(notes)


if __name__ == "__main__":
    main()
