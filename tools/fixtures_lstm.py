"""UNIDIRECTIONAL_SEQUENCE_LSTM fixtures.

With Keras 3 a `keras.layers.LSTM` converts to a WHILE loop. The converter fuses an LSTM
only when it meets a function marked the way Keras 2 marked its LSTM backend
(`api_implements="lstm_..."` plus a `time_major` attribute, arguments
`(inputs, init_h, init_c, kernel, recurrent_kernel, bias)`, five results), so the models
here call such a function. Variants the converter never emits (peephole, CIFG, layer
norm, projection, clipping, other cell activations, symmetric hybrid quantization) are
made by editing the converted flatbuffer: tensors are added or removed from the op's 24
inputs and its options are changed.
"""

import numpy as np

from ai_edge_litert import schema_py_generated as schema

# Input slots of UNIDIRECTIONAL_SEQUENCE_LSTM.
I2I, I2F, I2C, I2O = 1, 2, 3, 4
R2I, R2F, R2C, R2O = 5, 6, 7, 8
C2I, C2F, C2O = 9, 10, 11
BI, BF, BC, BO = 12, 13, 14, 15
PROJ_W, PROJ_B = 16, 17
OUT_STATE, CELL_STATE = 18, 19
LN_I, LN_F, LN_C, LN_O = 20, 21, 22, 23


def _lstm_fn(tf, time_major):
    attrs = {
        "api_implements": "lstm_ferrolite",
        "api_preferred_device": "CPU",
        "time_major": time_major,
        "go_backwards": False,
    }

    @tf.function(autograph=False, experimental_attributes=attrs)
    def lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        axis = 0 if time_major else 1
        h, c = init_h, init_c
        outs = []
        for x in tf.unstack(inputs, axis=axis):
            z = tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + bias
            i, f, g, o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            outs.append(h)
        return h, tf.stack(outs, axis=axis), h, c, tf.constant(0.0)

    return lstm


def lstm_model(g, n_in, units, batch, time_major=False, return_sequences=True, mask=None):
    """With `mask` (0/1 per input row, shaped like the input without its last axis), the
    input is multiplied by it first, so that chosen rows are exactly zero."""

    def build(rng):
        tf = g._import_tf()
        k = tf.constant(g.weights(rng, [n_in, 4 * units], n_in, gain=1.0))
        r = tf.constant(g.weights(rng, [units, 4 * units], units, gain=1.0))
        b = tf.constant(g.bias(rng, 4 * units))
        lstm = _lstm_fn(tf, time_major)

        def fn(x):
            if mask is not None:
                x = x * tf.constant(np.array(mask, dtype=np.float32)[..., None])
            z = tf.zeros([batch, units])
            last, seq, _, _, _ = lstm(x, z, z, k, r, b)
            return seq if return_sequences else last

        return fn

    return build


def text_lstm(rng):
    """Token ids [1, 16] -> Embedding(50, 8) -> LSTM(12) -> Dense(4, softmax)."""
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    lstm = _lstm_fn(tf, False)

    class FusedLSTM(keras.layers.Layer):
        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.units = units

        def build(self, shape):
            n_in, u = shape[-1], self.units
            std = np.sqrt(1.0 / n_in)
            self.kernel = self.add_weight(shape=(n_in, 4 * u), initializer=keras.initializers.Constant(rng.normal(0, std, (n_in, 4 * u))))
            self.recurrent = self.add_weight(shape=(u, 4 * u), initializer=keras.initializers.Constant(rng.normal(0, np.sqrt(1.0 / u), (u, 4 * u))))
            self.b = self.add_weight(shape=(4 * u,), initializer=keras.initializers.Constant(rng.uniform(-0.5, 0.5, 4 * u)))

        def compute_output_shape(self, shape):
            return (shape[0], self.units)

        def call(self, x):
            z = tf.zeros([tf.shape(x)[0], self.units])
            w = [tf.convert_to_tensor(v) for v in (self.kernel, self.recurrent, self.b)]
            last, _, _, _, _ = lstm(x, z, z, *w)
            return last

    inp = keras.Input((16,), batch_size=1, dtype="int32", name="x0")
    x = keras.layers.Embedding(50, 8, embeddings_initializer=keras.initializers.Constant(rng.uniform(-1, 1, (50, 8))))(inp)
    x = FusedLSTM(12)(x)
    out = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inp, out)
    dense = model.layers[-1]
    dense.set_weights([rng.normal(0, 0.5, (12, 4)).astype(np.float32), rng.uniform(-0.2, 0.2, 4).astype(np.float32)])
    return model


