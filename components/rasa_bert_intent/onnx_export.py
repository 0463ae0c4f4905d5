"""A traced TensorFlow function as an ONNX model for ONNX Runtime, fp32 or with int8 weights."""

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Iterator, Optional

import onnx
import tensorflow as tf

from rasa_bert_intent import onnx_graph
from rasa_bert_intent.quiet import environment_variable

# int8: dynamically quantised weights (quarter-size file, about twice as fast on a CPU);
# fp32: the network's own weights.
PRECISIONS = ("int8", "fp32")
# The first opset with LayerNormalization, which onnx_graph.simplify writes.
OPSET = 17


def convert(
    function: tf.types.experimental.GenericFunction,
    precision: str,
    num_heads: int,
    hidden_size: int,
) -> bytes:
    """The serialised ONNX model of a `tf.function` with an input signature.

    After tf2onnx, `onnx_graph.simplify` merges bert-for-tf2's operators into ones ONNX
    Runtime's transformer optimizer then fuses further (skip connection with layer
    normalisation, GELU); int8 quantises the weights of every MatMul and Gather (the word
    embeddings) and quantises their inputs at run time.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision is {precision!r}, not one of {', '.join(PRECISIONS)}")
    # Imported here: training needs them, prediction does not, and tf2onnx takes seconds.
    import tf2onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    # tf2onnx deep-copies the whole graph, 77 MB of weights, before each of its 15 optimizers
    # so that it can go on without one that fails: 20 of the 45 s an export took. With
    # TF2ONNX_CATCH_ERRORS false it does not copy, and raises an optimizer's error instead.
    with _quiet("tf2onnx"), environment_variable("TF2ONNX_CATCH_ERRORS", "FALSE"):
        model, _ = tf2onnx.convert.from_function(
            function, input_signature=function.input_signature, opset=OPSET
        )
    onnx_graph.simplify(model)
    # "bert_tf": the fusions' patterns for graphs from TensorFlow (its default, "bert", expects
    # PyTorch's and says so in a warning; both fuse the same on this graph).
    with _quiet("onnxruntime.transformers"):
        optimized = optimize_model(
            model, "bert_tf", num_heads=num_heads, hidden_size=hidden_size, opt_level=0
        )
    with tempfile.TemporaryDirectory() as folder:
        # Saving adds the import of ONNX Runtime's operator domain that the fusions used.
        fp32 = Path(folder) / "fp32.onnx"
        optimized.save_model_to_file(str(fp32))
        if precision == "fp32":
            return fp32.read_bytes()
        quantized = Path(folder) / "int8.onnx"
        # The quantizer warns through the root logger about each fused operator's tensors.
        with _quiet(None, logging.ERROR):
            quantize_dynamic(
                fp32,
                quantized,
                weight_type=QuantType.QInt8,
                # The fused operators are in ONNX Runtime's own domain, which ONNX's shape
                # inference does not know: their outputs are float32.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        return quantized.read_bytes()


@contextlib.contextmanager
def _quiet(logger_name: Optional[str], level: int = logging.WARNING) -> Iterator[None]:
    """Only records of `level` and above from a logger (None: the root logger)."""
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(max(before, level))
    try:
        yield
    finally:
        logger.setLevel(before)
