"""Lets `rasa train nlu --finetune` add intents and entity types when this component is the
only one in the pipeline that learns them: its heads grow (finetune.continue_from).

Rasa's `FinetuningValidator` refuses any fine-tune whose NLU data has labels the previous
model lacked, because DIET cannot grow its heads. It runs before any component, so the
component cannot answer for itself; this module wraps the validator's one comparison of the
NLU labels (rasa 3.6.21, pinned in pyproject.toml) and accepts changed labels when every other
component trained in the graph is a tokenizer, a featurizer, the synonym mapper or a policy.
With any other learner of labels (DIET, ResponseSelector, CRFEntityExtractor) Rasa's rule
stands, and so does its check of the domain for `rasa train --finetune` with dialogue: there a
new intent changes the domain, which the policies would have to grow for.
"""

from typing import Any, Text

from rasa.core.policies.policy import Policy
from rasa.engine.graph import GraphSchema
from rasa.graph_components.validators import finetuning_validator
from rasa.nlu.extractors.entity_synonyms import EntitySynonymMapper
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer

_LABEL_FREE = (Tokenizer, Featurizer, EntitySynonymMapper, Policy)


def only_growing_learners(schema: GraphSchema, component: type) -> bool:
    """Whether every node the schema trains is `component` or learns no NLU labels."""
    return all(
        issubclass(node.uses, (component, *_LABEL_FREE))
        for node in schema.nodes.values()
        if node.fn == "train"
    )


def allow_new_labels_for(component: type) -> None:
    """Wraps the validator's comparison once (further calls do nothing)."""
    validator = finetuning_validator.FinetuningValidator
    compare = validator._compare_or_memorize
    if getattr(compare, "allows_new_labels_for", None) is component:
        return

    def compare_or_memorize(
        self: Any, fingerprint_key: Text, new_fingerprint: Text, error_message: Text
    ) -> None:
        if (
            self._is_finetuning
            and fingerprint_key == finetuning_validator.FINGERPRINT_NLU
            and only_growing_learners(self._execution_context.graph_schema, component)
        ):
            self._fingerprints[fingerprint_key] = new_fingerprint
            return
        compare(self, fingerprint_key, new_fingerprint, error_message)

    compare_or_memorize.allows_new_labels_for = component  # type: ignore[attr-defined]
    validator._compare_or_memorize = compare_or_memorize