# ---------------------------------------------------------------- flatbuffer edits


def _op(g, model):
    ops = g._ops_named(model, "UNIDIRECTIONAL_SEQUENCE_LSTM")
    assert len(ops) == 1
    return ops[0]


def _tensor(model, k):
    return model.subgraphs[0].tensors[k]


def _add(model, name, arr, scale=None, dtype=np.int8):
    """Appends a constant tensor (float32, or `dtype` with a per-tensor scale)."""
    t = schema.TensorT()
    t.name = name.encode()
    t.shape = np.array(arr.shape, dtype=np.int32)
    if scale is None:
        t.type = schema.TensorType.FLOAT32
        data = arr.astype(np.float32)
    else:
        t.type = {np.int8: schema.TensorType.INT8, np.int16: schema.TensorType.INT16, np.int32: schema.TensorType.INT32}[dtype]
        data = arr.astype(dtype)
        q = schema.QuantizationParametersT()
        q.scale = np.array([scale], dtype=np.float32)
        q.zeroPoint = np.array([0], dtype=np.int64)
        t.quantization = q
    buf = schema.BufferT()
    buf.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
    model.buffers.append(buf)
    t.buffer = len(model.buffers) - 1
    model.subgraphs[0].tensors.append(t)
    return len(model.subgraphs[0].tensors) - 1


def _hybrid(model, op):
    """Int8 weights (hybrid or full integer)."""
    return _tensor(model, op.inputs[I2F]).type == schema.TensorType.INT8


def _integer(model, op):
    return _tensor(model, op.inputs[0]).type == schema.TensorType.INT8


def _vector(model, op, name, arr):
    """A peephole vector: float, int8 (hybrid) or int16 (full integer)."""
    if _integer(model, op):
        scale = float(np.abs(arr).max()) / 32767.0
        return _add(model, name, np.round(arr / scale), scale, np.int16)
    return _weights(model, op, name, arr)


def _weights(model, op, name, arr):
    """A weight constant in the op's weight dtype (int8 per-tensor when hybrid)."""
    if not _hybrid(model, op):
        return _add(model, name, arr)
    scale = float(np.abs(arr).max()) / 127.0
    return _add(model, name, np.round(arr / scale), scale)


def _sizes(model, op):
    n_cell, n_input = _tensor(model, op.inputs[I2F]).shape
    return int(n_cell), int(n_input)


def _rng(tag):
    import zlib

    return np.random.default_rng(zlib.crc32(tag.encode()))


def peephole(g, model):
    op = _op(g, model)
    n_cell, _ = _sizes(model, op)
    rng = _rng("peephole")
    for k in (C2I, C2F, C2O):
        op.inputs[k] = _vector(model, op, f"peephole_{k}", rng.uniform(-1, 1, n_cell))


def cifg(g, model):
    op = _op(g, model)
    for k in (I2I, R2I, BI, C2I, LN_I):
        op.inputs[k] = -1


def layer_norm(g, model):
    op = _op(g, model)
    n_cell, _ = _sizes(model, op)
    rng = _rng("layer_norm")
    for k in (LN_I, LN_F, LN_C, LN_O):
        op.inputs[k] = _add(model, f"layer_norm_{k}", rng.uniform(0.5, 1.5, n_cell))


