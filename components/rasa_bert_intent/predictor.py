"""Intent probabilities from the TensorFlow Lite export of a trained `IntentNetwork`."""

import threading
from typing import Sequence

import numpy as np
import tensorflow as tf

from rasa_bert_intent.model import TOKEN_IDS
from rasa_bert_intent.tokenization import bucket_length, pad


class IntentPredictor:
    """Runs the exported model on one message at a time, padded to its length bucket."""

    def __init__(self, tflite_model: bytes, max_seq_len: int) -> None:
        """Reads the model; raises `ValueError` if it is no export of an `IntentNetwork`."""
        if not isinstance(max_seq_len, int) or max_seq_len < 3:
            raise ValueError(f"max_seq_len is {max_seq_len!r}, not a whole number of at least 3")
        self.tflite_model = tflite_model
        self.max_seq_len = max_seq_len
        self._interpreter = tf.lite.Interpreter(model_content=tflite_model)
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or TOKEN_IDS not in inputs[0]["name"] or len(outputs) != 1:
            raise ValueError("the model's inputs and outputs are not those of an intent model")
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]
        self.num_intents = int(outputs[0]["shape"][-1])
        self._length = 0  # the padded length the interpreter is currently sized for
        # An interpreter must not run two calls at once; `rasa run` may call from several threads.
        self._lock = threading.Lock()

    def predict(self, token_id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """Intent probabilities, `[len(token_id_lists), num_intents]`, in the order given."""
        probabilities = np.zeros((len(token_id_lists), self.num_intents), dtype=np.float32)
        with self._lock:
            for row, token_ids in enumerate(token_id_lists):
                length = bucket_length(len(token_ids), self.max_seq_len)
                if length != self._length:
                    self._interpreter.resize_tensor_input(self._input, [1, length])
                    self._interpreter.allocate_tensors()
                    self._length = length
                self._interpreter.set_tensor(self._input, pad([token_ids], length))
                self._interpreter.invoke()
                probabilities[row] = self._interpreter.get_tensor(self._output)[0]
        return probabilities
