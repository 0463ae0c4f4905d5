"""Intent and entity tag probabilities from the TensorFlow Lite export of a trained network."""

import threading
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rasa_bert_intent.model import TOKEN_IDS
from rasa_bert_intent.tokenization import bucket_length, pad


class Predictor:
    """Runs the exported model on one message at a time, padded to its length bucket."""

    def __init__(self, tflite_model: bytes, max_seq_len: int) -> None:
        """Reads the model; raises `ValueError` if it is no export of an `IntentNetwork`."""
        if not isinstance(max_seq_len, int) or max_seq_len < 3:
            raise ValueError(f"max_seq_len is {max_seq_len!r}, not a whole number of at least 3")
        self.tflite_model = tflite_model
        self.max_seq_len = max_seq_len
        self._interpreter = tf.lite.Interpreter(model_content=tflite_model)
        inputs = self._interpreter.get_input_details()
        # Intent probabilities are [1, intents], entity tag probabilities [1, length, tags].
        output_details = self._interpreter.get_output_details()
        outputs = {len(output["shape"]): output for output in output_details}
        if (
            len(inputs) != 1
            or TOKEN_IDS not in inputs[0]["name"]
            or 2 not in outputs
            or not set(outputs) <= {2, 3}
            or len(outputs) != len(output_details)
        ):
            raise ValueError("the model's inputs and outputs are not those of an intent model")
        self._input = inputs[0]["index"]
        self._intent_output = outputs[2]["index"]
        self.num_intents = int(outputs[2]["shape"][-1])
        self._tag_output = outputs[3]["index"] if 3 in outputs else None
        self.num_entity_tags = int(outputs[3]["shape"][-1]) if 3 in outputs else 0
        self._length = 0  # the padded length the interpreter is currently sized for
        # An interpreter must not run two calls at once; `rasa run` may call from several threads.
        self._lock = threading.Lock()

    def predict(
        self, token_id_lists: Sequence[Sequence[int]]
    ) -> Tuple[np.ndarray, List[Optional[np.ndarray]]]:
        """Intent probabilities `[messages, intents]` and, for each message, its entity tag
        probabilities `[token ids, tags]` (None without a tagging head), in the order given."""
        probabilities = np.zeros((len(token_id_lists), self.num_intents), dtype=np.float32)
        tag_probabilities: List[Optional[np.ndarray]] = [None] * len(token_id_lists)
        with self._lock:
            for row, token_ids in enumerate(token_id_lists):
                length = bucket_length(len(token_ids), self.max_seq_len)
                if length != self._length:
                    self._interpreter.resize_tensor_input(self._input, [1, length])
                    self._interpreter.allocate_tensors()
                    self._length = length
                self._interpreter.set_tensor(self._input, pad([token_ids], length))
                self._interpreter.invoke()
                probabilities[row] = self._interpreter.get_tensor(self._intent_output)[0]
                if self._tag_output is not None:
                    tags = self._interpreter.get_tensor(self._tag_output)[0]
                    tag_probabilities[row] = tags[: len(token_ids)].copy()
        return probabilities, tag_probabilities
