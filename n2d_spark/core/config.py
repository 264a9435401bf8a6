"""The job's one typed config: dataclasses loaded from YAML, overridden by ``--set``.

Over 300 lines: one dataclass per config section, each key commented where it is declared.

Every key is validated before any work starts, and every error names the key
(``autoencoder.epochs: expected int, got 'ten'``) so that a typo in a 200-line
YAML file costs one rerun, not a stack trace.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from n2d_spark.core.errors import ConfigError


@dataclass(frozen=True)
class InputConfig:
    # "auto" picks the reader from the path's extension (.csv, .csv.gz, .parquet, folders of either).
    format: Literal["auto", "csv", "parquet"] = "auto"
    text_col: str = "review"
    # None: the job assigns a stable id from the file name and the row's position in it.
    id_col: str | None = None
    # A CSV field may span lines (a review with paragraphs), so Spark reads each CSV file whole,
    # in one task. false: one record per line, and an uncompressed or bzip2 file splits into
    # blocks read in parallel (a gzip file never splits): docs/how-it-works.md, "Reading a large input".
    multiline: bool = True
    # A numeric vector column (array of numbers, or a Spark ML vector) to cluster instead of
    # text: the text stage is skipped and ``features.scaling`` replaces ``text.scaling``.
    features_col: str | None = None
    # A date or timestamp column (or strings Spark reads as one, e.g. ISO 8601): enables the
    # topics_over_time/ table and its chart in the report. Rows whose time cannot be read are
    # still clustered; run.json counts them.
    time_col: str | None = None
    # A column naming who wrote each row (a reviewer, an author, a customer): enables users/
    # and similar_users/ (docs/similar.md).
    user_col: str | None = None
    # Longer texts are rejected (text_too_long) rather than embedded.
    max_text_chars: int = 100_000
    # The job fails, publishing nothing, when a larger share of the rows is rejected.
    max_reject_share: float = 0.05


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int = 5000
    # Spark's CountVectorizer semantics: >= 1 is a document count, < 1 a fraction of documents.
    # 2 rather than 5: on the labelled news corpora it raised NMI on AG News and BBC News and
    # left the 50,000 IMDB reviews' vocabulary as it was (docs/choices.md, "A term counts from 2 documents").
    min_df: float = 2.0
    # How count vectors are scaled before the autoencoder sees them (docs/choices.md, "Input scaling").
    scaling: Literal["counts", "binary", "log1p", "tfidf"] = "tfidf"
    l2_normalize: bool = True


@dataclass(frozen=True)
class FeaturesConfig:
    # How the vectors of input.features_col are scaled, per dimension, before the autoencoder.
    scaling: Literal["none", "minmax", "standardize"] = "minmax"


@dataclass(frozen=True)
class AutoencoderConfig:
    sample_rows: int = 25000
    hidden: list[int] = field(default_factory=lambda: [1024, 512, 256])
    bottleneck: int = 10
    epochs: int = 10
    # Train at least this many mini-batch updates: a small sample gets more epochs (docs/choices.md).
    min_steps: int = 200
    batch_size: int = 512
    learning_rate: float = 0.001
    validation_fraction: float = 0.1
    seed: int = 0
    # Training arithmetic: "bfloat16" computes the layers in bfloat16 and keeps the weights and
    # the loss in float32 (Keras mixed precision); "auto" picks it where the CPU multiplies
    # bfloat16 natively (AMX or AVX-512 BF16) and the input is at least 1,024 wide, else
    # float32 (docs/choices.md, "Mixed precision where the CPU has bfloat16").
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # Stop once the validation loss has improved on its best by less than this fraction for
    # two epochs in a row, and keep the best epoch's weights; 0 (the default) trains every
    # epoch. Off by default: on BBC News 0.001 stopped at epoch 39 of 50 and cost 0.013 NMI for
    # 6 s saved; elsewhere the defaults' loss still fell faster (docs/choices.md, "Early stopping").
    early_stopping: float = 0.0


@dataclass(frozen=True)
class EmbedConfig:
    # Rows per Arrow batch handed to the embedding UDF on the executors.
    batch_rows: int = 4096


@dataclass(frozen=True)
class ManifoldConfig:
    n_components: int = 5
    n_neighbors: int = 50
    min_dist: float = 0.0
    metric: str = "euclidean"
    seed: int = 0
    # UMAP and the clusterer are fitted on this many rows (a seeded sample); the other rows
    # are placed and labelled by the fitted models on the executors
    # (docs/how-it-works.md, "Fitting on a sample").
    fit_rows: int = 50_000
    # How the other rows are placed: "learned", by a small network trained on the fit rows'
    # embeddings and coordinates (model/placement.py; a row's place does not depend on its batch);
    # "transform", by UMAP's own transform, about ten times the cost (docs/how-it-works.md).
    placement: Literal["learned", "transform"] = "learned"
    # Rows per batch of UMAP's transform (placement: transform). UMAP's result for a row depends on its
    # batch, and a batch of more than 10,000 rows gets 30 optimisation epochs where a smaller one gets 100.
    batch_rows: int = 20_000


@dataclass(frozen=True)
class ClusterConfig:
    # KMeans with k chosen by silhouette (k: auto): docs/choices.md.
    algorithm: Literal["dbscan", "kmeans", "gmm", "hdbscan"] = "kmeans"
    # Number of clusters for kmeans and gmm; auto: the k in [k_min, k_max] whose KMeans
    # partition of the fit sample has the highest silhouette (docs/choices.md).
    k: int | Literal["auto"] = "auto"
    k_min: int = 5
    k_max: int = 50
    eps: float = 1.0
    # Core-point neighbourhood for dbscan (and hdbscan's min_samples, when set).
    min_samples: int | None = 50
    # hdbscan's smallest cluster; null: 0.5% of the fit rows, at least 10.
    min_cluster_size: int | None = None
    # Give each row a clusterer calls noise the cluster of the nearest centroid in the manifold.
    reduce_outliers: bool = True
    # Merge the most similar clusters (Ward, on their centroids) until this many topics remain.
    n_topics: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class EvaluateConfig:
    # A column of known classes (e.g. sentiment, or the synthetic corpus's planted topic).
    label_col: str | None = None
    # Rows sampled (seeded) for the silhouette score of the manifold coordinates.
    silhouette_rows: int = 5000
    # Also cluster the fit sample with KMeans on the scaled input vectors and on the
    # autoencoder embedding (k = cluster.k): the study's comparison, in run.json and the report.
    baselines: bool = False
    # Fit a second time with every seed moved by one and report the ARI between the two
    # labellings of the fit sample; retrains the autoencoder, so it nearly doubles the cost.
    stability: bool = False
    # Rows of the fit sample drawn on the report's 2-D maps. 5,000: on IMDB the page opened in
    # about 3 s in headless Chromium and its search answered in 0.3 s; at 10,000, 3.5-3.8 s and
    # 0.4-0.5 s (BENCHMARKS.md, "The report in a browser").
    map_rows: int = 5000
    # Rows (a seeded sample) whose terms topic coherence (NPMI) is counted over. NPMI on a small
    # sample is biased low (a pair that never meets in it scores -1): on the 50,000 IMDB reviews
    # the same topics scored 0.016 over 10,000 of them, 0.061 over 25,000 and 0.082 over all.
    coherence_rows: int = 50_000
    # input.time_col: the period topics are counted over; auto: the finest of day, week, month
    # and year that splits the span of the times into at most 60 periods.
    time_bucket: Literal["auto", "day", "week", "month", "year"] = "auto"


@dataclass(frozen=True)
class OutputConfig:
    # error: refuse to touch an existing output; overwrite: replace it once the new one is complete.
    mode: Literal["error", "overwrite"] = "error"
    include_text: bool = False
    top_terms: int = 10
    # Example rows per cluster: their ids in clusters/, their texts in the report.
    examples: int = 3
    # Also write labels/ and clusters/ as catalog tables: this name (db.name or name) and
    # name_clusters. table_mode: fail if either exists, overwrite them, or append to them.
    table: str | None = None
    table_mode: Literal["fail", "overwrite", "append"] = "fail"


@dataclass(frozen=True)
class SimilarConfig:
    # neighbours/: each row's k most similar rows (cosine of the embeddings); 0: not computed.
    k: int = 10
    # The search is cut into cells of about this many rows; each row is searched for in its
    # `probes` nearest cells (model/neighbour_search.py; recall in BENCHMARKS.md).
    cell_rows: int = 2000
    probes: int = 3
    # similar_users/ lists the users with at least this many labelled rows.
    min_user_rows: int = 3


@dataclass(frozen=True)
class UpdateConfig:
    # n2d-spark update (docs/reuse.md, "Keeping a model current"). A novel row is one farther from
    # the model's rows than from the new data's own rows, by more than this quantile of the same
    # ratio between two halves of the training run's fit rows (model/novelty.py); only novel rows
    # can join a new topic (the update's new rows). 0.92 finds 62-63% of a class AG News's model
    # never saw (0.30-0.42 at 0.98); the group test keeps chance-novel rows out of new topics at
    # 1,000,000 rows too (BENCHMARKS.md, "New rows told as groups").
    novelty_quantile: float = 0.92
    # Novel rows form new topics only when at least this many are novel; a new topic is kept only
    # when at least this many rows join it.
    min_topic_rows: int = 50
    # The summary advises a full retrain when a larger share of the rows is in new topics, or when
    # the share of tokens outside the vocabulary rose by more than this over the training data's.
    retrain_new_share: float = 0.2
    retrain_oov_rise: float = 0.05


@dataclass(frozen=True)
class SparkConfig:
    # Used only when the job builds its own session (the n2d-spark console script);
    # under spark-submit the submit line decides.
    master: str = "local[*]"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8


@dataclass(frozen=True)
class JobConfig:
    input: InputConfig = field(default_factory=InputConfig)
    text: TextConfig = field(default_factory=TextConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    manifold: ManifoldConfig = field(default_factory=ManifoldConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    similar: SimilarConfig = field(default_factory=SimilarConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> JobConfig:
    """Defaults, then the YAML file, then ``section.key=value`` overrides, validated as a whole."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
        raw = loaded
    for override in overrides:
        apply_override(raw, override)
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> JobConfig:
    config = _build(JobConfig, raw, prefix="")
    _check_ranges(config)
    return config


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set ``section.key=value`` (the value parsed as YAML) in a raw config mapping."""
    key, sep, value = override.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {override!r}: expected section.key=value, e.g. autoencoder.epochs=10")
    section, name = parts
    target = raw.setdefault(section, {})
    if not isinstance(target, dict):
        raise ConfigError(f"{section}: expected a mapping, got {type(target).__name__}")
    target[name] = _parse_value(section, name, value.strip())


def _parse_value(section: str, name: str, value: str) -> Any:
    """An override's text as the key's type: a text key keeps its text (a column named ``yes``, ``on`` or
    ``2024`` stays a string; ``null`` is None where the key allows it); any other key parses it as YAML,
    so 10 is an int, [1, 2] a list and null None, as in a config file."""
    section_type = typing.get_type_hints(JobConfig).get(section)
    hint = typing.get_type_hints(section_type).get(name) if dataclasses.is_dataclass(section_type) else None
    options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    if options == [str]:
        return None if value in ("null", "~") and type(None) in typing.get_args(hint) else value
    return yaml.safe_load(value) if value else ""


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]} (known keys in "
            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(fields)})"
        )
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, prefix=f"{key}.")
        else:
            values[name] = _coerce(key, value, hint)
    return cls(**values)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _coerce(key, value, options[0])
        # e.g. int | Literal["auto"]: the first type the value fits.
        for option in options:
            try:
                return _coerce(key, value, option)
            except ConfigError:
                continue
        expected = " or ".join(
            ", ".join(map(repr, typing.get_args(o))) if typing.get_origin(o) is Literal else o.__name__ for o in options
        )
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", item, args[0]) for i, item in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is a subclass of int: "epochs: true" must not pass as 1.
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    return value


def _check_ranges(config: JobConfig) -> None:
    positive = {
        "input.max_text_chars": config.input.max_text_chars,
        "text.vocab_size": config.text.vocab_size,
        "text.min_df": config.text.min_df,
        "autoencoder.sample_rows": config.autoencoder.sample_rows,
        "autoencoder.bottleneck": config.autoencoder.bottleneck,
        "autoencoder.epochs": config.autoencoder.epochs,
        "autoencoder.batch_size": config.autoencoder.batch_size,
        "autoencoder.learning_rate": config.autoencoder.learning_rate,
        "embed.batch_rows": config.embed.batch_rows,
        "manifold.n_components": config.manifold.n_components,
        "manifold.n_neighbors": config.manifold.n_neighbors,
        "manifold.fit_rows": config.manifold.fit_rows,
        "manifold.batch_rows": config.manifold.batch_rows,
        "cluster.k": 1 if config.cluster.k == "auto" else config.cluster.k,
        "cluster.k_min": config.cluster.k_min,
        "cluster.n_topics": config.cluster.n_topics or 1,
        "cluster.eps": config.cluster.eps,
        "cluster.min_samples": config.cluster.min_samples or 1,
        "cluster.min_cluster_size": config.cluster.min_cluster_size or 1,
        "evaluate.silhouette_rows": config.evaluate.silhouette_rows,
        "evaluate.map_rows": config.evaluate.map_rows,
        "evaluate.coherence_rows": config.evaluate.coherence_rows,
        "output.examples": config.output.examples,
        "output.top_terms": config.output.top_terms,
        "similar.cell_rows": config.similar.cell_rows,
        "similar.probes": config.similar.probes,
        "similar.min_user_rows": config.similar.min_user_rows,
        "update.min_topic_rows": config.update.min_topic_rows,
        "spark.shuffle_partitions": config.spark.shuffle_partitions,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    if config.similar.k < 0:
        raise ConfigError(f"similar.k: must be >= 0 (0: no neighbours/), got {config.similar.k}")
    if config.autoencoder.min_steps < 0:
        raise ConfigError(f"autoencoder.min_steps: must be >= 0, got {config.autoencoder.min_steps}")
    for i, width in enumerate(config.autoencoder.hidden):
        if width <= 0:
            raise ConfigError(f"autoencoder.hidden[{i}]: must be > 0, got {width}")
    if not 0.0 <= config.input.max_reject_share <= 1.0:
        raise ConfigError(f"input.max_reject_share: must be in [0, 1], got {config.input.max_reject_share}")
    for key in ("novelty_quantile", "retrain_new_share", "retrain_oov_rise"):
        value = getattr(config.update, key)
        if not 0.0 < value < 1.0:
            raise ConfigError(f"update.{key}: must be in (0, 1), got {value}")
    if not 0.0 <= config.autoencoder.early_stopping < 1.0:
        raise ConfigError(f"autoencoder.early_stopping: must be in [0, 1), got {config.autoencoder.early_stopping}")
    if not 0.0 <= config.autoencoder.validation_fraction < 0.5:
        raise ConfigError(
            f"autoencoder.validation_fraction: must be in [0, 0.5), got {config.autoencoder.validation_fraction}"
        )
    if config.cluster.k_max < config.cluster.k_min:
        raise ConfigError(f"cluster.k_max: must be at least cluster.k_min ({config.cluster.k_min}), got {config.cluster.k_max}")
    if config.manifold.min_dist < 0:
        raise ConfigError(f"manifold.min_dist: must be >= 0, got {config.manifold.min_dist}")
    if config.input.features_col is None and config.autoencoder.bottleneck >= config.text.vocab_size:
        raise ConfigError(
            f"autoencoder.bottleneck: must be smaller than text.vocab_size ({config.text.vocab_size}), "
            f"got {config.autoencoder.bottleneck}"
        )
    if config.manifold.n_components > config.autoencoder.bottleneck:
        raise ConfigError(
            f"manifold.n_components: must be at most autoencoder.bottleneck ({config.autoencoder.bottleneck}), "
            f"got {config.manifold.n_components}"
        )
