"""Rasa's own checks of a training, told about this component (rasa 3.6.21, pinned in
pyproject.toml: a Rasa upgrade must check both).

- Its recipe validator warns that "your NLU configuration does not include an entity extractor
  trained on your training data" whenever the data has entities and the pipeline lacks one of
  its list of trainable extractors (DIET, CRFEntityExtractor, Mitie): the component is added to
  that list, which also lets Rasa warn of competing extractors beside it.
- Its `FinetuningValidator` refuses any fine-tune whose NLU data has labels the previous model
  lacked, because DIET cannot grow its heads. It runs before any component, so the component
  cannot answer for itself; its one comparison of the NLU labels is wrapped to accept changed
  labels when every other component trained in the graph is a tokenizer, a featurizer, the
  synonym mapper or a policy (finetune.continue_from grows the heads). With any other learner of
  labels (DIET, ResponseSelector, CRFEntityExtractor) Rasa's rule stands, and so does its check
  of the domain for `rasa train --finetune` with dialogue: there a new intent changes the
  domain, which the policies would have to grow for.
"""
from typing import Any, Text

from rasa.core.policies.policy import Policy
from rasa.engine.graph import GraphSchema
from rasa.graph_components.validators import default_recipe_validator, finetuning_validator
from rasa.nlu.extractors.entity_synonyms import EntitySynonymMapper
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer

_LABEL_FREE = (Tokenizer, Featurizer, EntitySynonymMapper, Policy)


def register_as_entity_extractor(component: type) -> None:
    """Adds the component to the recipe validator's trainable entity extractors, once."""
    if component not in default_recipe_validator.TRAINABLE_EXTRACTORS:
        default_recipe_validator.TRAINABLE_EXTRACTORS.append(component)


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
