"""Intent and entity tag probabilities and sentence vectors from a trained network's
TensorFlow Lite export."""

import threading
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rasa_bert_intent.model import (
    ENTITY_TAG_PROBABILITIES,
    PROBABILITIES,
    SENTENCE_VECTOR,
    TOKEN_IDS,
)
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
        try:
            signature = self._interpreter.get_signature_runner()
            inputs = signature.get_input_details()
            outputs = signature.get_output_details()
        except ValueError:  # no signature, or several
            inputs, outputs = {}, {}
        if (
            set(inputs) != {TOKEN_IDS}
            or not {PROBABILITIES, SENTENCE_VECTOR} <= set(outputs)
            or not set(outputs) <= {PROBABILITIES, SENTENCE_VECTOR, ENTITY_TAG_PROBABILITIES}
        ):
            raise ValueError("the model's inputs and outputs are not those of an intent model")
        self._input = inputs[TOKEN_IDS]["index"]
        self._output_indices = {name: output["index"] for name, output in outputs.items()}
        # Intent probabilities are [1, intents], entity tag probabilities [1, length, tags].
        self.num_intents = int(outputs[PROBABILITIES]["shape"][-1])
        self.num_entity_tags = (
            int(outputs[ENTITY_TAG_PROBABILITIES]["shape"][-1])
            if ENTITY_TAG_PROBABILITIES in outputs
            else 0
        )
        self.hidden_size = int(outputs[SENTENCE_VECTOR]["shape"][-1])
        self._length = 0  # the padded length the interpreter is currently sized for
        # An interpreter must not run two calls at once; `rasa run` may call from several threads.
        self._lock = threading.Lock()

    def predict(
        self, token_id_lists: Sequence[Sequence[int]]
    ) -> Tuple[np.ndarray, List[Optional[np.ndarray]], np.ndarray]:
        """Intent probabilities `[messages, intents]`, for each message its entity tag
        probabilities `[token ids, tags]` (None without a tagging head), and the sentence
        vectors `[messages, hidden]`, in the order given."""
        probabilities = np.zeros((len(token_id_lists), self.num_intents), dtype=np.float32)
        vectors = np.zeros((len(token_id_lists), self.hidden_size), dtype=np.float32)
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
                output = self._interpreter.get_tensor
                probabilities[row] = output(self._output_indices[PROBABILITIES])[0]
                vectors[row] = output(self._output_indices[SENTENCE_VECTOR])[0]
                if self.num_entity_tags:
                    tags = output(self._output_indices[ENTITY_TAG_PROBABILITIES])[0]
                    tag_probabilities[row] = tags[: len(token_ids)].copy()
        return probabilities, tag_probabilities, vectors
