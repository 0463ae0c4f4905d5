"""The SNIPS converter on the real benchmark in ../shared, and on the article's CSV format."""

import csv

import pytest
from rasa.shared.nlu.training_data.loading import load_data

from rasa_bert_intent.cli import main
from rasa_bert_intent.snips import ConversionError, intent_counts, read_source

TRAIN_COUNTS = {
    "AddToPlaylist": 1942,
    "BookRestaurant": 1973,
    "GetWeather": 2000,
    "PlayMusic": 2000,
    "RateBook": 1956,
    "SearchCreativeWork": 1954,
    "SearchScreeningEvent": 1959,
}
EMOJI_QUERY = "I want toi hear some Pop Punk Perfection \N{SLICE OF PIZZA} off of Deezer"


@pytest.fixture(scope="module")
def converted(tmp_path_factory, snips_folder):
    """The benchmark converted once through the console command, then read back by Rasa."""
    out = tmp_path_factory.mktemp("snips")
    assert (
        main(
            [
                "snips",
                str(snips_folder),
                "--train-out",
                str(out / "data" / "nlu.yml"),
                "--test-out",
                str(out / "test.yml"),
            ]
        )
        == 0
    )
    return load_data(str(out / "data" / "nlu.yml")), load_data(str(out / "test.yml"))


def test_source_has_every_query_of_the_benchmark(snips_folder):
    train, test = read_source(snips_folder)
    assert len(train) == 13784
    assert intent_counts(train) == TRAIN_COUNTS
    assert len(test) == 700
    assert set(intent_counts(test).values()) == {100}


def test_converted_files_read_back_in_rasa_with_all_distinct_queries(converted, snips_folder):
    train_data, test_data = converted
    train, test = read_source(snips_folder)
    # Rasa keeps identical examples once: with whitespace runs made single spaces and trimmed,
    # 169 training and 3 test queries repeat another one.
    assert len(train_data.intent_examples) == len(set(train)) == 13615
    assert len(test_data.intent_examples) == len(set(test)) == 697
    assert {m.get("text") for m in train_data.intent_examples} == {m.get("text") for m in train}
    assert all(c.isprintable() for m in train_data.intent_examples for c in m.get("text"))
    entities = lambda messages: sorted(
        (m.get("text"), e["start"], e["end"], e["value"], e["entity"])
        for m in set(messages)
        for e in m.get("entities")
    )
    assert entities(train_data.intent_examples) == entities(train)


def test_cesu8_emoji_query_comes_out_as_the_right_emoji(converted):
    train_data, _ = converted
    (message,) = [m for m in train_data.intent_examples if "Pop Punk Perfection" in m.get("text")]
    assert message.get("text") == EMOJI_QUERY
    assert message.get("intent") == "PlayMusic"
    playlist = next(e for e in message.get("entities") if e["entity"] == "playlist")
    assert playlist["value"] == "Pop Punk Perfection \N{SLICE OF PIZZA}"


def test_slots_become_entity_markup(converted, tmp_path):
    train_data, _ = converted
    message = next(
        m
        for m in train_data.intent_examples
        if m.get("text") == "Add another song to the Cita Romántica playlist."
    )
    assert {(e["entity"], e["value"]) for e in message.get("entities")} == {
        ("music_item", "song"),
        ("playlist", "Cita Romántica"),
    }
    assert len(train_data.entities) == 39
    for entity in message.get("entities"):
        assert message.get("text")[entity["start"] : entity["end"]] == entity["value"]


def test_article_csv_folder(tmp_path, capsys):
    rows = {
        "train.csv": [("play some jazz", "PlayMusic"), ("rain tomorrow?", "GetWeather")],
        "valid.csv": [("book a table, for 2", "BookRestaurant")],
        "test.csv": [('play "Hey Jude"', "PlayMusic")],
    }
    for name, content in rows.items():
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["text", "intent"])
            writer.writerows(content)
    assert (
        main(
            [
                "snips",
                str(tmp_path),
                "--train-out",
                str(tmp_path / "train.yml"),
                "--test-out",
                str(tmp_path / "test.yml"),
            ]
        )
        == 0
    )
    assert "3 queries" in capsys.readouterr().out
    train = load_data(str(tmp_path / "train.yml"))
    assert sorted((m.get("text"), m.get("intent")) for m in train.intent_examples) == sorted(
        rows["train.csv"] + rows["valid.csv"]
    )
    test = load_data(str(tmp_path / "test.yml"))
    assert [(m.get("text"), m.get("intent")) for m in test.intent_examples] == rows["test.csv"]


def test_csv_without_the_columns_is_refused(tmp_path):
    (tmp_path / "test.csv").write_text("sentence,label\nhi,greet\n", encoding="utf-8")
    with pytest.raises(ConversionError, match="'text' and 'intent'"):
        read_source(tmp_path)


def test_missing_or_unreadable_sources_fail_loudly(tmp_path, capsys):
    assert main(["snips", str(tmp_path / "absent")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert main(["snips", str(tmp_path)]) == 1
    assert "neither the SNIPS benchmark" in capsys.readouterr().err
    (tmp_path / "train_X_full.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "validate_X.json").write_text('{"X": []}', encoding="utf-8")
    assert main(["snips", str(tmp_path)]) == 1
    assert "train_X_full.json' is not a SNIPS benchmark file" in capsys.readouterr().err
