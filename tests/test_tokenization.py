"""The encoders' tokenizers: WordPiece and tokenizer.json alike, word offsets, truncation."""

import pytest

from rasa_bert_intent.pretrained.encoder import DEFAULT_MODEL, model_folder
from rasa_bert_intent.pretrained.tokenization import HuggingFaceTokenizer, WordPieceTokenizer
from rasa_bert_intent.quiet import quiet_bert_import

with quiet_bert_import():
    from bert.tokenization.bert_tokenization import FullTokenizer

VOCAB = model_folder(DEFAULT_MODEL) / "vocab.txt"
CLS, SEP = 101, 102  # in the BERT uncased vocabulary


def wordpiece() -> WordPieceTokenizer:
    return WordPieceTokenizer(VOCAB, do_lower_case=True)


@pytest.fixture(scope="module", params=["vocab.txt", "tokenizer.json"])
def tokenizer(request):
    """Our WordPiece over the default encoder's vocab.txt, and Hugging Face's tokenizers over
    its tokenizer.json, which the component uses: the same ids and words."""
    if request.param == "vocab.txt":
        return wordpiece()
    return HuggingFaceTokenizer(VOCAB.parent / request.param)


def test_text_is_lower_cased_split_into_word_pieces_and_framed(tokenizer):
    assert tokenizer.do_lower_case  # tokenizer.json's: read from its BertNormalizer
    words = VOCAB.read_text(encoding="utf-8").splitlines()
    ids = tokenizer.token_ids("Play Unbelievable", max_seq_len=64)
    assert ids[0] == CLS and ids[-1] == SEP
    assert [words[i] for i in ids[1:-1]] == ["play", "unbelievable"]
    pieces = [words[i] for i in tokenizer.token_ids("snowboarding", 64)[1:-1]]
    assert len(pieces) > 1 and pieces[1].startswith("##")


def test_truncation_keeps_cls_and_sep_within_max_seq_len(tokenizer):
    ids = tokenizer.token_ids("rain " * 100, max_seq_len=10)
    assert len(ids) == 10
    assert ids[0] == CLS and ids[-1] == SEP


def test_empty_and_missing_text_give_cls_sep(tokenizer):
    assert tokenizer.token_ids("", 16) == [CLS, SEP]
    assert tokenizer.token_ids(None, 16) == [CLS, SEP]
    assert tokenizer.token_ids(" \t\n ", 16) == [CLS, SEP]


# Texts that BERT's normalisation changes, each with the words its basic tokenizer makes.
HARD_TEXTS = {
    "play Beyoncé now": ["play", "Beyoncé", "now"],
    "ÉCOLE de Paris": ["ÉCOLE", "de", "Paris"],
    "Cafe\u0301 au lait": ["Cafe\u0301", "au", "lait"],  # a combining accent stays in its word
    "book 🍕 for 2😀 people": ["book", "🍕", "for", "2😀", "people"],
    "東京の天気 is nice": ["東", "京", "の", "天", "気", "is", "nice"],
    "rate it 5/6, please!!": ["rate", "it", "5", "/", "6", ",", "please", "!", "!"],
    "  weather   in\tOslo\t\n": ["weather", "in", "Oslo"],
    "rock\x00and\u200broll": ["rock\x00and\u200broll"],  # dropped characters join
    "\x07\x07 hi": ["hi"],
    "\u00a0Zürich\u3000today": ["Zürich", "today"],
    "l'été": ["l", "'", "été"],
}


def full_tokenizer() -> FullTokenizer:
    return FullTokenizer(str(VOCAB), do_lower_case=True)


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_word_offsets_point_at_the_words_in_the_original_text(text, tokenizer):
    encoding = tokenizer.encode(text, 64)
    assert [text[start:end] for start, end in encoding.words] == HARD_TEXTS[text]


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_token_ids_are_those_of_berts_own_tokenizer(text, tokenizer):
    reference = full_tokenizer()
    expected = reference.convert_tokens_to_ids(["[CLS]", *reference.tokenize(text), "[SEP]"])
    assert tokenizer.token_ids(text, 64) == expected


