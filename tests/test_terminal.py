"""What the command line prints of the data (n2d_spark/core/terminal.py): a control character in a row's text,
an id, a topic's name or an error is shown as its escape, never acted on by the terminal. No Spark here."""

import argparse

import pandas as pd

from n2d_spark.cli import _reported, format_summary
from n2d_spark.core.errors import InputError
from n2d_spark.core.terminal import printable
from n2d_spark.lookup import Similar, format_similar

# Clear the screen, return to the line's start, a C1 CSI, and a right-to-left override.
HOSTILE = "ok\x1b[2J\r\x9b\u202edone"
SHOWN = "ok\\x1b[2J\\r\\x9b\\u202edone"


def _no_active_character(text: str) -> bool:
    return all(c == "\n" or printable(c) == c for c in text)


def test_a_terminals_active_characters_are_escaped_and_the_rest_kept():
    assert printable(HOSTILE) == SHOWN
    for active in ("\x00", "\x07", "\x08", "\t", "\n", "\x7f", "\x85", "\u061c", "\u200f", "\u2028", "\u202a", "\u2066", "\u2069"):
        assert printable(active) == active.encode("unicode_escape").decode("ascii")
    plain = "Great product! Très bien, 日本語, ☃ 🙂 \\ (a backslash)"
    assert printable(plain) == plain


def test_similar_prints_a_rows_text_name_and_id_escaped():
    rows = pd.DataFrame({
        "rank": [1, 2], "id": [f"doc{HOSTILE}", "doc2"], "similarity": [0.9, 0.8], "cluster": [0, 1],
        "name": [f"0_{HOSTILE}", None], "text": [f"a ghost {HOSTILE}\nat night", None],
    })
    shown = format_similar(Similar(rows, "review"))
    assert _no_active_character(shown) and len(shown.splitlines()) == 3
    # The text's whitespace (its CR too) is one space, as before; the rest is escaped as in the id and the name.
    assert shown.count(SHOWN) == 2 and "a ghost ok\\x1b[2J \\x9b\\u202edone at night" in shown


def _manifest(name: str) -> dict:
    return {
        "output": "/tmp/out", "rows": {"in": 10, "labelled": 9, "rejected": 1},
        "clusters": {"n_clusters": 2, "noise_share": 0.0, "largest": [{"share": 0.6, "name": name}, {"share": 0.4, "name": "1_b"}]},
        "stage_seconds": {"read": 1.0}, "total_seconds": 1.0,
        "update": {
            "new_rows": 3, "new_row_share": 0.3, "novel_rows": 4, "novel_row_share": 0.4,
            "new_topics": [{"name": name}], "out_of_vocabulary_share": {"new": None, "training": None},
            "retrain_advised": False, "why": [],
        },
    }


def test_the_run_summary_prints_topic_names_escaped():
    summary = format_summary(_manifest(f"0_{HOSTILE}"))
    plain = format_summary(_manifest("0_a"))
    assert _no_active_character(summary) and len(summary.splitlines()) == len(plain.splitlines())
    assert summary.count(SHOWN) == 2  # the largest topic and the update's new one


def test_an_error_that_quotes_the_data_is_one_escaped_line(capsys):
    def work(_sessions):
        raise InputError(f"input column {HOSTILE!s} not in the DataFrame")

    assert _reported(argparse.Namespace(debug=False), work) == 2
    assert capsys.readouterr().err == f"n2d-spark: error: input column {SHOWN} not in the DataFrame\n"
