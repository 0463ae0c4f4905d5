"""Rasa's own checks of a training, told about this component, and what the graph's other
components answer (rasa 3.6.21, pinned in pyproject.toml: a Rasa upgrade must check these).

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
- A ResponseSelector kept in the pipeline answers its retrieval intents as before: the component
  leaves them to it (`selector_intents`). Without one, the recipe validator's warning that
  response examples go unused ("add a 'ResponseSelector'") is not given: the component uses them.
"""
from typing import Any, Optional, Set, Text

from rasa.core.policies.policy import Policy
from rasa.engine.graph import GraphSchema
from rasa.graph_components.validators import default_recipe_validator, finetuning_validator
from rasa.nlu.extractors.entity_synonyms import EntitySynonymMapper
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.nlu.tokenizers.tokenizer import Tokenizer

_LABEL_FREE = (Tokenizer, Featurizer, EntitySynonymMapper, Policy)


def register_as_entity_extractor(component: type) -> None:
    """Adds the component to the recipe validator's trainable entity extractors, once."""
    if component not in default_recipe_validator.TRAINABLE_EXTRACTORS:
        default_recipe_validator.TRAINABLE_EXTRACTORS.append(component)


def register_as_response_selector(component: type) -> None:
    """Wraps the recipe validator's check of unused training data once, so that a graph with
    the component counts as one with a ResponseSelector."""
    validator = default_recipe_validator.DefaultV1RecipeValidator
    warn = validator._warn_if_some_training_data_is_unused
    if getattr(warn, "selects_responses_for", None) is component:
        return

    def warn_if_some_training_data_is_unused(self: Any, training_data: Any) -> None:
        types = self._component_types
        if component in types:
            self._component_types = types | {ResponseSelector}
        try:
            warn(self, training_data)
        finally:
            self._component_types = types

    warn_if_some_training_data_is_unused.selects_responses_for = component  # type: ignore
    validator._warn_if_some_training_data_is_unused = warn_if_some_training_data_is_unused


def selector_intents(schema: GraphSchema) -> Optional[Set[Text]]:
    """The retrieval intents that the schema's ResponseSelectors answer; None for all of them
    (a selector whose `retrieval_intent` is not set)."""
    answered: Set[Text] = set()
    for node in schema.nodes.values():
        if issubclass(node.uses, ResponseSelector):
            retrieval_intent = node.config.get("retrieval_intent")
            if retrieval_intent is None:
                return None
            answered.add(retrieval_intent)
    return answered


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
