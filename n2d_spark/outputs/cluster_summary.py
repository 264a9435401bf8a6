"""Per-cluster summary: size and top terms ranked by class-based TF-IDF.

The term counts of each cluster are summed in Spark (``Summarizer.sum`` grouped by
cluster), so only a clusters-by-vocabulary matrix reaches the driver; the ranking on
that small matrix follows BERTopic's c-TF-IDF with its ``reduce_frequent_words`` option:
the square root of a term's share of its cluster's words, weighted by
log(1 + average words per cluster / the term's count over all clusters). Without the
square root, words common everywhere ("movie", "film") top every cluster's list.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pandas as pd
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from n2d_spark.core.columns import CLUSTER_COL, ID_COL
from n2d_spark.core.config import JobConfig
from n2d_spark.rows.sampling import hash_sample
from n2d_spark.rows.text import COUNTS_COL
from n2d_spark.rows.vectorize import featurize


def class_tfidf(term_counts: np.ndarray) -> np.ndarray:
    """c-TF-IDF scores for a (clusters x vocabulary) matrix of summed term counts."""
    term_counts = np.asarray(term_counts, dtype=np.float64)
    words_per_cluster = term_counts.sum(axis=1, keepdims=True)
    tf = np.sqrt(np.divide(term_counts, words_per_cluster, out=np.zeros_like(term_counts), where=words_per_cluster > 0))
    term_totals = term_counts.sum(axis=0)
    average_words = words_per_cluster.mean()
    idf = np.log1p(np.divide(average_words, term_totals, out=np.zeros_like(term_totals), where=term_totals > 0))
    return tf * idf


def top_terms(scores: np.ndarray, term_counts: np.ndarray, vocabulary: list[str], n: int) -> list[list[str]]:
    """The ``n`` best-scoring terms of each cluster, ties broken by vocabulary order; absent terms never listed.

    A term without a letter ("146", "00", "2004") is never listed: it stays in the count vectors,
    where it can help the embedding, but a reader cannot tell a topic by it.
    """
    nameable = np.array([any(character.isalpha() for character in term) for term in vocabulary], dtype=bool)
    result = []
    for row_scores, row_counts in zip(scores, term_counts):
        order = np.lexsort((np.arange(len(row_scores)), -row_scores))
        listed = order[nameable[order] & (row_counts[order] > 0)]
        result.append([vocabulary[i] for i in listed[:n]])
    return result


def topic_name(cluster: int, terms: list[str], n_terms: int = 3) -> str:
    """A readable name from a cluster's best terms, as BERTopic writes them: ``3_vampire_blood_dracula``."""
    return "_".join([str(cluster), *terms[:n_terms]])


def cluster_summary(labelled: DataFrame, vocabulary: list[str] | None, n_terms: int) -> pd.DataFrame:
    """One row per cluster: ``cluster``, ``name``, ``size``, ``top_terms`` (best first), ordered by cluster.

    Without a vocabulary (vector mode) the clusters have no terms: ``top_terms`` is empty.
    """
    sums = [Summarizer.sum(F.col(COUNTS_COL)).alias("term_counts")] if vocabulary is not None else []
    rows = labelled.groupBy(CLUSTER_COL).agg(F.count("*").alias("size"), *sums).orderBy(CLUSTER_COL).collect()
    if vocabulary is None or not rows:
        terms = [[] for _ in rows]
    else:
        term_counts = np.vstack([row["term_counts"].toArray() for row in rows])
        terms = top_terms(class_tfidf(term_counts), term_counts, vocabulary, n_terms)
    clusters = [row[CLUSTER_COL] for row in rows]
    return pd.DataFrame(
        {
            CLUSTER_COL: np.array(clusters, dtype=np.int32),
            "name": [topic_name(c, t) for c, t in zip(clusters, terms)],
            "size": np.array([row["size"] for row in rows], dtype=np.int64),
            "top_terms": terms,
        }
    )


def fresh_names(rows: DataFrame, labels: DataFrame, clusters: list[int], config: JobConfig) -> pd.DataFrame:
    """``cluster_summary`` of ``clusters`` (indexed by cluster) over a vocabulary fitted on the rows' own words, not a
    model's frozen one, which lacks the words of a subject its training data did not have: how an update names the
    topics it adds.

    ``rows``: id, the text column (``config.input.text_col``) and the reject reason; ``labels``: id and cluster.
    The names contrast the rows of ``clusters`` with the other rows, one seeded sample of at most
    ``evaluate.coherence_rows`` of each: vectorizing every row again made the write stage of a
    1,000,000-row update 111 s longer than assign's (BENCHMARKS.md, "Keeping a model current").
    The other rows keep their own topics: lumped in one class, they left c-TF-IDF so few classes
    that the words of every review ("movie", "film") outweighed a new genre's own in both of its
    topics' names (BENCHMARKS.md, "The group test weighed by the data's sizes").
    """
    limit, seed = config.evaluate.coherence_rows, config.cluster.seed
    in_clusters = F.col(CLUSTER_COL).isin(clusters)
    picked = _at_most(labels.filter(in_clusters), limit, seed).unionByName(_at_most(labels.filter(~in_clusters), limit, seed))
    with ExitStack() as held:
        fresh = featurize(rows.join(picked.select(ID_COL), ID_COL), config, held=held)
        labelled = fresh.rows.join(picked, ID_COL)
        summary = cluster_summary(labelled, fresh.vocabulary, config.output.top_terms)
        return summary[summary[CLUSTER_COL].isin(clusters)].set_index(CLUSTER_COL)


def _at_most(rows: DataFrame, n_rows: int, seed: int) -> DataFrame:
    """``rows``, or a seeded sample of ``n_rows`` of them where they are more (sampling.hash_sample)."""
    return rows if rows.count() <= n_rows else hash_sample(rows, n_rows, seed)
