"""The model zoo: small versions of the architectures users bring, in every variant the converter
makes (float32, float16 weights, dynamic range, int8, int16x8).

Each model keeps its family's layers and wiring but is narrowed (width multiplier, input size,
10 classes) so the committed set stays small; the ops, options and dtypes the converter emits
are the same as at full size. The text-LSTM and SSD-head models live with their operators
(tools/fixtures_lstm.py, tools/fixtures_detection.py).
"""

ZOO_MODES = ("f32", "fp16", "dynamic", "int8", "int16x8")


def fixtures(g):
    tf = g._import_tf() or g.tf
    keras = tf.keras
    layers = keras.layers

    def seeded(rng):
        # Keras initialisers draw from the global generator: seed it from the fixture's own
        # generator so that every weight is a function of the fixture name only.
        keras.utils.set_random_seed(int(rng.integers(0, 2**31 - 1)))

    def randomize_bn(model, rng):
        # Fresh BatchNormalization layers are the identity; random statistics make the folded
        # scales and offsets differ per channel, as in a trained model.
        for layer in model.layers:
            if isinstance(layer, layers.BatchNormalization):
                gamma, beta, mean, var = layer.get_weights()
                n = gamma.shape[0]
                layer.set_weights(
                    [
                        rng.uniform(0.5, 1.5, n).astype("float32"),
                        rng.uniform(-0.3, 0.3, n).astype("float32"),
                        rng.uniform(-0.3, 0.3, n).astype("float32"),
                        rng.uniform(0.5, 2.0, n).astype("float32"),
                    ]
                )
        return model

    def mobilenet_v3(large):
        def build(rng):
            seeded(rng)
            ctor = keras.applications.MobileNetV3Large if large else keras.applications.MobileNetV3Small
            # The backbone as users fine-tune it: no 1024/1280-wide top convolution (most of
            # the weights at this width), global average pooling and a new classifier.
            base = ctor(
                input_shape=(64, 64, 3),
                alpha=0.25 if large else 0.35,
                weights=None,
                include_top=False,
                pooling="avg",
                include_preprocessing=True,
            )
            out = layers.Dense(10, activation="softmax")(base.output)
            return randomize_bn(keras.Model(base.input, out), rng)

        return build

    def efficientnet_b0(rng):
        seeded(rng)
        from keras.src.applications import efficientnet

        # B0's block list and depth coefficient; width narrowed to a quarter.
        m = efficientnet.EfficientNet(
            width_coefficient=0.25,
            depth_coefficient=1.0,
            default_size=64,
            dropout_rate=0.0,
            drop_connect_rate=0.0,
            name="efficientnet_b0_w025",
            weights=None,
            input_shape=(64, 64, 3),
            classes=10,
        )
        return randomize_bn(m, rng)

    def unet(rng):
        seeded(rng)

        def block(x, n):
            x = layers.Conv2D(n, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
            x = layers.Conv2D(n, 3, padding="same", activation="relu")(x)
            return x

        inp = keras.Input((32, 32, 3), batch_size=1)
        e1 = block(inp, 8)
        e2 = block(layers.MaxPooling2D()(e1), 16)
        b = block(layers.MaxPooling2D()(e2), 24)
        u2 = layers.Conv2DTranspose(16, 3, strides=2, padding="same")(b)
        d2 = block(layers.Concatenate()([u2, e2]), 16)
        u1 = layers.UpSampling2D(interpolation="bilinear")(d2)
        d1 = block(layers.Concatenate()([u1, e1]), 8)
        # A nearest-neighbour side output, as segmenters add auxiliary heads. (UpSampling2D
        # "nearest" converts to RESHAPE+TILE, whose version 3 the reference kernels lack.)
        aux = layers.Resizing(32, 32, interpolation="nearest")(layers.Conv2D(4, 1)(b))
        logits = layers.Add()([layers.Conv2D(4, 1)(d1), aux])
        return randomize_bn(keras.Model(inp, layers.Softmax()(logits)), rng)

    def kws(rng):
        # DS-CNN keyword spotter on a 49x10 MFCC spectrogram, 12 classes.
        seeded(rng)
        inp = keras.Input((49, 10, 1), batch_size=1)
        x = layers.Conv2D(32, (10, 4), strides=(2, 2), padding="same", use_bias=False)(inp)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        for _ in range(3):
            x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
            x = layers.Conv2D(32, 1, use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.AveragePooling2D(pool_size=(25, 5))(x)
        x = layers.Flatten()(x)
        out = layers.Dense(12, activation="softmax")(x)
        return randomize_bn(keras.Model(inp, out), rng)

    def transformer(rng):
        # One encoder block: multi-head self-attention and a GELU feed-forward, each with a
        # residual and LayerNormalization.
        seeded(rng)
        inp = keras.Input((16, 32), batch_size=1)
        att = layers.MultiHeadAttention(num_heads=2, key_dim=16)(inp, inp)
        x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([inp, att]))
        ff = layers.Dense(64, activation="gelu")(x)
        ff = layers.Dense(32)(ff)
        out = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, ff]))
        return keras.Model(inp, out)

    def while_cond(rng):
        # Iterative refinement: a data-dependent number of steps of a small dense update, then a
        # branch on the result's sign.
        # 32x32: large enough for the dynamic-range quantizer (1,024 values).
        w = tf.constant(g.weights(rng, [32, 32], 32, gain=0.5))

        def f(x0):
            def body(i, y):
                return i + 1, tf.tanh(tf.matmul(y, w)) + 0.1 * y

            def cont(i, y):
                return tf.logical_and(i < 6, tf.reduce_max(tf.abs(y)) > 0.05)

            _, y = tf.while_loop(cont, body, [tf.constant(0), x0])
            return tf.cond(tf.reduce_sum(y) > 0.0, lambda: y * 2.0, lambda: tf.nn.relu(y) - 1.0)

        return f

    def stateful(rng):
        # A streaming model: an exponential moving average of its inputs kept in a variable,
        # and a call counter.
        holder = tf.Module()
        holder.avg = tf.Variable(rng.uniform(-1, 1, size=[1, 32]).astype("float32"))
        holder.steps = tf.Variable(tf.zeros([1], tf.float32))
        w = tf.constant(g.weights(rng, [32, 32], 32))

        def f(x0):
            holder.steps.assign_add(tf.ones([1]))
            holder.avg.assign(0.8 * holder.avg + 0.2 * x0)
            return tf.matmul(holder.avg, w) + holder.steps

        f.track = holder
        return f

    mode_of = {"f32": g.F32, "fp16": g.FP16, "dynamic": g.DYNAMIC, "int8": g.INT8, "int16x8": g.INT16X8}
    out = []

    def family(name, build, shapes, fallback=None, modes=ZOO_MODES, **kw):
        # `fallback`: an op the 16x8 quantizer refuses; that variant keeps it in float.
        for m in modes:
            mode = mode_of[m]
            note = ""
            if m == "int16x8" and fallback:
                mode = g.INT16X8_FALLBACK
                note = f"16x8 with {fallback} left in float by the converter"
            out.append(g.Fixture(f"zoo_{name}_{m}", build, shapes, mode, keras=True, note=note, **kw))

    img = [[1, 64, 64, 3]]
    family("mobilenet_v3_small", mobilenet_v3(False), img, fallback="HARD_SWISH")
    family("mobilenet_v3_large", mobilenet_v3(True), img, fallback="HARD_SWISH")
    family("efficientnet_b0", efficientnet_b0, img)
    family("unet", unet, [[1, 32, 32, 3]])
    family("kws_dscnn", kws, [[1, 49, 10, 1]])
    # No 16x8 variant: the converter leaves NEG in float but emits an int16 SQUARED_DIFFERENCE,
    # which the reference interpreter refuses to run.
    family("transformer_block", transformer, [[1, 16, 32]], modes=ZOO_MODES[:4], rep_scales=(2.0,))
    # No 16x8 variants: the converter cannot calibrate the loop's carried tensor, and its 16x8
    # output for the variables model is not a valid file (an operator without inputs).
    for m in ZOO_MODES[:4]:
        out.append(g.Fixture(f"zoo_while_cond_{m}", while_cond, [[1, 32]], mode_of[m]))
        out.append(g.Fixture(f"zoo_stateful_ema_{m}", stateful, [[1, 32]], mode_of[m], resource_variables=True))
    return out
