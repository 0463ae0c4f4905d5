"""RoBERTa, XLM-RoBERTa and DistilBERT folders, built from tiny random weights under each
architecture's own names: the Keras network and its ONNX export against a numpy forward pass
written from each architecture's definition."""

import functools
import json

import numpy as np
import onnx
import pytest
from helpers.bert_reference import (
    TINY_CONFIG,
    TINY_VOCAB,
    numpy_bert,
    numpy_layers,
    tiny_hf_weights,
    train_and_reload,
)
from helpers.tiny_network import built_network
from params_flow.normalization import LayerNormalization
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from rasa_bert_intent.pretrained import architectures
from rasa_bert_intent.pretrained.encoder import EncoderNotFound, load_pretrained
from rasa_bert_intent.pretrained.tokenization import HuggingFaceTokenizer
from rasa_bert_intent.predictor import Predictor

# RoBERTa's ids: <s> 0, <pad> 1, </s> 2; the network's: padding is 0, so the two trade places.
ROBERTA_PAD = 1
ROBERTA_IDS = np.array(
    [[0, 5, 8, 9, 10, 2, 1, 1], [0, 11, 12, 2, 1, 1, 1, 1], [0, 6, 7, 8, 9, 10, 11, 2]]
)
BERT_IDS = np.array(
    [[2, 5, 8, 9, 10, 3, 0, 0], [2, 11, 12, 3, 0, 0, 0, 0], [2, 6, 7, 8, 9, 10, 11, 3]]
)
# What a DistilBERT file calls a BERT weight's name piece (architectures.DISTILBERT, reversed).
DISTILBERT_PIECES = [(bert, distil) for distil, bert in architectures.DISTILBERT.weight_names]


def roberta_tokenizer(model_type):
    """A tokenizer.json of RoBERTa's special tokens over TINY_VOCAB's words: word-level with
    RoBERTa's framing, or for XLM-RoBERTa SentencePiece-style pieces (Unigram, Metaspace)."""
    words = [w for w in TINY_VOCAB if not w.startswith(("[", "##"))]
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    if model_type == "xlm-roberta":
        pieces = [(t, 0.0) for t in specials] + [("▁" + w, -1.0) for w in words]
        pieces += [(c, -5.0) for c in sorted({c for w in words for c in w})]
        tokenizer = Tokenizer(models.Unigram(pieces, unk_id=3))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    else:
        vocab = {t: i for i, t in enumerate(specials + words)}
        tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tokenizer


def roberta_folder(folder, model_type):
    """A RobertaForSequenceClassification-like folder: positions from the padding id + 1, one
    token type, LayerNorm epsilon 1e-5, a tokenizer.json padding with id 1."""
    weights = tiny_hf_weights()
    rng = np.random.default_rng(1)
    hidden = TINY_CONFIG["hidden_size"]
    weights["embeddings.position_embeddings.weight"] = rng.normal(
        0, 0.5, (TINY_CONFIG["max_position_embeddings"] + ROBERTA_PAD + 1, hidden)
    ).astype(np.float32)
    weights["embeddings.token_type_embeddings.weight"] = weights[
        "embeddings.token_type_embeddings.weight"
    ][:1]
    config = {
        **TINY_CONFIG,
        "model_type": model_type,
        "max_position_embeddings": TINY_CONFIG["max_position_embeddings"] + ROBERTA_PAD + 1,
        "type_vocab_size": 1,
        "layer_norm_eps": 1e-5,
        "pad_token_id": ROBERTA_PAD,
    }
    saved = {f"roberta.{name}": value for name, value in weights.items()}
    saved["classifier.dense.weight"] = np.zeros((hidden, hidden), np.float32)
    folder = write_folder(folder, config, saved, with_vocab=False)
    roberta_tokenizer(model_type).save(str(folder / "tokenizer.json"))
    return folder, weights, config


def distilbert_folder(folder):
    """A DistilBertModel folder: its own config keys and weight names, no token types."""
    weights = tiny_hf_weights()
    del weights["embeddings.token_type_embeddings.weight"]
    distil = {}
    for name, value in weights.items():
        for bert_piece, distil_piece in DISTILBERT_PIECES:
            name = name.replace(bert_piece, distil_piece)
        distil[name] = value
    config = {
        "model_type": "distilbert",
        "dim": TINY_CONFIG["hidden_size"],
        "n_layers": TINY_CONFIG["num_hidden_layers"],
        "n_heads": TINY_CONFIG["num_attention_heads"],
        "hidden_dim": TINY_CONFIG["intermediate_size"],
        "activation": "gelu",
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "max_position_embeddings": TINY_CONFIG["max_position_embeddings"],
        "vocab_size": TINY_CONFIG["vocab_size"],
        "pad_token_id": 0,
    }
    return write_folder(folder, config, distil), distil, config


