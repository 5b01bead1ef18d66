"""Readable summaries of .tflite files (op list with options, I/O tensors).

Reads the flatbuffer directly with the schema bindings shipped in
ai-edge-litert, so it does not need TensorFlow and shows exactly what is in
the file (fused activation, padding, keep_num_dims, ...), which the
interpreter's op details do not expose.
"""

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils


def _enum_names(enum_cls) -> dict:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


OP_NAMES = _enum_names(schema.BuiltinOperator)
ACT_NAMES = _enum_names(schema.ActivationFunctionType)
PAD_NAMES = _enum_names(schema.Padding)
TYPE_NAMES = _enum_names(schema.TensorType)

# Option fields worth showing, with short labels. Anything else is omitted to
# keep the manifest readable.
_OPTION_LABELS = {
    "padding": "pad",
    "strideH": "sh",
    "strideW": "sw",
    "dilationHFactor": "dh",
    "dilationWFactor": "dw",
    "filterHeight": "kh",
    "filterWidth": "kw",
    "depthMultiplier": "dm",
    "fusedActivationFunction": "act",
    "keepNumDims": "keep_num_dims",
    "keepDims": "keep_dims",
    "asymmetricQuantizeInputs": "asym_inputs",
    "beta": "beta",
    "newShape": "new_shape",
}


def op_code(model, opcode_index: int) -> int:
    oc = model.operatorCodes[opcode_index]
    # Old files only fill the deprecated byte field; the larger one is right.
    return max(oc.builtinCode, oc.deprecatedBuiltinCode)


def _options(op) -> str:
    opts = op.builtinOptions
    if opts is None:
        return ""
    parts = []
    for field, label in _OPTION_LABELS.items():
        if not hasattr(opts, field):
            continue
        value = getattr(opts, field)
        if field == "fusedActivationFunction":
            value = ACT_NAMES.get(value, value)
        elif field == "padding":
            value = PAD_NAMES.get(value, value)
        elif field == "newShape":
            if value is None:
                continue
            value = list(int(v) for v in value)
        elif isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{label}={value}")
    return " ".join(parts)


def _tensor_brief(model, sg, index: int) -> str:
    if index < 0:
        return "-"
    t = sg.tensors[index]
    shape = "x".join(str(int(d)) for d in t.shape) if t.shape is not None and len(t.shape) else "scalar"
    text = f"{TYPE_NAMES.get(t.type, t.type).lower()}[{shape}]"
    buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
    data = None if buf is None else buf.data
    if data is not None and len(data) > 0:
        text += "c"  # constant
        # Show small int32 constants (axes, shapes): they decide what the op does.
        if t.type == schema.TensorType.INT32 and len(data) <= 16:
            values = np.frombuffer(bytes(bytearray(data)), dtype="<i4").tolist()
            text += "=" + str(values).replace(" ", "")
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) > 0 and data is not None and len(data) > 0:
        text += "/pc" if len(q.scale) > 1 else "/pt"
    return text


def describe(path) -> dict:
    """Ops (name, options, operand summaries) and I/O tensors of subgraph 0."""
    model = flatbuffer_utils.read_model(str(path))
    sg = model.subgraphs[0]
    ops = []
    for op in sg.operators:
        name = OP_NAMES.get(op_code(model, op.opcodeIndex), "UNKNOWN")
        custom = model.operatorCodes[op.opcodeIndex].customCode
        if name == "CUSTOM" and custom is not None:
            # Interpreters name custom ops by their code, e.g. TFLite_Detection_PostProcess.
            name = bytes(custom).decode()
        ops.append(
            {
                "name": name,
                "options": _options(op),
                "inputs": [_tensor_brief(model, sg, int(i)) for i in op.inputs],
                "outputs": [_tensor_brief(model, sg, int(i)) for i in op.outputs],
            }
        )

    def io(index):
        t = sg.tensors[index]
        q = t.quantization
        scale = list(q.scale) if q is not None and q.scale is not None else []
        zp = list(q.zeroPoint) if q is not None and q.zeroPoint is not None else []
        sig = t.shapeSignature
        return {
            "shape": [int(d) for d in t.shape] if t.shape is not None else [],
            "shape_signature": [int(d) for d in sig] if sig is not None else None,
            "dtype": TYPE_NAMES.get(t.type, str(t.type)).lower(),
            "scale": float(scale[0]) if scale else 0.0,
            "zero_point": int(zp[0]) if zp else 0,
        }

    return {
        "ops": ops,
        "inputs": [io(int(i)) for i in sg.inputs],
        "outputs": [io(int(i)) for i in sg.outputs],
    }


def op_line(op: dict) -> str:
    opts = f" {{{op['options']}}}" if op["options"] else ""
    return f"{op['name']}{opts} ({', '.join(op['inputs'])}) -> {', '.join(op['outputs'])}"


if __name__ == "__main__":
    import sys

    for p in sys.argv[1:]:
        d = describe(p)
        print(p)
        for i, op in enumerate(d["ops"]):
            print(f"  {i:3d} {op_line(op)}")