def projection(n_proj, with_bias):
    """Projects the hidden state to `n_proj` values: new recurrent weights [n_cell, n_proj],
    a smaller output state and output."""

    def patch(g, model):
        op = _op(g, model)
        n_cell, _ = _sizes(model, op)
        rng = _rng(f"projection_{n_proj}_{with_bias}")
        op.inputs[PROJ_W] = _weights(model, op, "projection", rng.normal(0, 1 / np.sqrt(n_cell), (n_proj, n_cell)))
        if with_bias and _integer(model, op):
            op.inputs[PROJ_B] = _add(model, "projection_bias", rng.integers(-3000, 3000, n_proj), 1e-4, np.int32)
        elif with_bias:
            op.inputs[PROJ_B] = _add(model, "projection_bias", rng.uniform(-0.3, 0.3, n_proj))
        for k in (R2I, R2F, R2C, R2O):
            if op.inputs[k] >= 0:
                op.inputs[k] = _weights(model, op, f"recurrent_{k}", rng.normal(0, 1 / np.sqrt(n_proj), (n_cell, n_proj)))
        state = _tensor(model, op.inputs[OUT_STATE])
        state.shape = np.array([state.shape[0], n_proj], dtype=np.int32)
        out = _tensor(model, op.outputs[0])
        out.shape = np.array([*out.shape[:2], n_proj], dtype=np.int32)
        if out.shapeSignature is not None:
            out.shapeSignature = np.array([*out.shapeSignature[:2], n_proj], dtype=np.int32)

    return patch


def options(**kw):
    def patch(g, model):
        o = _op(g, model).builtinOptions
        for k, v in kw.items():
            setattr(o, k, v)

    return patch


def chain(*patches):
    def patch(g, model):
        for p in patches:
            p(g, model)

    return patch


