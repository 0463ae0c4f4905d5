"""BIO tags from Rasa entities, and entities back from predicted tag probabilities."""

import numpy as np

import pytest

from rasa_bert_intent.entities import (
    UNTAGGED,
    best_tags,
    decode,
    joined_words,
    label_of,
    labels_in,
    num_tags,
    piece_tags,
    training_tags,
    word_tags,
)
from rasa_bert_intent.pretrained.encoder import DEFAULT_MODEL, model_folder
from rasa_bert_intent.pretrained.tokenization import WordPieceTokenizer

TEXT = "rain in New York and Oslo"
WORDS = [(0, 4), (5, 7), (8, 11), (12, 16), (17, 20), (21, 25)]
CITY = ("city", None, None)
FROM_CITY = ("city", "departure", "1")
LABELS = [CITY, FROM_CITY]
O, B_CITY, I_CITY, B_FROM, I_FROM = range(5)


def entity(start, end, entity_type="city", **extra):
    return {"entity": entity_type, "start": start, "end": end, **extra}


def one_hot(tags, num=num_tags(LABELS), sure=0.9):
    """Probabilities putting `sure` on each word's tag and the rest evenly on the others."""
    probabilities = np.full((len(tags), num), (1 - sure) / (num - 1))
    probabilities[np.arange(len(tags)), tags] = sure
    return probabilities


def test_labels_combine_type_role_and_group():
    assert label_of(entity(0, 4)) == CITY
    assert label_of(entity(0, 4, role="departure", group="1")) == FROM_CITY
    assert label_of({"entity": "city", "value": "Oslo"}) is None  # no offsets
    assert num_tags(LABELS) == 5
    assert num_tags([]) == 0


def test_adjacent_entities_of_one_type_get_their_own_b_tags():
    entities = [entity(8, 16), entity(21, 25), entity(17, 20, "city")]
    assert word_tags(WORDS, entities, LABELS) == [O, O, B_CITY, I_CITY, B_CITY, B_CITY]


def test_roles_and_groups_get_tags_of_their_own():
    entities = [entity(8, 16, role="departure", group="1"), entity(21, 25)]
    assert word_tags(WORDS, entities, LABELS) == [O, O, B_FROM, I_FROM, O, B_CITY]


def test_annotations_off_word_boundaries_or_overlapping_give_no_tags():
    assert word_tags(WORDS, [entity(9, 16)], LABELS) is None  # starts inside "New"
    assert word_tags(WORDS, [entity(8, 15)], LABELS) is None  # ends inside "York"
    assert word_tags(WORDS, [entity(8, 16), entity(12, 20)], LABELS) is None
    assert word_tags(WORDS, [entity(21, 40)], LABELS) is None  # past the text


def test_piece_tags_go_on_each_words_first_piece():
    assert piece_tags([1, 3], [B_CITY, I_CITY], 5) == [UNTAGGED, B_CITY, UNTAGGED, I_CITY, UNTAGGED]


def test_decoding_gives_whole_words_with_values_offsets_roles_and_confidences():
    tags = [O, O, B_FROM, I_FROM, B_CITY, B_CITY]
    probabilities = one_hot(tags)
    probabilities[3] = one_hot([I_FROM], sure=0.6)[0]
    found = decode(TEXT, WORDS, probabilities, LABELS)
    assert [(e["start"], e["end"], e["value"]) for e in found] == [
        (8, 16, "New York"),
        (17, 20, "and"),
        (21, 25, "Oslo"),
    ]
    assert (found[0]["role"], found[0]["group"]) == ("departure", "1")
    assert "role" not in found[1] and "group" not in found[1]
    assert found[0]["confidence_entity"] == np.float64(0.6)  # its least sure word
    assert found[1]["confidence_entity"] == np.float64(0.9)


def test_decoding_never_continues_an_entity_with_an_i_tag_of_another_label():
    # Each word alone: O, I-city, B-from, I-city. The best valid sequence instead.
    probabilities = one_hot([O, I_CITY, B_FROM, I_CITY], sure=0.4)
    probabilities[1, B_CITY] = 0.35
    probabilities[3, I_FROM] = 0.35
    assert best_tags(probabilities).tolist() == [O, B_CITY, B_FROM, I_FROM]
    for length in range(1, 7):
        for seed in range(20):
            random = np.random.default_rng(seed).dirichlet(np.ones(5), size=length)
            tags = best_tags(random)
            previous = O
            for tag in tags:
                assert tag % 2 == 1 or tag == O or previous in (tag - 1, tag)
                previous = tag


def test_crf_transitions_move_the_best_path_but_never_to_an_invalid_one():
    # "New" and "York" each look like the start of a city, a little more than York inside one.
    probabilities = one_hot([B_CITY, B_CITY], sure=0.5)
    probabilities[1, I_CITY] = 0.4
    assert best_tags(probabilities).tolist() == [B_CITY, B_CITY]
    transitions = np.zeros((5, 5))
    transitions[B_CITY, B_CITY] = -2.0  # two cities in a row were rare in training
    assert best_tags(probabilities, transitions).tolist() == [B_CITY, I_CITY]
    transitions[O, I_FROM] = 100.0  # invalid, however high its learned score
    assert I_FROM not in best_tags(one_hot([O, I_FROM]), transitions).tolist()
    found = decode("New York", [(0, 3), (4, 8)], probabilities, LABELS, transitions)
    assert [(e["value"], e["confidence_entity"]) for e in found] == [("New York", 0.4)]


