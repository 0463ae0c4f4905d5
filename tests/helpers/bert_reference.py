"""An independent plain-numpy BERT forward pass, and tiny random BERT checkpoints to test with."""

import json
from pathlib import Path
from typing import Dict

import numpy as np
from scipy.special import erf


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def numpy_bert(weights, config, token_ids):
    """Hidden states of the Hugging Face BERT computation, in float64 numpy, exact GELU."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    length = token_ids.shape[1]
    x = (
        w["embeddings.word_embeddings.weight"][token_ids]
        + w["embeddings.position_embeddings.weight"][:length]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    return numpy_layers(w, config, x, token_ids == 0, config.get("layer_norm_eps", 1e-12))


def numpy_layers(w, config, x, is_padding, eps, names=lambda name: name):
    """The embeddings `x` normalised and sent through the transformer layers of the float64
    weights `w`, under Hugging Face BERT's names or those `names` gives for them."""
    norm = "embeddings.LayerNorm"
    x = _layer_norm(x, w[names(f"{norm}.weight")], w[names(f"{norm}.bias")], eps)
    heads = config["num_attention_heads"]
    batch, length = is_padding.shape
    mask_add = np.where(is_padding, -10000.0, 0.0)[:, None, None, :]
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        weight = lambda name, leaf: w[names(p + name + "." + leaf)]
        dense = lambda h, name: h @ weight(name, "weight").T + weight(name, "bias")
        split = lambda h: h.reshape(batch, length, heads, -1).transpose(0, 2, 1, 3)
        q, k, v = (split(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + mask_add
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
        attention = dense(context, "attention.output.dense") + x
        norm = "attention.output.LayerNorm"
        x = _layer_norm(attention, weight(norm, "weight"), weight(norm, "bias"), eps)
        inner = dense(x, "intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
        out = dense(inner, "output.dense") + x
        norm = "output.LayerNorm"
        x = _layer_norm(out, weight(norm, "weight"), weight(norm, "bias"), eps)
    return x


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    "hello",
    "hi",
    "bye",
    "rain",
    "snow",
    "weather",
    "play",
    "music",
    "song",
    "good",
    "see",
    "you",
    "later",
    "will",
    "it",
    "tomorrow",
    "is",
    "the",
    "what",
    "a",
    "some",
    "##s",
    "##ing",
]
TINY_CONFIG = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 40,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "vocab_size": len(TINY_VOCAB),
}


def tiny_hf_weights(seed: int = 0) -> Dict[str, np.ndarray]:
    """Random weights of `TINY_CONFIG` under Hugging Face BERT names."""
    rng = np.random.default_rng(seed)
    hidden, inner = TINY_CONFIG["hidden_size"], TINY_CONFIG["intermediate_size"]

    def random(*shape):
        return rng.normal(0.0, 0.5, shape).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": random(TINY_CONFIG["vocab_size"], hidden),
        "embeddings.position_embeddings.weight": random(
            TINY_CONFIG["max_position_embeddings"], hidden
        ),
        "embeddings.token_type_embeddings.weight": random(2, hidden),
        "embeddings.LayerNorm.weight": 1.0 + random(hidden) / 5,
        "embeddings.LayerNorm.bias": random(hidden),
    }
    shapes = {
        "attention.self.query": (hidden, hidden),
        "attention.self.key": (hidden, hidden),
        "attention.self.value": (hidden, hidden),
        "attention.output.dense": (hidden, hidden),
        "intermediate.dense": (inner, hidden),
        "output.dense": (hidden, inner),
    }
    for layer in range(TINY_CONFIG["num_hidden_layers"]):
        prefix = f"encoder.layer.{layer}."
        for name, shape in shapes.items():
            weights[prefix + name + ".weight"] = random(*shape)
            weights[prefix + name + ".bias"] = random(shape[0])
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[prefix + norm + ".weight"] = 1.0 + random(hidden) / 5
            weights[prefix + norm + ".bias"] = random(hidden)
    return weights


def write_hf_folder(folder: Path, weights: Dict[str, np.ndarray]) -> Path:
    """A Hugging Face BERT folder with the given weights."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {**TINY_CONFIG, "model_type": "bert", "layer_norm_eps": 1e-12}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    # Weights as a BertForSequenceClassification saves them, with a pooler and a head to ignore.
    saved = {f"bert.{name}": value for name, value in weights.items()}
    saved["bert.pooler.dense.weight"] = np.zeros((TINY_CONFIG["hidden_size"],) * 2, np.float32)
    saved["classifier.weight"] = np.zeros((2, TINY_CONFIG["hidden_size"]), np.float32)
    save_file(saved, str(folder / "model.safetensors"))
    return folder


def write_google_folder(folder: Path, weights: Dict[str, np.ndarray]) -> Path:
    """A Google BERT checkpoint folder, written by a `tf.compat.v1` Saver, with the given weights."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bert_config.json").write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    stock = {}
    for name, value in weights.items():
        parts = name.split(".")
        if parts[0] == "encoder":
            parts = ["encoder", f"layer_{parts[2]}"] + parts[3:]
        leaf = parts.pop()
        if parts[-1] == "LayerNorm":
            parts.append({"weight": "gamma", "bias": "beta"}[leaf])
        elif parts[0] == "embeddings":
            pass  # the tables are stored under their own names
        else:
            parts.append("kernel" if leaf == "weight" else "bias")
            value = value.T if leaf == "weight" else value
        stock["bert/" + "/".join(parts)] = value
    stock["bert/pooler/dense/kernel"] = np.zeros((TINY_CONFIG["hidden_size"],) * 2, np.float32)
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name) for name, value in stock.items()}
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(folder / "bert_model.ckpt"))
    return folder


def train_and_reload(folder, data, model_storage, execution_context, name, text):
    """The component trained on `data` with the encoder in `folder` (tiny and random, so for
    plumbing only: a short run that judges no quality), then loaded back: `text` parsed by
    each, and the resource."""
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message

    from rasa_bert_intent import BertIntentClassifier

    config = {
        **BertIntentClassifier.get_default_config(),
        "model": str(folder),
        # Plumbing with a tiny random encoder: a short run that judges no quality.
        "epochs": 2,
        "max_seq_len": 16,
    }
    resource = Resource(name)
    classifier = BertIntentClassifier.create(config, model_storage, resource, execution_context)
    classifier.train(data)
    (before,) = classifier.process([Message.build(text=text)])
    loaded = BertIntentClassifier.load(config, model_storage, resource, execution_context)
    (after,) = loaded.process([Message.build(text=text)])
    return before, after, resource
