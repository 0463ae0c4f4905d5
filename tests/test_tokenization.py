"""WordPiece tokenization, truncation, length buckets and padding."""

import numpy as np

from rasa_bert_intent.encoder import DEFAULT_MODEL, model_folder
from rasa_bert_intent.tokenization import (
    OUTSIDE,
    UNTAGGED,
    WordPieceTokenizer,
    bucket_length,
    length_batches,
    pad,
)

VOCAB = model_folder(DEFAULT_MODEL) / "vocab.txt"
CLS, SEP = 101, 102  # in the BERT uncased vocabulary


def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(VOCAB, do_lower_case=True)


def test_text_is_lower_cased_split_into_word_pieces_and_framed():
    words = VOCAB.read_text(encoding="utf-8").splitlines()
    ids = tokenizer().token_ids("Play Unbelievable", max_seq_len=64)
    assert ids[0] == CLS and ids[-1] == SEP
    assert [words[i] for i in ids[1:-1]] == ["play", "unbelievable"]
    pieces = [words[i] for i in tokenizer().token_ids("snowboarding", 64)[1:-1]]
    assert len(pieces) > 1 and pieces[1].startswith("##")


def test_truncation_keeps_cls_and_sep_within_max_seq_len():
    ids = tokenizer().token_ids("rain " * 100, max_seq_len=10)
    assert len(ids) == 10
    assert ids[0] == CLS and ids[-1] == SEP


def test_empty_and_missing_text_give_cls_sep():
    assert tokenizer().token_ids("", 16) == [CLS, SEP]
    assert tokenizer().token_ids(None, 16) == [CLS, SEP]
    assert tokenizer().token_ids(" \t\n ", 16) == [CLS, SEP]


def test_bucket_lengths_round_up_to_multiples_of_8_but_not_past_max_seq_len():
    assert [bucket_length(n, 64) for n in (2, 8, 9, 16, 17, 64)] == [8, 8, 16, 16, 24, 64]
    assert bucket_length(37, 37) == 37
    assert bucket_length(30, 30) == 30


def test_padding_fills_with_zeros_to_the_given_length():
    batch = pad([[CLS, 7, SEP], [CLS, SEP]], 8)
    assert batch.dtype == np.int32 and batch.shape == (2, 8)
    assert batch.tolist() == [[CLS, 7, SEP, 0, 0, 0, 0, 0], [CLS, SEP, 0, 0, 0, 0, 0, 0]]


def test_length_batches_hold_each_row_once_in_batches_of_one_bucket():
    lengths = [3, 12, 5, 20, 9, 4, 17, 8, 2, 30]
    token_id_lists = [[CLS] * length for length in lengths]
    for rng in (None, np.random.default_rng(0)):
        batches = length_batches(token_id_lists, batch_size=2, max_seq_len=24, rng=rng)
        rows = [row for _length, batch in batches for row in batch]
        assert sorted(rows) == list(range(len(lengths)))
        for length, batch in batches:
            assert 1 <= len(batch) <= 2
            assert {bucket_length(lengths[row], 24) for row in batch} == {length}
    in_order = length_batches(token_id_lists, batch_size=2, max_seq_len=24)
    assert [length for length, _batch in in_order] == sorted(length for length, _batch in in_order)


def test_entity_tags_follow_the_word_pieces_of_each_span():
    text = "Add snowboarding to my Road Trip playlist"
    entities = [
        {"start": 4, "end": 16, "entity": "music_item"},
        {"start": 23, "end": 32, "entity": "playlist"},
    ]
    ids = tokenizer().token_ids(text, 64)
    tags = tokenizer().entity_tags(text, entities, {"music_item": 1, "playlist": 2}, 64)
    assert len(tags) == len(ids)
    words = VOCAB.read_text(encoding="utf-8").splitlines()
    tagged = {}
    for piece_id, tag in zip(ids, tags):
        tagged.setdefault(tag, []).append(words[piece_id])
    assert tagged[UNTAGGED] == ["[CLS]", "[SEP]"]
    assert "".join(tagged[1]).replace("##", "") == "snowboarding" and len(tagged[1]) > 1
    assert tagged[2] == ["road", "trip"]
    assert tagged[OUTSIDE] == ["add", "to", "my", "play", "##list"]


def test_entity_tags_are_cut_with_the_token_ids():
    text = "rain in Oslo " * 20
    tags = tokenizer().entity_tags(
        text, [{"start": 8, "end": 12, "entity": "city"}], {"city": 1}, 8
    )
    assert tags == [UNTAGGED, OUTSIDE, OUTSIDE, 1, OUTSIDE, OUTSIDE, OUTSIDE, UNTAGGED]


def test_spans_off_word_piece_boundaries_or_overlapping_give_no_tags():
    tag_of = {"city": 1}
    assert (
        tokenizer().entity_tags(
            "rain in Oslo", [{"start": 9, "end": 12, "entity": "city"}], tag_of, 64
        )
        is None
    )
    overlapping = [
        {"start": 0, "end": 7, "entity": "city"},
        {"start": 5, "end": 12, "entity": "city"},
    ]
    assert tokenizer().entity_tags("rain in Oslo", overlapping, tag_of, 64) is None
    beyond = [{"start": 8, "end": 40, "entity": "city"}]
    assert tokenizer().entity_tags("rain in Oslo", beyond, tag_of, 64) is None
