"""A model's topics as a reader knows them, kept in its bundle (topics.json): each topic's name,
top terms, share of the data it was found in and the model it first appeared in; and the share of
that data's tokens outside the vocabulary. ``update`` keeps old topics' names and compares shares."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import pandas as pd

from n2d_spark.core.columns import CLUSTER_COL, NOISE


@dataclass(frozen=True)
class Topic:
    cluster: int
    # None for a model the estimator fitted: only the job's write stage names a training run's topics
    # (the estimator's update names those it adds).
    name: str | None
    top_terms: tuple[str, ...]
    # The topic's share of the labelled rows of the data it was found in (the training data, or an update's new data).
    share: float
    # The model whose training or update found the topic; None: the model that holds this record.
    first_model: str | None = None


@dataclass(frozen=True)
class ModelTopics:
    topics: tuple[Topic, ...]
    # Of the training data's tokens (after stop words), the share outside the vocabulary; None in vector mode.
    out_of_vocabulary_share: float | None = None

    def updated(self, parent_model_id: str, new: tuple[Topic, ...]) -> ModelTopics:
        """The topics of an update of this model (``parent_model_id``): these, each first appeared in the parent
        or before, then the ``new`` ones; the training data's out-of-vocabulary share stays."""
        old = tuple(replace(t, first_model=t.first_model or parent_model_id) for t in self.topics)
        return ModelTopics(old + new, self.out_of_vocabulary_share)

    def to_json(self) -> bytes:
        return json.dumps(
            {"topics": [asdict(t) for t in self.topics], "out_of_vocabulary_share": self.out_of_vocabulary_share},
            indent=1, sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ModelTopics:
        raw = json.loads(data.decode("utf-8"))
        topics = []
        for entry in raw["topics"]:
            name, first = entry["name"], entry["first_model"]
            if not (isinstance(entry["cluster"], int) and isinstance(entry["share"], (int, float))
                    and (name is None or isinstance(name, str)) and (first is None or isinstance(first, str))
                    and all(isinstance(term, str) for term in entry["top_terms"])):
                raise ValueError(f"topic entry {entry!r} has a field of the wrong type")
            topics.append(Topic(entry["cluster"], name, tuple(entry["top_terms"]), float(entry["share"]), first))
        oov = raw["out_of_vocabulary_share"]
        return cls(tuple(topics), None if oov is None else float(oov))


def topics_of(summary: pd.DataFrame, out_of_vocabulary_share: float | None, total: int | None = None) -> ModelTopics:
    """The topics of a cluster summary (cluster, name, size, top_terms; outputs/tables.summarize): noise is no topic.

    A topic's share is of ``total`` rows (default: the summary's).
    """
    total = int(summary["size"].sum()) if total is None else total
    topics = tuple(
        Topic(int(row[CLUSTER_COL]), row["name"], tuple(row["top_terms"]), int(row["size"]) / total if total else 0.0)
        for _, row in summary.sort_values(CLUSTER_COL).iterrows() if row[CLUSTER_COL] != NOISE
    )
    return ModelTopics(topics, out_of_vocabulary_share)
