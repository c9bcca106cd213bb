"""Post-training quantisation: float IR graph + calibration data -> the engine's int8 graph.

calibrate.py observes activations and picks clipping ranges (minmax, percentile, mse) and reads
calibration data; ptq.py turns ranges and float weights into TFLite's int8 scheme; qdq.py writes
the result back out as an ONNX QDQ model.
"""

from .calibrate import RANGE_METHODS, calibration_ranges, load_calibration, observe
from .ptq import activation_qparams, quantize_graph, quantize_model, round_half_away
from .qdq import QdqAgreement, compare_with_onnxruntime, export_qdq, qdq_model

__all__ = ["RANGE_METHODS", "QdqAgreement", "activation_qparams", "calibration_ranges",
           "compare_with_onnxruntime", "export_qdq", "load_calibration", "observe", "qdq_model",
           "quantize_graph", "quantize_model", "round_half_away"]
