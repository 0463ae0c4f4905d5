"""From the trained network to what serves it: its ONNX export, loaded by ONNX Runtime, and the
out-of-scope statistics of the training examples. No Rasa objects."""

import logging
import time
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np

from rasa_bert_intent import in_scope_fit
from rasa_bert_intent.in_scope import InScopeModel
from rasa_bert_intent.network import IntentNetwork
from rasa_bert_intent.predictor import Predictor
from rasa_bert_intent.settings import COMPONENT, Settings

logger = logging.getLogger(__name__)


def predictors(
    network: IntentNetwork,
    reference: Optional[Mapping[str, Any]],
    settings: Settings,
    alone: bool,
) -> Tuple[Predictor, Optional[Predictor]]:
    """The network exported and loaded by ONNX Runtime; with `reference` (the encoder's weights
    as pretrained, training.pretrained_weights), beside that encoder, which the out-of-scope
    factor also reads; and with `alone`, the network alone too."""
    started = time.perf_counter()
    # Spinning: the out-of-scope fit runs the training examples through them back to back.
    predictor = Predictor(
        network.to_onnx(settings.precision, reference), settings.max_seq_len,
        settings.precision, spinning=True,
    )
    logger.info(
        f"{COMPONENT}: exported the network to ONNX ({settings.precision}) and loaded it in "
        f"{time.perf_counter() - started:.1f} s."
    )
    if not alone:
        return predictor, None
    alone_model = network.to_onnx(settings.precision)
    return predictor, Predictor(
        alone_model, settings.max_seq_len, settings.precision, spinning=True
    )


def in_scope(
    predictor: Predictor,
    token_id_lists: List[List[int]],
    intent_labels: List[int],
    epochs: float,
    settings: Settings,
    known: Mapping[int, np.ndarray],
    network_alone: Optional[Predictor],
) -> Optional[InScopeModel]:
    """The out-of-scope statistics (in_scope_fit.fit_to_examples); None, said in the log, where
    the examples leave no edge to measure."""
    in_scope = in_scope_fit.fit_to_examples(
        predictor, token_id_lists, intent_labels, epochs, settings.random_seed, known,
        network_alone,
    )
    if in_scope is None:
        logger.warning(
            f"{COMPONENT}: the training examples are too few or too alike to measure how "
            f"far a message lies from them, so the confidences are the plain intent "
            f"probabilities (as with `out_of_scope_detection: false`)."
        )
    return in_scope
