"""What each config key means: the one source of ``n2d-spark config`` and of docs/configuration.md's table."""

from __future__ import annotations

from typing import Any

import yaml

from n2d_spark.core.config import JobConfig

MEANINGS: dict[str, str] = {
    'input.format': '`csv`, `parquet`, or `auto` (from the extension: `.csv`, `.csv.gz`, `.tsv`, `.parquet`)',
    'input.text_col': 'the text column',
    'input.id_col': 'an id column of the input; `null`: the job assigns stable ids',
    'input.multiline': 'a CSV field may span lines, and each CSV file is read whole by one task; `false`: one record per line, and a file that is not gzip splits across tasks',
    'input.features_col': 'a numeric vector column to cluster instead of text (see "Vectors instead of text")',
    'input.time_col': 'a date or timestamp column: writes topics_over_time/ and its chart (see "Topics over time")',
    'input.user_col': 'a column naming who wrote each row (a reviewer, an author): writes users/ and similar_users/ (see "Similar rows")',
    'input.max_text_chars': 'longer texts are rejected (`text_too_long`)',
    'input.max_reject_share': 'the job fails when a larger share of rows is rejected',
    'text.vocab_size': 'the `CountVectorizer` vocabulary: the most frequent terms',
    'text.min_df': 'a term must occur in this many documents (below 1.0: this fraction of them)',
    'text.scaling': '`counts`, `binary`, `log1p` or `tfidf`: what the autoencoder sees (see "Input scaling")',
    'text.l2_normalize': 'scale each row to norm sqrt(vocabulary size), i.e. mean squared entry 1',
    'features.scaling': 'vector mode: `none`, `minmax` or `standardize`, per dimension',
    'autoencoder.sample_rows': 'rows the autoencoder trains on (all when fewer)',
    'autoencoder.hidden': 'encoder widths (ReLU); the decoder mirrors them',
    'autoencoder.bottleneck': 'embedding width (linear)',
    'autoencoder.epochs': 'training epochs (at least; see `min_steps`)',
    'autoencoder.min_steps': 'at least this many mini-batch updates: a small sample trains for more epochs (`0`: exactly `epochs`)',
    'autoencoder.batch_size': 'training batch size',
    'autoencoder.learning_rate': "Adam's learning rate",
    'autoencoder.validation_fraction': 'share of the sample held out for the validation loss',
    'autoencoder.seed': 'seeds the sample, the split, the weights and the shuffling',
    'autoencoder.precision': '`float32`, `bfloat16` (mixed: bfloat16 arithmetic, float32 weights and loss), or `auto`: `bfloat16` where the CPU multiplies bfloat16 natively (AMX or AVX-512 BF16 in `/proc/cpuinfo`), no GPU is visible and the input is at least 1,024 wide. The precision moves the topics about as much as another seed does (AG News: ARI 0.56 between the two; BENCHMARKS.md, issue 31): to get the same topics on machines of different kinds, set `float32` everywhere (about twice the training time where bfloat16 was used)',
    'autoencoder.early_stopping': 'stop once the validation loss improved on its best by less than this fraction for 2 epochs in a row, keeping the best weights; 0: every epoch',
    'embed.batch_rows': 'rows the encoder embeds at a time in the embedding UDF: bounds its memory; the embeddings do not depend on it',
    'manifold.fit_rows': 'rows UMAP and the clusterer are fitted on; the rest are assigned on the executors',
    'manifold.placement': '`learned`: the rows outside the fit sample are placed by a small network trained on the fit rows (the same place in any batch); `transform`: by UMAP\'s transform (see "Fitting on a sample")',
    'manifold.batch_rows': 'rows per UMAP transform batch on the executors, with `placement: transform` (see "Batches and determinism")',
    'manifold.n_components': 'UMAP output dimensions (at most the bottleneck)',
    'manifold.n_neighbors': 'UMAP neighbourhood size',
    'manifold.min_dist': 'UMAP minimum distance',
    'manifold.metric': "UMAP metric; `euclidean`, `manhattan`, `chebyshev`, `cosine`, `correlation`, `canberra` and `braycurtis` get exact neighbours, any other UMAP metric pynndescent's approximate ones",
    'manifold.seed': "UMAP's random state (a seeded UMAP runs single-threaded)",
    'cluster.algorithm': '`dbscan`, `kmeans`, `gmm` (full covariance) or `hdbscan`',
    'cluster.k': 'clusters for `kmeans` and `gmm`; `auto`: the k in [`k_min`, `k_max`] with the highest silhouette (see "Choices and why")',
    'cluster.k_min': 'the smallest k that `k: auto` tries',
    'cluster.k_max': 'the largest k that `k: auto` tries (every k up to 20, then every fifth)',
    'cluster.eps': "DBSCAN's neighbourhood radius",
    'cluster.min_samples': "DBSCAN's core-point count; HDBSCAN's `min_samples` (`null`: its smallest cluster's size)",
    'cluster.min_cluster_size': "HDBSCAN's smallest cluster; `null`: 0.5% of the fit rows, at least 10",
    'cluster.reduce_outliers': 'a row DBSCAN or HDBSCAN calls noise joins the cluster whose centroid (fit sample, UMAP space) is nearest; `run.json` keeps the noise share before',
    'cluster.n_topics': 'merge the nearest clusters (Ward linkage of their centroids) until this many remain; every row is relabelled',
    'cluster.seed': 'random state of `kmeans` and `gmm`',
    'evaluate.silhouette_rows': 'rows sampled for the silhouette score in `run.json`',
    'evaluate.label_col': 'a column of known classes; the manifest then reports accuracy (best matching), ARI, NMI and the noise share against it',
    'evaluate.baselines': 'also cluster the fit sample with KMeans on the raw vectors and on the embedding',
    'evaluate.stability': 'refit with every seed plus one and report the ARI between the two labellings',
    'evaluate.map_rows': "fit rows drawn on the report's 2-D maps, the interactive one included",
    'evaluate.coherence_rows': 'rows (a seeded sample) over whose terms topic coherence (NPMI) is counted',
    'evaluate.time_bucket': 'the period of topics over time: day, week, month, year, or auto (at most 60 periods)',
    'output.mode': '`error` or `overwrite` when the output exists',
    'output.include_text': 'copy the text column (vector mode: the features column) into `labels/`',
    'output.top_terms': 'top terms per cluster in `clusters/`',
    'output.examples': 'example rows per cluster: ids in `clusters/`, texts in the report',
    'output.table': 'also write catalog tables `NAME` and `NAME_clusters` (`--table`)',
    'output.table_mode': '`fail`, `overwrite` or `append` when a table exists (`--table-mode`)',
    'similar.k': 'each row\'s most similar rows written to neighbours/ (cosine of the embeddings, see "Similar rows"); `0`: none',
    'similar.cell_rows': 'the neighbour search is cut into cells of about this many rows: smaller is faster and misses more',
    'similar.probes': 'cells searched for each row (its nearest): more finds more and costs more',
    'similar.min_user_rows': 'similar_users/ lists the users with at least this many labelled rows',
    'update.novelty_quantile': '`update`: a row is novel when it is farther from the model\'s rows than from the new data\'s own by more than this quantile of that ratio on the training rows (in the embedding and, for text, in the terms); only novel rows can join a new topic (see "Keeping a model current")',
    'update.min_topic_rows': '`update`: novel rows form new topics only when at least this many are novel, and a new topic is kept only when at least this many rows join it',
    'update.retrain_new_share': '`update`: a larger share of rows in new topics makes the summary advise a full retrain',
    'update.retrain_oov_rise': "`update`: so does a rise of the share of tokens outside the model's vocabulary by more than this over the training data's",
    'spark.master': 'master for the `n2d-spark` console script (spark-submit ignores it)',
    'spark.driver_memory': 'driver memory for the console script',
    'spark.shuffle_partitions': '`spark.sql.shuffle.partitions` for the console script',
}


def _flat(config: JobConfig) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, keys in config.to_dict().items() for key, value in keys.items()}


def _yaml_value(value: Any) -> str:
    """``value`` as YAML reads it back: a string YAML would misread (``2024``, ``yes``) quoted."""
    return yaml.safe_dump(value, default_flow_style=True, width=1_000).removesuffix("\n...\n").strip()


def config_yaml(config: JobConfig) -> str:
    """``config`` as YAML that ``--config`` reads back, each key commented with its meaning and,
    where the value is not the default, the default."""
    defaults = _flat(JobConfig())
    lines, section = [], None
    for key, value in _flat(config).items():
        key_section, name = key.split(".", 1)
        if key_section != section:
            section = key_section
            lines.append(f"{section}:")
        note = MEANINGS[key].replace("`", "")
        if value != defaults[key]:
            note += f" (default: {_yaml_value(defaults[key])})"
        lines.append(f"  {f'{name}: {_yaml_value(value)}':<36} # {note}")
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The configuration table of docs/configuration.md."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{key}` | `{_yaml_value(value)}` | {MEANINGS[key]} |" for key, value in _flat(JobConfig()).items()]
    return "\n".join(rows) + "\n"
