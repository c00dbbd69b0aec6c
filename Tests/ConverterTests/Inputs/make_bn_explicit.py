"""Makes bn-explicit/encoder.onnx: the tiny-release fixture encoder with each depthwise conv's
BatchNorm *un*-folded into an explicit BatchNormalization node (as an export without the
exporter's Conv+BN fusion would look). Converting it must give the fixture's folded weights back
within float tolerance (bn-explicit/expected.json holds them). All tensor data is inline, so the
file does not depend on the fixture's external-data files; the test borrows only the heads.

    /work/venv-ref/bin/python Tests/ConverterTests/Inputs/make_bn_explicit.py
"""
import json
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..", "Fixtures", "models", "tiny-release", "assets", "encoder.onnx")
EPS = 1e-3


def main():
    m = onnx.load(SRC, load_external_data=True)
    for t in m.graph.initializer:
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]
    for n in m.graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                a.t.data_location = onnx.TensorProto.DEFAULT
                del a.t.external_data[:]
    expected = {}
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    rng = np.random.default_rng(7)
    new_nodes = []
    for node in g.node:
        new_nodes.append(node)
        if node.op_type != "Conv" or not node.name.endswith("/depthwise_conv/Conv"):
            continue
        w_name, b_name = node.input[1], node.input[2]
        w = numpy_helper.to_array(inits[w_name]).astype(np.float64)
        b = numpy_helper.to_array(inits[b_name]).astype(np.float64)
        c = w.shape[0]
        layer = node.name.split("/")[1]
        expected[f"encoder.{layer}.conv.depthwise_conv.weight"] = w.astype(np.float32).flatten().tolist()
        expected[f"encoder.{layer}.conv.depthwise_conv.bias"] = b.astype(np.float32).flatten().tolist()
        gamma = rng.uniform(0.5, 1.5, c)
        beta = 0.1 * rng.standard_normal(c)
        mean = 0.3 * rng.standard_normal(c)
        var = rng.uniform(0.5, 2.0, c)
        f = gamma / np.sqrt(var + EPS)
        w0 = (w / f[:, None, None]).astype(np.float32)
        b0 = ((b - beta) / f + mean).astype(np.float32)
        inits[w_name].CopyFrom(numpy_helper.from_array(w0, w_name))
        inits[b_name].CopyFrom(numpy_helper.from_array(b0, b_name))
        scope = node.name[: -len("depthwise_conv/Conv")] + "batch_norm/"
        pname = scope.strip("/").replace("/", ".")
        params = []
        for suffix, v in (("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", var)):
            t = numpy_helper.from_array(v.astype(np.float32), f"{pname}.{suffix}")
            g.initializer.append(t)
            params.append(t.name)
        conv_out = node.output[0]
        node.output[0] = conv_out + "_pre_bn"
        new_nodes.append(helper.make_node("BatchNormalization", [node.output[0]] + params, [conv_out],
                                          name=scope + "BatchNormalization", epsilon=EPS))
    del g.node[:]
    g.node.extend(new_nodes)
    out = os.path.join(HERE, "bn-explicit")
    os.makedirs(out, exist_ok=True)
    onnx.save(m, os.path.join(out, "encoder.onnx"))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
