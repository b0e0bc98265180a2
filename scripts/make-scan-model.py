"""Writes the ONNX graph the embedded index scans with: scores[n, 1] = vectors[n, d] @ query[d, 1].

Its base64 is embedded in shared/adapters/local-vector-index.ts (SCAN_MODEL); run this to check or
regenerate it: `.venv/bin/python scripts/make-scan-model.py`.
"""

import base64

import onnx
from onnx import TensorProto, helper

graph = helper.make_graph(
    [helper.make_node("MatMul", ["vectors", "query"], ["scores"])],
    "dot_scan",
    [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["n", "d"]), helper.make_tensor_value_info("query", TensorProto.FLOAT, ["d", "q"])],
    [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", "q"])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="pipeline")
model.ir_version = 8
onnx.checker.check_model(model)
print(base64.b64encode(model.SerializeToString()).decode())
