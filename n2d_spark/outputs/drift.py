"""What an update run says in run.json of how the new data differs from the model's: its novel rows,
its new topics and the rows that joined them, each old topic's share then and now, the words the frozen vocabulary lacks, and
whether a full retrain is advised."""

from __future__ import annotations

from n2d_spark.core.columns import CLUSTER_COL
from n2d_spark.core.config import JobConfig
from n2d_spark.model.bundle import ModelBundle
from n2d_spark.outputs.tables import Written
from n2d_spark.rows.update import UpdatedRows


def drift(
    bundle: ModelBundle, config: JobConfig, written: Written, done: UpdatedRows, n_rows: int, out_of_vocabulary_share: float | None,
) -> dict:
    """run.json's ``update``: of the ``n_rows`` embedded rows, the novel ones and the new ones (those that joined a new topic)."""
    summary, found = written.summary, done.update.topics
    total = int(summary["size"].sum())
    size_of = dict(zip(summary[CLUSTER_COL].astype(int), summary["size"].astype(int)))
    name_of = dict(zip(summary[CLUSTER_COL].astype(int), summary["name"]))
    new_share = done.n_new / n_rows if n_rows else 0.0
    trained_oov = bundle.topics.out_of_vocabulary_share
    why = []
    if new_share > config.update.retrain_new_share:
        why.append(f"{new_share:.1%} of the rows are in new topics (update.retrain_new_share: {config.update.retrain_new_share:.0%})")
    if out_of_vocabulary_share is not None and trained_oov is not None:
        rise = out_of_vocabulary_share - trained_oov
        if rise > config.update.retrain_oov_rise:
            why.append(
                f"{out_of_vocabulary_share:.1%} of the words are outside the vocabulary, {trained_oov:.1%} in the training data "
                f"(update.retrain_oov_rise: {config.update.retrain_oov_rise:.0%})"
            )
    return {
        "parent_model": bundle.model_id,
        "new_rows": done.n_new,
        "new_row_share": new_share,
        "novel_rows": done.update.n_novel,
        "novel_row_share": done.update.n_novel / n_rows if n_rows else 0.0,
        "novelty": done.update.novelty.about,
        "new_topics": [
            {"cluster": c, "name": name_of.get(c), "rows": size_of.get(c, 0), "share": size_of.get(c, 0) / total if total else 0.0,
             "examples": written.example_texts.get(c, [])}
            for c in found.topic_ids
        ],
        "new_topic_search": found.about,
        "topic_shares": [
            {"cluster": t.cluster, "name": t.name or name_of.get(t.cluster), "at_training": t.share,
             "in_new": size_of.get(t.cluster, 0) / total if total else 0.0}
            for t in bundle.topics.topics
        ],
        "out_of_vocabulary_share": {"training": trained_oov, "new": out_of_vocabulary_share},
        "frozen": "the vocabulary, the encoder, the UMAP and the old topics are the parent model's",
        "retrain_advised": bool(why),
        "why": why,
    }
