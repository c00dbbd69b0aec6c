"""Makes the small ONNX files the protobuf-reader tests read (run once; outputs are committed).

    /work/venv-ref/bin/python Tests/ConverterTests/Inputs/make_inputs.py

storage.onnx exercises every way ONNX stores tensor data: raw_data, float_data, int32_data
(float16 bits), double_data, int64_data, external data (weights.bin, with and without
offset/length), a Constant node's tensor attribute, attributes of each scalar/list type, and a
graph input with a symbolic dim. storage.json records the expected values.
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    raw_f32 = np.array([[1.5, -2.0, 3.25], [0.0, 1e-30, -7.0]], dtype=np.float32)
    t_raw = numpy_helper.from_array(raw_f32, "raw_f32")
    t_typed = helper.make_tensor("typed_f32", TensorProto.FLOAT, [3], [0.5, -0.25, 8.0], raw=False)
    f16 = np.array([1.0, -2.0, 65504.0, 6e-08], dtype=np.float16)
    t_f16_raw = numpy_helper.from_array(f16, "f16_raw")
    t_f16_typed = helper.make_tensor("f16_typed", TensorProto.FLOAT16, [2],
                                     [0.5, -3.0], raw=False)  # helper stores float16 bits in int32_data
    t_f64 = helper.make_tensor("f64", TensorProto.DOUBLE, [2], [0.1, -1e10], raw=False)
    t_i64 = helper.make_tensor("i64", TensorProto.INT64, [3], [1, -2, 1 << 40], raw=False)
    t_i64_raw = numpy_helper.from_array(np.array([5, -6], dtype=np.int64), "i64_raw")
    ext_a = np.arange(4, dtype=np.float32).reshape(2, 2) * 0.5
    ext_b = np.array([9.0, 8.0, 7.0], dtype=np.float32)
    with open(os.path.join(HERE, "weights.bin"), "wb") as f:
        f.write(ext_a.tobytes())
        f.write(ext_b.tobytes())

    def external(name, dims, entries):
        t = TensorProto()
        t.name = name
        t.data_type = TensorProto.FLOAT
        t.dims.extend(dims)
        t.data_location = TensorProto.EXTERNAL
        for k, v in entries:
            e = t.external_data.add()
            e.key, e.value = k, v
        return t

    t_ext_a = external("ext_a", [2, 2], [("location", "weights.bin"), ("offset", "0"), ("length", "16")])
    t_ext_b = external("ext_b", [3], [("location", "weights.bin"), ("offset", "16")])
    const_value = np.array([[3.0, 4.0], [5.0, 6.0]], dtype=np.float32)
    const = helper.make_node("Constant", [], ["c_out"], name="Constant_7",
                             value=numpy_helper.from_array(const_value, "Constant_7_attr__value"))
    attrs = helper.make_node("Add", ["x", "raw_f32"], ["y"], name="/layers.0/attrs/Add",
                             alpha=0.75, count=-3, label="héllo", ints=[1, -2, 3],
                             floats=[0.5, 1.5], strings=["a", "bc"])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([const, attrs], "storage", [x], [y],
                              initializer=[t_raw, t_typed, t_f16_raw, t_f16_typed, t_f64, t_i64,
                                           t_i64_raw, t_ext_a, t_ext_b])
    model = helper.make_model(graph, producer_name="vani-tests", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, os.path.join(HERE, "storage.onnx"))
    expected = {
        "raw_f32": raw_f32.flatten().tolist(), "typed_f32": [0.5, -0.25, 8.0],
        "f16_raw": f16.astype(np.float32).tolist(), "f16_typed": [0.5, -3.0],
        "f64": np.array([0.1, -1e10], dtype=np.float32).tolist(),
        "ext_a": ext_a.flatten().tolist(), "ext_b": ext_b.tolist(),
        "Constant_7_attr__value": const_value.flatten().tolist(),
    }
    with open(os.path.join(HERE, "storage.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