def fixtures(g):
    fx = []

    def add(name, build, shapes, mode=g.F32, patch=None, note="", **kw):
        p = None
        if patch is not None:
            p = lambda model, patch=patch: patch(g, model)  # noqa: E731
        fx.append(g.Fixture(name, build, shapes, mode, patch=p, note=note, **kw))

    B, T, I, H = 2, 5, 3, 4
    seq = [B, T, I]
    base = lstm_model(g, I, H, B)
    add("lstm_basic_f32", base, [seq])
    add("lstm_timemajor_f32", lstm_model(g, I, H, B, time_major=True), [[T, B, I]])
    add("lstm_last_f32", lstm_model(g, I, H, B, return_sequences=False), [seq])
    add("lstm_batch1_f32", lstm_model(g, I, H, 1), [[1, T, I]])
    variants = [
        ("peephole", peephole),
        ("cifg", cifg),
        ("cifg_peephole", chain(cifg, peephole)),
        ("layernorm", layer_norm),
        ("cifg_layernorm_peephole", chain(layer_norm, peephole, cifg)),
        ("projection", projection(3, True)),
        ("projection_nobias", projection(3, False)),
        ("clip", chain(projection(3, True), options(cellClip=0.4, projClip=0.15))),
        ("cellclip", options(cellClip=0.3)),
        ("relu6", options(fusedActivationFunction=schema.ActivationFunctionType.RELU6)),
        ("noact", options(fusedActivationFunction=schema.ActivationFunctionType.NONE)),
    ]
    for tag, patch in variants:
        add(f"lstm_{tag}_f32", base, [seq], patch=patch, note=f"LSTM edited: {tag}")

    # Activation NONE with exactly-zero input rows, where REF's float step has quirks
    # (whole steps count when time-major, single rows when batch-major).
    none = options(fusedActivationFunction=schema.ActivationFunctionType.NONE)
    zero_rows = [[1, 0, 1, 0, 1], [0, 0, 1, 1, 1]]  # [B, T]
    add("lstm_noact_zerorows_f32", lstm_model(g, I, H, B, mask=zero_rows), [seq], patch=none, note="LSTM edited: noact")
    zero_steps = [[1, 1], [0, 0], [0, 1], [1, 0], [0, 0]]  # [T, B]
    tm_zero = lstm_model(g, I, H, B, time_major=True, mask=zero_steps)
    add("lstm_noact_zerosteps_timemajor_f32", tm_zero, [[T, B, I]], patch=none, note="LSTM edited: noact")

    # Dynamic range: the quantizer leaves weights under 1024 elements in float, so the
    # gates are 32x32. It emits per-tensor int8 weights and asymmetric_quantize_inputs.
    DI, DH = 32, 32
    dyn = lstm_model(g, DI, DH, B)
    dseq = [B, 3, DI]
    add("lstm_basic_dynamic", dyn, [dseq], g.DYNAMIC)
    add("lstm_timemajor_dynamic", lstm_model(g, DI, DH, B, time_major=True), [[3, B, DI]], g.DYNAMIC)
    dyn_variants = [
        ("symmetric", options(asymmetricQuantizeInputs=False)),
        ("peephole_layernorm", chain(peephole, layer_norm)),
        ("cifg_projection", chain(cifg, projection(8, True), options(asymmetricQuantizeInputs=False))),
        ("projection_clip", chain(projection(8, False), options(cellClip=0.5, projClip=0.2))),
    ]
    for tag, patch in dyn_variants:
        add(f"lstm_{tag}_dynamic", dyn, [dseq], g.DYNAMIC, patch=patch, note=f"LSTM edited: {tag}")

    # Full integer (int8 activations, int16 cell state).
    add("lstm_basic_int8", base, [seq], g.INT8)
    add("lstm_timemajor_int8", lstm_model(g, I, H, B, time_major=True), [[T, B, I]], g.INT8)
    add("lstm_last_int8", lstm_model(g, I, H, B, return_sequences=False), [seq], g.INT8)
    int8_variants = [
        ("cifg", cifg),
        ("peephole", peephole),
        ("cifg_peephole", chain(peephole, cifg)),
        ("cellclip", options(cellClip=0.3)),
    ]
    # Projection is refused for full-integer LSTMs (see src/ops/lstm/integer.rs).
    for tag, patch in int8_variants:
        add(f"lstm_{tag}_int8", base, [seq], g.INT8, patch=patch, note=f"LSTM edited: {tag}")

    # The zoo text classifier.
    for suffix, mode in (("f32", g.F32), ("fp16", g.FP16), ("dynamic", g.DYNAMIC), ("int8", g.INT8)):
        add(f"zoo_text_lstm_{suffix}", text_lstm, [[1, 16]], mode, keras=True, dtypes=("int32",))
    return fx


# ---------------------------------------------------------------- second-invoke goldens

# Fixtures whose state persistence is checked: the reference's output after a second
# invoke on the same inputs goes to tests/golden/<name>/ref_invoke2_output_0.npy.
SECOND_INVOKE = ["lstm_basic_f32", "lstm_timemajor_f32", "lstm_basic_dynamic", "zoo_text_lstm_fp16", "lstm_basic_int8"]


def write_second_invoke_goldens():
    import sys
    from pathlib import Path

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo / "tools"))
    import ferrolite_inputs

    for name in SECOND_INVOKE:
        it = Interpreter(
            model_path=str(repo / "tests" / "models" / f"{name}.tflite"),
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        )
        it.allocate_tensors()
        for k, d in enumerate(it.get_input_details()):
            it.set_tensor(d["index"], ferrolite_inputs.generate_input(d["shape"], d["dtype"], k, 0))
        it.invoke()
        it.invoke()
        out = it.get_tensor(it.get_output_details()[0]["index"])
        np.save(repo / "tests" / "golden" / name / "ref_invoke2_output_0.npy", out)
        print(name, out.shape)


if __name__ == "__main__":
    write_second_invoke_goldens()
