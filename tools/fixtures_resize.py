"""Fixtures of the resize family: RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR with each
combination of align_corners and half_pixel_centers, up- and downscaling, float32, int8 and
uint8 (`_uint8` fixtures are int8 conversions whose tensors were turned into uint8 with the
zero point moved by 128, so that the reference runs its uint8 kernels).
"""

X = [1, 4, 5, 2]

MODES = [("plain", False, False), ("align", True, False), ("halfpixel", False, True)]


def resize(kind, size, align, half):
    def build(rng):
        import tensorflow as tf

        if kind == "bilinear":
            return lambda x: tf.compat.v1.image.resize_bilinear(x, size, align_corners=align, half_pixel_centers=half)
        return lambda x: tf.compat.v1.image.resize_nearest_neighbor(
            x, size, align_corners=align, half_pixel_centers=half
        )

    return build


def fixtures(g):
    from fixtures_layout import patch_to_uint8

    fx = []

    def add(name, build, shapes, mode, **kw):
        fx.append(g.Fixture(name, build, shapes, mode, **kw))

    for kind in ["bilinear", "nearest"]:
        for tag, align, half in MODES:
            # Nearest neighbor copies bytes: its uint8 fixtures cover 1-byte elements.
            dts = [("f32", g.F32)] + ([("int8", g.INT8)] if kind == "bilinear" else [])
            for dt, mode in dts:
                add(f"resize_{kind}_{tag}_up_{dt}", resize(kind, [7, 8], align, half), [X], mode)
                add(f"resize_{kind}_{tag}_down_{dt}", resize(kind, [3, 2], align, half), [X], mode)
            add(
                f"resize_{kind}_{tag}_up_uint8",
                resize(kind, [7, 8], align, half),
                [X],
                g.INT8,
                patch=patch_to_uint8,
                note="int8 model turned uint8",
            )
    # int16 activations (int16x8 quantization): the integer bilinear kernel in 16 bits.
    for kind in ["bilinear", "nearest"]:
        for tag, align, half in MODES:
            add(f"resize_{kind}_{tag}_up_int16", resize(kind, [7, 8], align, half), [X], g.INT16X8)
    return fx
