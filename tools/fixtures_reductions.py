"""Fixtures of the reductions family: SUM, REDUCE_PROD, REDUCE_MAX, REDUCE_MIN, ARG_MAX,
ARG_MIN, CAST, CUMSUM,
TOP_K_V2 and FILL.

Integer inputs of the golden runs are small (0..7), so ARG_MAX/ARG_MIN on int32 inputs see
many ties and check the first-index rule.
"""

X4 = [1, 4, 5, 3]
X3 = [2, 5, 6]


def fixtures(g):
    tf = g._import_tf()
    fx = []

    def add(name, f, shapes, mode=g.F32, **kw):
        # `f` may take extra keyword defaults (loop captures); the model sees only `x`.
        fx.append(g.Fixture(name, lambda rng: (lambda x: f(x)), shapes, mode, **kw))

    reducers = {
        "sum": tf.reduce_sum,
        "reduce_max": tf.reduce_max,
        "reduce_min": tf.reduce_min,
        "reduce_prod": tf.reduce_prod,
    }
    for op, f in reducers.items():
        for dt, mode in (("f32", g.F32), ("int8", g.INT8)):
            add(f"{op}_hw_keep_{dt}", lambda x, f=f: f(x, axis=[1, 2], keepdims=True), [X4], mode)
            add(f"{op}_last_{dt}", lambda x, f=f: f(x, axis=-1), [X4], mode)
            add(f"{op}_outer_inner_{dt}", lambda x, f=f: f(x, axis=[0, 2]), [X3], mode)
        add(f"{op}_all_f32", lambda x, f=f: f(x, axis=[0, 1, 2]), [X3])
        add(f"{op}_mid_int32", lambda x, f=f: f(x, axis=[1]), [X3], dtypes=("int32",))
        add(f"{op}_neg_int64", lambda x, f=f: f(x, axis=[-1, 0]), [X3], dtypes=("int64",))

    # 16x8 REDUCE_MAX / REDUCE_MIN (raw int16 values, equal input/output quantization).
    add("reduce_max_hw_keep_int16", lambda x: tf.reduce_max(x, axis=[1, 2], keepdims=True), [X4], g.INT16X8)
    add("reduce_min_last_int16", lambda x: tf.reduce_min(x, axis=-1), [X4], g.INT16X8)

    for name, f in (("arg_max", tf.math.argmax), ("arg_min", tf.math.argmin)):
        add(f"{name}_last_f32", lambda x, f=f: f(x, axis=-1, output_type=tf.int32), [X4])
        add(f"{name}_axis1_i64out_f32", lambda x, f=f: f(x, axis=1, output_type=tf.int64), [X4])
        add(f"{name}_axis0_int32", lambda x, f=f: f(x, axis=0, output_type=tf.int32), [X3], dtypes=("int32",))
        add(f"{name}_last_int32", lambda x, f=f: f(x, axis=2, output_type=tf.int64), [X3], dtypes=("int32",))
        add(f"{name}_last_int8", lambda x, f=f: f(x, axis=-1, output_type=tf.int32), [X4], g.INT8)
        add(f"{name}_axis_i64_uint8", lambda x, f=f: f(x, axis=tf.constant(1, tf.int64)), [X3], dtypes=("uint8",))

    # Scaled so that float -> int conversions see several integers and negative fractions.
    to = {
        "int32": tf.int32,
        "int64": tf.int64,
        "int16": tf.int16,
        "int8": tf.int8,
        "uint8": tf.uint8,
        "bool": tf.bool,
    }
    for n, t in to.items():
        add(f"cast_f32_to_{n}_f32", lambda x, t=t: tf.cast(x * 9.0, t), [X3])
    add("cast_int32_to_f32_f32", lambda x: tf.cast(x, tf.float32) * 0.5, [X3], dtypes=("int32",))
    add("cast_int64_to_int32_f32", lambda x: tf.cast(x - 3, tf.int32), [X3], dtypes=("int64",))
    add("cast_int32_to_bool_f32", lambda x: tf.cast(x - 3, tf.bool), [X3], dtypes=("int32",))
    add("cast_bool_to_f32_f32", lambda x: tf.cast(x, tf.float32), [X3], dtypes=("bool",))
    add("cast_int8_to_int32_f32", lambda x: tf.cast(x, tf.int32), [X3], dtypes=("int8",))
    add("cast_uint8_to_int8_f32", lambda x: tf.cast(x, tf.int8), [X3], dtypes=("uint8",))
    add("cast_int16_to_uint8_f32", lambda x: tf.cast(x, tf.uint8), [X3], dtypes=("int16",))

    for ex in (False, True):
        for rev in (False, True):
            tag = ("excl" if ex else "incl") + ("_rev" if rev else "")
            cs = lambda x, ex=ex, rev=rev: tf.math.cumsum(x, axis=1, exclusive=ex, reverse=rev)
            add(f"cumsum_{tag}_f32", cs, [X3])
    add("cumsum_last_int32", lambda x: tf.math.cumsum(x, axis=-1), [X3], dtypes=("int32",))
    add("cumsum_first_int64", lambda x: tf.math.cumsum(x, axis=0, reverse=True), [X3], dtypes=("int64",))

    add("topk_k3_f32", lambda x: tf.math.top_k(x, k=3), [X3])
    add("topk_k6_int32", lambda x: tf.math.top_k(x, k=6), [X3], dtypes=("int32",))
    add("topk_k2_int8", lambda x: tf.math.top_k(x, k=2), [X4], g.INT8)

    # ZEROS_LIKE is not here: the converter folds it into a constant even of a model input.
    add("fill_scalar_f32", lambda x: tf.fill([2, 3, 4], x), [[]])
    add("fill_scalar_int32", lambda x: tf.fill([3, 5], x), [[]], dtypes=("int32",))
    return fx
