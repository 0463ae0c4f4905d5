"""The served model: the trained network's ONNX export run by ONNX Runtime (`Predictor`), and
what turns its outputs into intents' confidences and entities (`ServedModel`)."""

import functools
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Text

import numpy as np
import onnxruntime as ort

from rasa_bert_intent.batching import length_batches, pad
from rasa_bert_intent.entities import Label
from rasa_bert_intent.finetune import FinetuneState
from rasa_bert_intent.in_scope import InScopeModel

from rasa_bert_intent.onnx_export import (
    ENTITY_TAG_PROBABILITIES,
    PRECISIONS,
    PROBABILITIES,
    REFERENCE_VECTOR,
    SENTENCE_VECTOR,
    TOKEN_IDS,
)
from rasa_bert_intent.pretrained.tokenization import TextTokenizer
from rasa_bert_intent.responses import LabelGroups

# Messages in one ONNX Runtime call of an fp32 model; more of one length bucket are split into
# batches this big. An int8 model runs one message per call: it quantises each operator's input
# with one scale for the whole batch, so a message's confidences would depend on the messages
# beside it (by up to 0.07 in a test).
FP32_BATCH = 64
# Threads one call uses (docs/speed.md): 2 ran one message 1.3 to 1.5 times faster than 1.
INTRA_OP_THREADS = 2


class Outputs(NamedTuple):
    """What the model gives for some messages, in the order given."""

    # [messages, intents]
    probabilities: np.ndarray
    # For each message [token ids, tags]; None without a tagging head.
    tag_probabilities: List[Optional[np.ndarray]]
    # The fine-tuned network's pooled sentence vectors [messages, hidden].
    vectors: np.ndarray
    # The pretrained encoder's mean-pooled vectors [messages, its hidden]; None if the model
    # has no reference layers.
    reference_vectors: Optional[np.ndarray]


class Predictor:
    """Runs the exported model on messages grouped by length bucket."""

    def __init__(
        self, onnx_model: bytes, max_seq_len: int, precision: str, spinning: bool = False
    ) -> None:
        """Reads the model, exported at `precision` (onnx_export.PRECISIONS), its threads
        `spinning` between calls or not; raises `ValueError` if it is no export of an
        `IntentNetwork`."""
        if not isinstance(max_seq_len, int) or max_seq_len < 3:
            raise ValueError(f"max_seq_len is {max_seq_len!r}, not a whole number of at least 3")
        if precision not in PRECISIONS:
            raise ValueError(f"precision is {precision!r}, not one of {', '.join(PRECISIONS)}")
        self.onnx_model = onnx_model
        self.max_seq_len = max_seq_len
        self.precision = precision
        self._batch_size = FP32_BATCH if precision == "fp32" else 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = INTRA_OP_THREADS
        options.inter_op_num_threads = 1
        # Spinning, the threads wait for more work for a while after each call: faster for
        # back-to-back calls alone (a training's thousands of examples: 1.6 ms a message
        # instead of 2.5), but under `rasa run` they take the CPU from Sanic and the other
        # requests' calls (docs/speed.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
        options.log_severity_level = 3  # errors only: its warnings are about its own fusions
        try:
            self._session = ort.InferenceSession(
                onnx_model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ONNX Runtime's errors derive from Exception only
            raise ValueError(f"ONNX Runtime cannot load it: {error}") from error
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        known = {PROBABILITIES, SENTENCE_VECTOR, ENTITY_TAG_PROBABILITIES, REFERENCE_VECTOR}
        if (
            set(inputs) != {TOKEN_IDS}
            or inputs[TOKEN_IDS].type != "tensor(int32)"
            or not {PROBABILITIES, SENTENCE_VECTOR} <= set(outputs)
            or not set(outputs) <= known
            or not all(isinstance(output.shape[-1], int) for output in outputs.values())
        ):
            raise ValueError("the model's inputs and outputs are not those of an intent model")
        self._output_names = sorted(outputs)
        self.num_intents = outputs[PROBABILITIES].shape[-1]
        self.num_entity_tags = (
            outputs[ENTITY_TAG_PROBABILITIES].shape[-1]
            if ENTITY_TAG_PROBABILITIES in outputs
            else 0
        )
        self.hidden_size = outputs[SENTENCE_VECTOR].shape[-1]
        # The pretrained encoder's vector size; 0 without reference layers.
        self.reference_size = (
            outputs[REFERENCE_VECTOR].shape[-1] if REFERENCE_VECTOR in outputs else 0
        )

    def predict(self, token_id_lists: Sequence[Sequence[int]]) -> Outputs:
        """The model's outputs for messages of these token ids. Safe to call from several
        threads."""
        probabilities = np.zeros((len(token_id_lists), self.num_intents), dtype=np.float32)
        vectors = np.zeros((len(token_id_lists), self.hidden_size), dtype=np.float32)
        references = np.zeros((len(token_id_lists), self.reference_size), dtype=np.float32)
        tag_probabilities: List[Optional[np.ndarray]] = [None] * len(token_id_lists)
        for length, rows in length_batches(token_id_lists, self._batch_size, self.max_seq_len):
            batch = pad([token_id_lists[row] for row in rows], length)
            outputs = dict(
                zip(self._output_names, self._session.run(self._output_names, {TOKEN_IDS: batch}))
            )
            probabilities[rows] = outputs[PROBABILITIES]
            vectors[rows] = outputs[SENTENCE_VECTOR]
            if self.reference_size:
                references[rows] = outputs[REFERENCE_VECTOR]
            if self.num_entity_tags:
                for tags, row in zip(outputs[ENTITY_TAG_PROBABILITIES], rows):
                    tag_probabilities[row] = tags[: len(token_id_lists[row])]
        return Outputs(
            probabilities, tag_probabilities, vectors, references if self.reference_size else None
        )


@dataclass
class ServedModel:
    """What prediction needs, all of it in the files (storage.py)."""

    # The network's labels: the intents, and each retrieval intent's response keys (responses.py).
    intents: List[Text]
    entity_labels: List[Label]
    # The CRF's tag transition scores, None without one (see entities.best_tags).
    entity_transitions: Optional[np.ndarray]
    tokenizer: TextTokenizer
    predictor: Predictor
    # What scales the confidences of out-of-scope messages down; None leaves them be.
    in_scope: Optional[InScopeModel]
    # What a fine-tune continues from; None once loaded for serving.
    finetune_state: Optional[FinetuneState] = None
    # The domain's responses of each response key.
    responses: Dict[Text, List[Dict[Text, Any]]] = field(default_factory=dict)

    @functools.cached_property
    def label_groups(self) -> LabelGroups:
        """The labels grouped into the intents Rasa sees."""
        return LabelGroups(self.intents)

    def confidences(self, outputs: Outputs, lengths: Sequence[int]) -> np.ndarray:
        """The intent confidences `[messages, intents]` of the predictor's outputs for messages
        of `lengths` word pieces: the probabilities, weighted by the nearest training examples
        in the pretrained space, times each message's in-scope factor."""
        if self.in_scope is None:
            return outputs.probabilities
        return self.in_scope.confidences(
            outputs.probabilities, outputs.vectors, outputs.reference_vectors, lengths
        )
