"""Intent probabilities from the TensorFlow Lite export of a trained `IntentNetwork`."""

import re
import threading
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from rasa_bert_intent.model import PROBABILITIES, TOKEN_IDS, signature_name
from rasa_bert_intent.tokenization import length_batches, pad

_SIGNATURE = re.compile(r"length_(\d+)")


class IntentPredictor:
    """Runs the exported model, one signature per length bucket, one call at a time."""

    def __init__(self, tflite_model: bytes, num_threads: Optional[int] = None) -> None:
        """Reads the model; raises `ValueError` if it is no export of an `IntentNetwork`."""
        self.tflite_model = tflite_model
        self._interpreter = tf.lite.Interpreter(model_content=tflite_model, num_threads=num_threads)
        lengths = []
        for name, signature in self._interpreter.get_signature_list().items():
            match = _SIGNATURE.fullmatch(name)
            if (
                not match
                or signature["inputs"] != [TOKEN_IDS]
                or signature["outputs"] != [PROBABILITIES]
            ):
                raise ValueError(f"the model has an unexpected signature '{name}': {signature}")
            lengths.append(int(match.group(1)))
        if not lengths:
            raise ValueError("the model has no signatures")
        self.lengths = sorted(lengths)
        self.max_seq_len = self.lengths[-1]
        self._runners: Dict[int, "tf.lite.SignatureRunner"] = {}
        # An interpreter must not run two calls at once; `rasa run` may call from several threads.
        self._lock = threading.Lock()
        self.num_intents = int(
            self._runner(self.lengths[0]).get_output_details()[PROBABILITIES]["shape"][-1]
        )

    def _runner(self, length: int) -> "tf.lite.SignatureRunner":
        if length not in self._runners:
            self._runners[length] = self._interpreter.get_signature_runner(signature_name(length))
        return self._runners[length]

    def predict(self, token_id_lists: Sequence[Sequence[int]], batch_size: int) -> np.ndarray:
        """Intent probabilities, `[len(token_id_lists), num_intents]`, in the order given."""
        probabilities = np.zeros((len(token_id_lists), self.num_intents), dtype=np.float32)
        with self._lock:
            for length, rows in length_batches(token_id_lists, batch_size, self.max_seq_len):
                batch = pad([token_id_lists[row] for row in rows], length)
                probabilities[rows] = self._runner(length)(**{TOKEN_IDS: batch})[PROBABILITIES]
        return probabilities
