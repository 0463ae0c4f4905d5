"""Forward-pass time of one network exported three ways, in one process, rounds interleaved.

    .venv/bin/python benchmark/forward_pass.py

Builds an `IntentNetwork` as the component does by default (all-MiniLM-L6-v2 cut to 4
layers, SNIPS' 7 intents and 79 entity tags; the weights past the encoder are untrained, which
does not change the time) and times one message of 16 and of 32 word pieces through:
- TensorFlow Lite, any length, float16 weights: what the component served until ONNX Runtime
  (its conversion and runner are kept here, as the baseline, and nowhere else);
- ONNX Runtime fp32 and int8, as `Predictor` runs them, with and without the intra-op threads
  spinning between calls, and with 1 thread; and with the pretrained encoder's 6 layers beside
  the network (`+ pretrained`), as the component serves it with out-of-scope detection;
- any ONNX files of the same network given with `--compare NAME=FILE` (an earlier export's);
then the 700 SNIPS test queries (../shared/snips-nlu-benchmark) through each, one message per
call, and through fp32 in one call (batches per length bucket). Prints the medians and the
ratio to TensorFlow Lite; file sizes and the export's seconds too.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402

from rasa_bert_intent.pretrained import encoder as encoders  # noqa: E402
from rasa_bert_intent import predictor as predictors  # noqa: E402
from rasa_bert_intent import training  # noqa: E402
from rasa_bert_intent.cli import DEFAULT_SOURCE  # noqa: E402
from rasa_bert_intent.network import IntentNetwork  # noqa: E402
from rasa_bert_intent.onnx_export import (  # noqa: E402
    ENTITY_TAG_PROBABILITIES,
    PROBABILITIES,
    SENTENCE_VECTOR,
    TOKEN_IDS,
)
from rasa_bert_intent.snips import read_source  # noqa: E402
from rasa_bert_intent.batching import bucket_length, pad  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
MAX_SEQ_LEN = 64


def tflite_model(network: IntentNetwork) -> bytes:
    """The component's export until ONNX Runtime: any length, float16 weights."""

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32, name=TOKEN_IDS)])
    def probabilities(token_ids):
        logits, tag_logits, pooled = network.intent_and_entity_tag_logits(token_ids, False)
        return {
            PROBABILITIES: tf.nn.softmax(logits),
            SENTENCE_VECTOR: pooled,
            ENTITY_TAG_PROBABILITIES: tf.nn.softmax(tag_logits),
        }

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [probabilities.get_concrete_function()], network
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def tflite_runner(content: bytes):
    """One message per call, as the component ran it: its signature runner resized per bucket."""
    interpreter = tf.lite.Interpreter(model_content=content)
    runner = interpreter.get_signature_runner()
    index = runner.get_input_details()[TOKEN_IDS]["index"]
    outputs = [output["index"] for output in runner.get_output_details().values()]
    del runner  # it holds the interpreter's tensors, which resizing refuses
    sized = {"length": 0}

    def run(batch: np.ndarray) -> None:
        if batch.shape[1] != sized["length"]:
            interpreter.resize_tensor_input(index, list(batch.shape))
            interpreter.allocate_tensors()
            sized["length"] = batch.shape[1]
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        for output in outputs:
            interpreter.get_tensor(output)

    return run


def onnx_runner(content: bytes, threads: int, spinning: bool):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, {TOKEN_IDS: batch})