def write_folder(folder, config, weights, with_vocab=True):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if with_vocab:
        (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    save_file(weights, str(folder / "model.safetensors"))
    return folder


def numpy_roberta(weights, config, token_ids):
    """Hugging Face's RoBERTa: position ids count the tokens from the padding id + 1."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    pad = config["pad_token_id"]
    is_token = token_ids != pad
    positions = np.cumsum(is_token, axis=1) * is_token + pad
    x = (
        w["embeddings.word_embeddings.weight"][token_ids]
        + w["embeddings.position_embeddings.weight"][positions]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    return numpy_layers(w, config, x, ~is_token, config["layer_norm_eps"])


def numpy_distilbert(weights, config, token_ids):
    """Hugging Face's DistilBERT: words and positions, no token types, its own names."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    x = (
        w["embeddings.word_embeddings.weight"][token_ids]
        + w["embeddings.position_embeddings.weight"][: token_ids.shape[1]]
    )

    def names(bert_name):
        for bert_piece, distil_piece in DISTILBERT_PIECES:
            bert_name = bert_name.replace(bert_piece, distil_piece)
        return bert_name

    layers = {"num_attention_heads": config["n_heads"], "num_hidden_layers": config["n_layers"]}
    return numpy_layers(w, layers, x, token_ids == 0, 1e-12, names)


@functools.lru_cache(maxsize=1)
def bert_operators():
    """The operators of the fp32 export of a tiny BERT, in order."""
    network = built_network(TINY_CONFIG, num_intents=3)
    return [node.op_type for node in onnx.load_from_string(network.to_onnx("fp32")).graph.node]


def network_ids(token_ids, pad):
    """The architecture's ids as the network reads them: the padding id and 0 trade places."""
    swapped = token_ids.copy()
    swapped[token_ids == pad], swapped[token_ids == 0] = 0, pad
    return swapped


@pytest.mark.parametrize("kind", ["roberta", "xlm-roberta", "distilbert", "bert"])
def test_each_architecture_gives_its_reference_hidden_states_in_keras_and_onnx(tmp_path, kind):
    if kind == "distilbert":
        folder, weights, config = distilbert_folder(tmp_path / kind)
        ids, pad, reference = BERT_IDS, 0, numpy_distilbert
    elif kind == "bert":
        weights = tiny_hf_weights()
        folder = write_folder(tmp_path / kind, {**TINY_CONFIG, "model_type": "bert"},
                              {f"bert.{n}": v for n, v in weights.items()})
        config, ids, pad, reference = TINY_CONFIG, BERT_IDS, 0, numpy_bert
    else:
        folder, weights, config = roberta_folder(tmp_path / kind, kind)
        ids, pad, reference = ROBERTA_IDS, ROBERTA_PAD, numpy_roberta
    encoder = load_pretrained(str(folder))
    assert encoder.architecture.model_types[0] == {"xlm-roberta": "roberta"}.get(kind, kind)
    network = built_network(encoder.config, num_intents=3)
    assert encoder.load_into(network) == []
    ours = network_ids(ids, pad).astype(np.int32)

    hidden = network.bert.encoders_layer(
        network._embeddings(ours, training=False), mask=ours != 0, training=False
    ).numpy()
    wanted = reference(weights, config, ids)
    real = ids != pad
    # bert-for-tf2's GELU is the tanh approximation; random weights make it matter more.
    assert np.abs(hidden[real] - wanted[real]).max() / np.abs(wanted[real]).max() < 2e-3

    # The LayerNorm epsilon (RoBERTa's 1e-5) moves the outputs less than the GELU does: checked
    # where it is set.
    epsilon = config.get("layer_norm_eps", 1e-12)
    norms = [
        layer for layer in network.bert.submodules if isinstance(layer, LayerNormalization)
    ]
    assert norms and {layer.params.epsilon for layer in norms} == {epsilon}
    exported = network.to_onnx("fp32")
    nodes = onnx.load_from_string(exported).graph.node
    written = {a.f for node in nodes for a in node.attribute if a.name == "epsilon"}
    assert written == {np.float32(epsilon)}

    # Every architecture is served as BERT is: the same operators, so the same cost per message
    # as BERT of its size.
    assert [node.op_type for node in nodes] == bert_operators()

    onnx_outputs = Predictor(exported, 16, "fp32").predict([row[row != 0] for row in ours])
    logits, _tags, vectors = network.intent_and_entity_tag_logits(ours, training=False)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(onnx_outputs.vectors, vectors.numpy(), atol=1e-4)
    np.testing.assert_allclose(onnx_outputs.probabilities, probabilities, atol=1e-4)