# Words past the length the memo keeps, at and around WordPiece's limit of 200 characters.
LONG_WORDS = [
    "x" * 10_000,
    "x" * 200,
    "x" * 201,
    "a" + "\u0301" * 300,  # 301 characters, 1 letter: "a"
    "e\u0301" * 150,  # combining accents do not count towards the limit
    "é" * 201,
    "한" * 70,  # syllables that normalising splits into several characters
    "weather" * 20,
]


@pytest.mark.parametrize("word", LONG_WORDS)
def test_long_words_get_berts_token_ids_twice_over(word):
    reference = full_tokenizer()
    text = f"play {word} now"
    expected = reference.convert_tokens_to_ids(["[CLS]", *reference.tokenize(text), "[SEP]"])
    ours = wordpiece()  # tokenizer.json's WordPiece takes words of 100 characters, not 200
    assert ours.token_ids(text, 512) == expected
    assert ours.token_ids(text, 512) == expected  # from the memo of characters


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_each_words_first_piece_is_the_first_piece_of_that_word(text, tokenizer):
    reference = full_tokenizer()
    encoding = tokenizer.encode(text, 64)
    for (start, end), piece in zip(encoding.words, encoding.first_pieces):
        first_piece = reference.convert_tokens_to_ids(reference.tokenize(text[start:end]))[0]
        assert encoding.token_ids[piece] == first_piece


def test_the_words_of_a_cased_tokenizer_keep_accents_apart_from_punctuation():
    cased = WordPieceTokenizer(VOCAB, do_lower_case=False)
    text = "Beyoncé's ÉCOLE"
    assert [text[s:e] for s, e in cased.words(text)] == ["Beyoncé", "'", "s", "ÉCOLE"]


def test_words_cut_by_truncation_have_no_first_piece(tokenizer):
    encoding = tokenizer.encode("rain in Oslo " * 20, max_seq_len=8)
    assert len(encoding.token_ids) == 8
    assert encoding.first_pieces == [1, 2, 3, 4, 5, 6]
    assert len(encoding.words) == 60  # the message's tokens are all its words


def test_every_snips_query_gets_berts_token_ids_and_nearly_all_align_with_their_slots(
    snips_folder, tokenizer
):
    from rasa_bert_intent.entities import label_of, word_tags
    from rasa_bert_intent.snips import read_source

    reference, ours = full_tokenizer(), tokenizer
    train, test = read_source(snips_folder)
    misaligned = []
    for message in train + test:
        text = message.get("text")
        expected = reference.convert_tokens_to_ids(["[CLS]", *reference.tokenize(text), "[SEP]"])
        encoding = ours.encode(text, 512)
        assert encoding.token_ids == expected, text
        entities = message.get("entities") or []
        labels = sorted({label_of(entity) for entity in entities})
        if word_tags(encoding.words, entities, labels) is None:
            misaligned.append(text)
    # Two training slots end with a space; three test queries glue two slots into one word.
    assert misaligned == [
        "book a brasserie with internet fascility for 5 in a year  in Oklahoma",
        "book a highly rated place in IN in seven years  at a pub",
        "What kind of weather is forecast around one pmnear Vatican?",
        "Live In L.aJoseph Meyer please",
        "Show the Sexy Dance 2times at the closest movie house",
    ]


def test_the_vocabulary_is_read_as_bert_for_tf2_reads_it(tmp_path):
    # Read by Python rather than bert-for-tf2's line-by-line tf.io.gfile (0.1 s of each load).
    from bert.tokenization.bert_tokenization import load_vocab

    odd = tmp_path / "vocab.txt"
    odd.write_bytes("[PAD]\r\n[UNK]\n\n  spaced \t\n[CLS]\n[SEP]\n##é\nx\n[UNK]\nlast".encode())
    for path in (VOCAB, odd):
        ours = WordPieceTokenizer(path, do_lower_case=True)._tokenizer.vocab
        assert list(ours.items()) == list(load_vocab(str(path)).items())
