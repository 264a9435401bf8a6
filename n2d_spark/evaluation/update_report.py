"""An update run's report (``report/update.html``): what the new data brought that the model lacked.

One static page from run.json's ``update`` (outputs/drift.py): the advice, the new rows' share,
the new topics with their names and examples, each old topic's share at training and in the new
data, the words outside the vocabulary, and the stage times. It loads nothing from outside.
"""

from __future__ import annotations

from n2d_spark.evaluation.report import REPORT_CSS, escaped, html_table, number
from n2d_spark.evaluation.report_views import shortened

UPDATE_HTML = "update.html"
# Characters of an example text shown in the table of new topics.
_EXAMPLE_CHARS = 300
# How the report names each space novelty is measured in (model/novelty.py).
SPACE_WORDS = {"embedding": "the embedding", "terms": "the rows' terms"}


def render_update_html(manifest: dict) -> str:
    update = manifest["update"]
    novelty = update["novelty"]
    oov = update["out_of_vocabulary_share"]
    advice = (
        f"<p class=\"advice\"><strong>Retrain advised:</strong> {escaped('; '.join(update['why']))}.</p>"
        if update["retrain_advised"] else "<p>No retrain advised: the new data is close enough to the training data.</p>"
    )
    new_topics = [
        [escaped(t["name"]), number(t["rows"]), number(t["share"] * 100, 1),
         "<br>".join(escaped(shortened(text, _EXAMPLE_CHARS)) for text in t["examples"])]
        for t in update["new_topics"]
    ]
    shares = [
        [escaped(t["name"] or t["cluster"]), number(t["at_training"] * 100, 1), number(t["in_new"] * 100, 1),
         number((t["in_new"] - t["at_training"]) * 100, 1)]
        for t in sorted(update["topic_shares"], key=lambda t: t["in_new"] - t["at_training"])
    ]
    stages = [[escaped(name), number(float(seconds), 1)] for name, seconds in manifest["stage_seconds"].items()]
    body = [
        "<h1>N2D update report</h1>",
        f"<p>Run <code>{escaped(manifest['run_id'])}</code>, input <code>{escaped(manifest['input'])}</code>: model "
        f"<code>{escaped(update['parent_model'])}</code> updated to <code>{escaped(manifest['model_id'])}</code>.</p>",
        advice,
        f"<p>{number(update['new_rows'])} of {number(manifest['rows']['labelled'])} labelled rows are new "
        f"({number(update['new_row_share'] * 100, 1)}%): they joined a new topic. "
        f"{number(update['novel_rows'])} rows are novel ({number(update['novel_row_share'] * 100, 1)}%): "
        f"farther from the model's rows than from the new data's own, by more "
        f"than the {number(novelty['quantile'], 3)} quantile of that ratio on the training rows, measured in "
        f"{escaped(' and '.join(SPACE_WORDS[space['space']] for space in novelty['spaces']))}"
        f"{' (the geometric mean of the two)' if len(novelty['spaces']) > 1 else ''}; "
        "only novel rows can join a new topic, and the others keep the model's topics.</p>",
        "<p>Words outside the model's vocabulary: "
        + (f"{number(oov['new'] * 100, 1)}% of the new data's, {number(oov['training'] * 100, 1)}% of the training data's."
           if oov["new"] is not None and oov["training"] is not None else "not counted (vector mode).")
        + " The vocabulary, the encoder and the UMAP are the parent model's: an update does not retrain them.</p>",
        "<h2>New topics</h2>",
        html_table(["topic", "rows", "% of the new data", "examples"], new_topics, text_columns=(0, 3))
        if new_topics else f"<p class=\"muted\">None: {escaped(update['new_topic_search'].get('why_none', ''))}.</p>",
        "<h2>The old topics, at training and now</h2>",
        html_table(["topic", "% at training", "% in the new data", "change (points)"], shares),
        "<h2>Stage times</h2>",
        html_table(["stage", "wall seconds"], stages),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>N2D update {escaped(manifest['run_id'])}</title>\n<style>{REPORT_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body) + "\n</body>\n</html>\n"
    )