def test_a_sentencepiece_tokenizer_keeps_words_whole_and_pads_with_the_networks_zero(tmp_path):
    folder, _weights, _config = roberta_folder(tmp_path / "xlmr", "xlm-roberta")
    tokenizer = load_pretrained(str(folder)).tokenizer()
    assert isinstance(tokenizer, HuggingFaceTokenizer)
    assert tokenizer.pad_id == ROBERTA_PAD and not tokenizer.do_lower_case
    text = "play  some music"
    encoding = tokenizer.encode(text, 16)
    assert [text[s:e] for s, e in encoding.words] == ["play", "some", "music"]
    # <s> (0) is the network's 1, since <pad> (1) is its 0; </s> stays 2.
    assert encoding.token_ids[0] == 1 and encoding.token_ids[-1] == 2
    assert 0 not in encoding.token_ids and len(encoding.first_pieces) == 3
    # No spaces: one word, which an entity never cuts.
    text = "你好世界 hello"
    assert [text[s:e] for s, e in tokenizer.encode(text, 16).words] == ["你好世界", "hello"]
    cut = tokenizer.encode("play some music " * 10, 6)
    assert len(cut.token_ids) == 6 and cut.token_ids[-1] == 2 and cut.first_pieces == [1, 2, 3, 4]
    for text in ("", None, "\ud800 lone", "\x00\x07"):
        assert tokenizer.encode(text, 16).token_ids[0] == 1


@pytest.mark.parametrize("kind", ["distilbert", "xlm-roberta"])
def test_a_folder_of_another_architecture_trains_persists_and_loads_in_the_component(
    tmp_path, kind, model_storage, execution_context
):
    from rasa.shared.exceptions import RasaException
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from rasa_bert_intent import BertIntentClassifier

    if kind == "distilbert":
        folder, _weights, _config = distilbert_folder(tmp_path / kind)
    else:
        folder, _weights, _config = roberta_folder(tmp_path / kind, kind)
    weather = [("rain tomorrow", None), ("snow", None), ("will it rain", None)]
    data = TrainingData(
        [Message.build(text=t, intent="greet") for t in ("hello", "hi", "good hello")]
        + [Message.build(text=t, intent="weather") for t, _ in weather]
        + [
            Message.build(
                text="play some music",
                intent="music",
                entities=[{"entity": "genre", "value": "music", "start": 10, "end": 15}],
            )
        ]
    )
    before, after, resource = train_and_reload(
        folder, data, model_storage, execution_context, f"{kind}-classifier", "rain hello music"
    )
    assert before.get("intent")["name"] in {"greet", "weather", "music"}
    assert after.get("intent_ranking") == pytest.approx(before.get("intent_ranking"))
    assert after.get("entities") == before.get("entities")
    with model_storage.read_from(resource) as model_dir:
        tokenizer_file = model_dir / ("vocab.txt" if kind == "distilbert" else "tokenizer.json")
        assert tokenizer_file.is_file()
        if kind == "distilbert":
            return
        tokenizer_file.write_text("{broken", encoding="utf-8")
    config = {**BertIntentClassifier.get_default_config(), "model": str(folder)}
    with pytest.raises(RasaException, match="BertIntentClassifier.*'tokenizer.json'"):
        BertIntentClassifier.load(config, model_storage, resource, execution_context)


def test_a_broken_tokenizer_json_is_named(tmp_path):
    folder, _weights, _config = roberta_folder(tmp_path / "roberta", "roberta")
    (folder / "tokenizer.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(EncoderNotFound, match=r"cannot read '.*tokenizer\.json'"):
        load_pretrained(str(folder))