def median_ms(runners, batch, rounds: int, calls: int):
    """Each runner's median milliseconds per call, rounds of each interleaved."""
    times = {name: [] for name in runners}
    for run in runners.values():
        for _ in range(calls):
            run(batch)
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(calls):
                started = time.perf_counter()
                run(batch)
                times[name].append(time.perf_counter() - started)
    return {name: 1000 * float(np.median(values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--snips", type=Path, default=REPOSITORY / DEFAULT_SOURCE)
    parser.add_argument(
        "--compare",
        nargs="*",
        default=[],
        metavar="NAME=FILE",
        help="ONNX files of the same network to time beside these, e.g. an earlier export's",
    )
    args = parser.parse_args()
    pretrained = encoders.load_pretrained(encoders.DEFAULT_MODEL)
    config = {**pretrained.config, "num_hidden_layers": 4}
    tf.keras.utils.set_random_seed(0)
    network = IntentNetwork(config, 7, 0.1, "mean", 79)
    network.build_for_any_length()
    pretrained.load_into(network)
    exports = {"TensorFlow Lite float16": tflite_model(network)}
    reference = training.pretrained_weights(pretrained)
    for precision in ("fp32", "int8"):
        started = time.perf_counter()
        exports[f"ONNX {precision}"] = network.to_onnx(precision)
        print(f"export of ONNX {precision}: {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        exports[f"ONNX {precision} + pretrained"] = network.to_onnx(precision, reference)
        print(f"export of ONNX {precision} + pretrained: {time.perf_counter() - started:.2f} s")
    for spec in args.compare:
        name, _, path = spec.partition("=")
        exports[name] = Path(path).read_bytes()
    for name, content in exports.items():
        print(f"{name}: {len(content) / 1e6:.1f} MB")
    runners = {"TensorFlow Lite float16": tflite_runner(exports["TensorFlow Lite float16"])}
    threads = predictors.INTRA_OP_THREADS
    for spec in args.compare:
        name = spec.partition("=")[0]
        runners[f"{name}, {threads} threads"] = onnx_runner(exports[name], threads, False)
    for precision in ("fp32", "int8"):
        content = exports[f"ONNX {precision}"]
        runners[f"ONNX {precision} + pretrained, {threads} threads"] = onnx_runner(
            exports[f"ONNX {precision} + pretrained"], threads, False
        )
        runners[f"ONNX {precision}, {threads} threads"] = onnx_runner(content, threads, False)
        runners[f"ONNX {precision}, {threads} threads spinning"] = onnx_runner(
            content, threads, True
        )
        runners[f"ONNX {precision}, 1 thread"] = onnx_runner(content, 1, False)
    rng = np.random.default_rng(0)
    for length in (16, 32):
        batch = rng.integers(1000, 20000, size=(1, length)).astype(np.int32)
        measured = median_ms(runners, batch, args.rounds, 10)
        baseline = measured["TensorFlow Lite float16"]
        print(f"\none message of {length} word pieces, median of {args.rounds * 10} calls:")
        for name, ms in measured.items():
            print(f"  {name:42s} {ms:6.2f} ms   TensorFlow Lite / this {baseline / ms:4.2f}")

    _train, test = read_source(args.snips)
    tokenizer = pretrained.tokenizer()
    token_id_lists = [tokenizer.token_ids(m.get("text"), MAX_SEQ_LEN) for m in test]
    print(f"\nthe {len(test)} SNIPS test queries, forward passes only:")
    for name in [
        "TensorFlow Lite float16",
        f"ONNX fp32, {threads} threads",
        f"ONNX int8, {threads} threads",
        f"ONNX fp32 + pretrained, {threads} threads",
        f"ONNX int8 + pretrained, {threads} threads",
        *(f"{spec.partition('=')[0]}, {threads} threads" for spec in args.compare),
    ]:
        started = time.perf_counter()
        for token_ids in token_id_lists:
            runners[name](pad([token_ids], bucket_length(len(token_ids), MAX_SEQ_LEN)))
        print(f"  {name}, one message per call: {time.perf_counter() - started:.2f} s")
    for precision in ("fp32", "int8"):
        for name in (f"ONNX {precision}", f"ONNX {precision} + pretrained"):
            predictor = predictors.Predictor(exports[name], MAX_SEQ_LEN, precision)
            started = time.perf_counter()
            predictor.predict(token_id_lists)
            print(f"  Predictor {name}, all in one call: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