def test_decoding_nothing_gives_nothing():
    assert best_tags(np.zeros((0, 5))).tolist() == []
    assert decode("", [], np.zeros((0, 5)), LABELS) == []
    assert decode(TEXT, WORDS, one_hot([O] * 6), LABELS) == []


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(model_folder(DEFAULT_MODEL) / "vocab.txt", do_lower_case=True)


@pytest.mark.parametrize(
    "text, joined",
    [
        ("Show-Biz Blues", ["Show-Biz"]),
        ("play A.j. Pero", ["A.j"]),  # the last "." is at the token's edge
        ("O'Neill and AC/DC at 3.5", ["O'Neill", "AC/DC", "3.5"]),
        ("Paris, (Boston) $5 Beyoncé's song", []),  # edges and a possessive stay free
        ("北京 e-mail...", ["e-mail"]),  # characters of CJK text are words of their own
        ("-- 's ...", []),
    ],
)
def test_punctuation_inside_a_token_joins_its_words(tokenizer, text, joined):
    words = tokenizer.words(text)
    flags = joined_words(text, words)
    groups = []  # [start, end, words] of each run of joined words
    for (start, end), flag in zip(words, flags):
        if flag:
            groups[-1][1:] = [end, groups[-1][2] + 1]
        else:
            groups.append([start, end, 1])
    assert [text[start:end] for start, end, count in groups if count > 1] == joined


def test_no_entity_starts_or_ends_inside_a_joined_token(tokenizer):
    text = "Can you play A.j. Pero on Show-Biz"
    words = tokenizer.words(text)
    # Each word alone: "A" outside, ".j." and "Pero" a city, "Show" outside, "-Biz" a city.
    tags = [O, O, O, O, B_CITY, I_CITY, I_CITY, I_CITY, O, O, B_CITY, I_CITY]
    probabilities = one_hot(tags, sure=0.6)
    probabilities[9] = [0.5, 0.3, 0.1, 0.05, 0.05]  # "Show": a little like a city's start
    cut = decode(text, words, probabilities, LABELS, word_rule=False)
    assert [e["value"] for e in cut] == [".j. Pero", "-Biz"]
    whole = decode(text, words, probabilities, LABELS)
    starts_and_ends = {e["start"] for e in whole} | {e["end"] for e in whole}
    flags = joined_words(text, words)
    inner = {start for (start, _end), flag in zip(words, flags) if flag}
    inner |= {words[i - 1][1] for i, flag in enumerate(flags) if flag}
    assert not starts_and_ends & inner
    assert [e["value"] for e in whole] == ["A.j. Pero", "Show-Biz"]
    for seed in range(30):
        random = np.random.default_rng(seed).dirichlet(np.ones(5), size=len(words))
        found = decode(text, words, random, LABELS)
        assert not ({e["start"] for e in found} | {e["end"] for e in found}) & inner


def test_entity_labels_are_collected_in_a_fixed_order():
    entity_lists = [
        [  # "fly from a to b"
            {"start": 9, "end": 10, "entity": "city", "role": "to"},
            {"start": 4, "end": 8, "entity": "city", "role": "from"},
        ],
        [{"start": 2, "end": 7, "entity": "food", "group": "1"}],  # "a pizza"
        [],  # "hi"
    ]
    assert labels_in(entity_lists) == [
        ("city", "from", None),
        ("city", "to", None),
        ("food", None, "1"),
    ]
    assert labels_in(list(reversed(entity_lists))) == labels_in(entity_lists)


def test_training_tags_go_on_first_pieces_and_misaligned_annotations_are_named(tokenizer):
    texts = ["fly to new york", "fly to newyork", "hello"]
    entity_lists = [
        [{"start": 7, "end": 15, "entity": "city"}],
        [{"start": 7, "end": 10, "entity": "city"}],  # "new" inside the word "newyork"
        [],
    ]
    encodings = [tokenizer.encode(text, 16) for text in texts]
    labels = labels_in(entity_lists)
    tag_lists, misaligned = training_tags(entity_lists, encodings, labels)
    assert misaligned == [1] and tag_lists[1] is None
    first = encodings[0].first_pieces
    assert [tag_lists[0][piece] for piece in first] == [0, 0, 1, 2]  # O O B-city I-city
    assert tag_lists[0].count(UNTAGGED) == len(encodings[0].token_ids) - len(first)
    assert [tag_lists[2][piece] for piece in encodings[2].first_pieces] == [0]
    # Without labels no example's entities are trained.
    assert training_tags(entity_lists, encodings, []) == ([None, None, None], [])
