"""``ClusterAssigner``: the fitted UMAP, the learned placement and the clusterer that place and label
new embeddings, on the driver and on the executors (rows/assign.py ships it), and the ``Assignment`` it returns;
``AddedTopics``: the topics updates added to a model, which a row joins by its nearest rows."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from n2d_spark.model.cluster import FittedClusters
from n2d_spark.model.encoder import Encoder
from n2d_spark.model.manifold import transform


@dataclass
class Assignment:
    """Rows placed and labelled: manifold coordinates, topic, confidence (``FittedClusters.confidence``) and second topic."""

    coordinates: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    second: np.ndarray

    @classmethod
    def of_no_rows(cls) -> Assignment:
        return cls(np.zeros((0, 0), np.float32), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int32))


@dataclass
class AddedTopics:
    """Topics added by updates (model/novelty.py, pipeline.run_update): rows of each, in the embedding space.

    A row joins an added topic when more than half of its ``neighbours`` nearest rows, among the
    model's fit rows and these, are rows of added topics: it takes the most common of their topics
    (ties: the nearest row's), its share of the neighbours as confidence, and the topic the original
    model gives it as second topic. Any other row keeps what the original model gives it.

    Every assign searches and ships these rows, so an update keeps them ``within`` the model's fit rows'
    count (rows/update.py): each topic keeps its first rows, stored in a seeded order.
    """

    rows: np.ndarray
    topics: np.ndarray
    # The update that added each row's topic, counted from 1.
    generation: np.ndarray
    neighbours: int
    metric: str

    @classmethod
    def appended(cls, previous: AddedTopics | None, rows: np.ndarray, topics: np.ndarray, neighbours: int, metric: str) -> AddedTopics:
        """``previous``'s topics (if any) and, as the next update's, ``topics`` with their ``rows``."""
        generation = 1 if previous is None else int(previous.generation.max()) + 1
        rows, topics = rows.astype(np.float32), topics.astype(np.int32)
        generations = np.full(len(rows), generation, np.int32)
        if previous is not None:
            rows, topics = np.vstack([previous.rows, rows]), np.concatenate([previous.topics, topics])
            generations = np.concatenate([previous.generation, generations])
        return cls(rows, topics, generations, neighbours, metric)

    def renumbered(self, ids: dict[int, int | None]) -> AddedTopics | None:
        """These topics with each topic of ``ids`` given its new id, or its rows left out where that is None; None if no row is left."""
        mapped = [ids.get(int(topic), int(topic)) for topic in self.topics]
        topics = np.array([-1 if topic is None else topic for topic in mapped])
        kept = topics >= 0
        if not kept.any():
            return None
        return replace(self, rows=self.rows[kept], topics=topics[kept].astype(np.int32), generation=self.generation[kept])

    def within(self, most_rows: int) -> tuple[AddedTopics, np.ndarray]:
        """These topics with at most ``most_rows`` rows in all, each keeping its first rows (first_of_each_topic), and
        which rows stayed."""
        kept = first_of_each_topic(self.topics, most_rows)
        return replace(self, rows=self.rows[kept], topics=self.topics[kept], generation=self.generation[kept]), kept

    def relabel(self, assignment: Assignment, embeddings: np.ndarray, known_rows: np.ndarray) -> Assignment:
        """``assignment`` of ``embeddings`` with the rows that join an added topic relabelled.

        ``known_rows``: the model's fit rows, then these rows (``ClusterAssigner.known_rows``).
        """
        if not len(embeddings):
            return assignment
        from sklearn.neighbors import NearestNeighbors

        k = min(self.neighbours, len(known_rows))
        _, nearest = NearestNeighbors(algorithm="brute", metric=self.metric).fit(known_rows).kneighbors(
            np.asarray(embeddings, np.float32), n_neighbors=k
        )
        added = nearest - (len(known_rows) - len(self.rows))
        in_added = added >= 0
        joins = in_added.sum(axis=1) * 2 > k
        labels, confidence, second = assignment.labels.copy(), assignment.confidence.copy(), assignment.second.copy()
        for row in np.flatnonzero(joins):
            topics = self.topics[added[row][in_added[row]]]
            values, counts = np.unique(topics, return_counts=True)
            best = values[counts == counts.max()]
            topic = topics[np.isin(topics, best)][0]
            second[row] = labels[row]
            labels[row] = topic
            confidence[row] = np.float32((topics == topic).sum() / k)
        return replace(assignment, labels=labels, confidence=confidence, second=second)


def first_of_each_topic(topics: np.ndarray, most_rows: int) -> np.ndarray:
    """Which rows of ``topics`` (each row's topic) to keep so that at most ``most_rows`` are: the first ``cap`` rows of
    each topic, all of a smaller one's, ``cap`` the largest that keeps within ``most_rows`` (at least 1, so that
    no topic is lost: more topics than ``most_rows`` keep a row each)."""
    _, topic_of, sizes = np.unique(topics, return_inverse=True, return_counts=True)
    if sizes.sum() <= most_rows:
        return np.ones(len(topics), bool)
    ascending = np.sort(sizes)
    cap = 1
    for i, size in enumerate(ascending):
        # The rows left once the topics smaller than this one keep all of theirs, shared by it and the larger ones.
        share = (most_rows - int(ascending[:i].sum())) // (len(ascending) - i)
        if share < size:
            cap = max(1, share)
            break
    by_topic = np.argsort(topic_of, kind="stable")
    place = np.empty(len(topics), np.int64)
    place[by_topic] = np.arange(len(topics)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return place < cap


@dataclass
class ClusterAssigner:
    """The fitted UMAP and clusterer, and any topics updates added: embeddings in, manifold coordinates and cluster labels out.

    ``placement`` (model/placement.py) maps an embedding to its manifold coordinates, row by row; None (a
    model trained with ``manifold.placement: transform``, or before placements were learned) places rows
    with UMAP's transform, whose result depends on the batch a row arrives in.
    """

    reducer: object
    clusters: FittedClusters
    added: AddedTopics | None = None
    placement: Encoder | None = None

    def assign(self, embeddings: np.ndarray) -> Assignment:
        assignment = self.assign_original(embeddings)
        if self.added is None:
            return assignment
        return self.added.relabel(assignment, embeddings, self.known_rows)

    def assign_original(self, embeddings: np.ndarray) -> Assignment:
        """What the model gives without its added topics."""
        if self.placement is None:
            coordinates = transform(self.reducer, embeddings)
        else:
            coordinates = self.placement(np.asarray(embeddings, np.float32))
        labels = self.clusters.predict(coordinates)
        return Assignment(coordinates, labels, *self.clusters.confidence(coordinates, labels))

    @property
    def places_by_batch(self) -> bool:
        """Whether a row's place depends on the rows placed with it (UMAP's transform), so that batches must be fixed by the data."""
        return self.placement is None

    @property
    def fit_rows(self) -> np.ndarray:
        """The embeddings UMAP was fitted on."""
        return self.reducer._raw_data

    @property
    def known_rows(self) -> np.ndarray:
        """The rows the model knows, in the embedding space: its fit rows, then the rows of the topics updates added."""
        if self.added is None:
            return self.fit_rows
        return np.vstack([self.fit_rows, self.added.rows]).astype(np.float32, copy=False)
