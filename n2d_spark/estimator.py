"""N2D as a Spark ML estimator: ``N2D(...).fit(df)`` is an ``N2DModel`` that labels any DataFrame.

``N2D`` takes the job's config (``JobConfig``, or sections of it as keywords): every key means
what it means to the job (docs/configuration.md; ``n2d-spark config``). Of ``input.*`` only
``max_text_chars`` and ``max_reject_share`` apply: the input column and the id column are the
estimator's ``inputCol`` and ``idCol``, and a string ``inputCol`` is text mode, a vector or
numeric array one vector mode. ``evaluate.*``, ``output.*`` and ``spark.*`` play no part: a fit
writes nothing and reports nothing.

``N2DModel.transform`` is lazy and adds ``outputCol`` (the cluster), ``umap``, ``embedding``
(with ``withEmbedding``) and ``reject_reason`` to every row; how rows get their ids, and why
labels do not depend on partitioning, is in rows/estimator_stages.py. A model saves as Spark's metadata plus
the job's model bundle (``PATH/model/``, model/bundle.py), so ``n2d-spark assign --model PATH/model``
reads it too; it also saves and loads inside a ``PipelineModel``.

Over 300 lines: the estimator, its model and their Spark ML reader and writer, which must sit together.
"""

from __future__ import annotations

import copy
import dataclasses
from contextlib import ExitStack
from typing import Any

import pandas as pd
from pyspark.ml import Estimator, Model
from pyspark.ml.linalg import VectorUDT
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from n2d_spark.core.columns import CLUSTER_COL, CONFIDENCE_COL, EMBEDDING_COL, ID_COL, SECOND_CLUSTER_COL, quoted
from n2d_spark.core.config import JobConfig, config_from_dict
from n2d_spark.core.errors import InputError
from n2d_spark.core.fs import ConnectFileSystem, file_system
from n2d_spark.core.resources import persisted
from n2d_spark.core.run_context import new_run_id
from n2d_spark.model.bundle import load_bundle, save_bundle
from n2d_spark.model.topics import ModelTopics, Topic
from n2d_spark.outputs.cluster_summary import fresh_names
from n2d_spark.outputs.publish import MODEL_DIR, publish
from n2d_spark.rows.estimator_stages import (
    FittedN2D, check_input, embedded_frame, fit_frame, label_frame, row_key, term_rows, text_rows,
)
from n2d_spark.rows.update import find_new, labelled_by_update
from n2d_spark.rows.similar import QUERY_COL, QUERY_EMBEDDING_COL, check_query_count, most_similar
from n2d_spark.rows.vector_mode import check_features_type


class _N2DParams(HasInputCol, HasOutputCol):
    """The Params N2D and N2DModel share (N2D.fit copies them to the model)."""

    idCol: Param[str] = Param(
        Params._dummy(), "idCol",
        "a column of unique row ids; unset: a row's id is the MD5 of its input value (n2d_spark.rows.estimator_stages)",
        typeConverter=TypeConverters.toString,
    )
    withEmbedding: Param[bool] = Param(
        Params._dummy(), "withEmbedding", "transform also adds the autoencoder's output as the column 'embedding'",
        typeConverter=TypeConverters.toBoolean,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(outputCol=CLUSTER_COL, withEmbedding=False)

    def getIdCol(self) -> str | None:
        return self.getOrDefault(self.idCol) if self.isDefined(self.idCol) else None

    def getWithEmbedding(self) -> bool:
        return self.getOrDefault(self.withEmbedding)


def _as_config_dict(value: Any) -> dict[str, Any]:
    """A JobConfig, or a mapping of its sections (validated: a ConfigError names a bad key), as a plain dict."""
    if isinstance(value, JobConfig):
        return value.to_dict()
    if isinstance(value, dict):
        return config_from_dict(value).to_dict()
    raise TypeError(f"expected a JobConfig or a mapping of config sections, got {type(value).__name__}")


class N2D(Estimator, _N2DParams, DefaultParamsReadable, DefaultParamsWritable):
    """Autoencoder, UMAP and a shallow clusterer, fitted on a DataFrame's text (or vector) column.

    ``N2D(config, inputCol=..., idCol=..., autoencoder={"epochs": 5}, cluster={"k": 8})``: ``config``
    (default: the job's defaults) with the keyword sections laid over it key by key. ``inputCol``
    defaults to the config's ``input.features_col`` or ``input.text_col``, ``idCol`` to its ``input.id_col``.
    """

    config: Param[dict] = Param(
        Params._dummy(), "config",
        "the job's config, as a mapping of sections (n2d_spark.core.config.JobConfig; keys: docs/configuration.md)",
        typeConverter=_as_config_dict,
    )

    def __init__(
        self, config: JobConfig | None = None, *, inputCol: str | None = None, outputCol: str = CLUSTER_COL,
        idCol: str | None = None, withEmbedding: bool = False, **sections: dict[str, Any],
    ) -> None:
        super().__init__()
        raw = (config or JobConfig()).to_dict()
        for section, values in sections.items():
            # A section that is not a mapping, or not a section at all, is left for the validation to name.
            known = isinstance(values, dict) and isinstance(raw.get(section), dict)
            raw[section] = {**raw[section], **values} if known else values
        resolved = config_from_dict(raw)
        self._set(
            config=resolved.to_dict(), outputCol=outputCol, withEmbedding=withEmbedding,
            inputCol=inputCol or resolved.input.features_col or resolved.input.text_col,
        )
        if idCol or resolved.input.id_col:
            self._set(idCol=idCol or resolved.input.id_col)

    def getConfig(self) -> JobConfig:
        return config_from_dict(self.getOrDefault(self.config))

    def _fit(self, dataset: DataFrame) -> N2DModel:
        input_col, id_col = self.getInputCol(), self.getIdCol()
        check_input(dataset, input_col, id_col, [])
        raw = copy.deepcopy(self.getOrDefault(self.config))
        text = _is_text(dataset, input_col)
        raw["input"].update(
            text_col=input_col if text else raw["input"]["text_col"], features_col=None if text else input_col, id_col=id_col
        )
        return self._copyValues(N2DModel(fit_frame(dataset, config_from_dict(raw))))


class N2DModel(Model, _N2DParams, MLReadable, MLWritable):
    """A fitted N2D: ``transform`` adds a cluster, UMAP coordinates and a reject reason to every row.

    ``N2DModel.load(path, allow_pickle=True)`` loads a saved model whose bundle holds a pickle (a
    format 1 bundle, or a UMAP that searches pynndescent's index), which by default is refused:
    loading a pickle runs code, so only for a trusted model (bundle.load_bundle, ``assign --allow-pickle``).
    """

    def __init__(self, fitted: FittedN2D) -> None:
        super().__init__()
        self._fitted = fitted
        self._set(inputCol=fitted.source_col)

    def getConfig(self) -> JobConfig:
        """The config the model was fitted with (input.text_col or input.features_col: the input column then)."""
        return self._fitted.config

    @property
    def modelId(self) -> str | None:
        """The bundle's id (model/bundle.py: a hash of its parts) once saved or loaded; None before."""
        return self._fitted.model_id

    def _transform(self, dataset: DataFrame) -> DataFrame:
        input_col = self.getInputCol()
        check_input(dataset, input_col, self.getIdCol(), [])
        self._check_mode(dataset)
        return label_frame(
            dataset, self._fitted, input_col=input_col,
            output_col=self.getOutputCol(), id_col=self.getIdCol(), with_embedding=self.getWithEmbedding(),
        )

    def _check_mode(self, dataset: DataFrame) -> None:
        """Refuse an input column of the other mode than the fit's (text against vectors)."""
        input_col = self.getInputCol()
        check_input(dataset, input_col, None, [])
        if _is_text(dataset, input_col) != (self._fitted.config.input.features_col is None):
            fitted_on = "text" if self._fitted.config.input.features_col is None else "vectors"
            raise InputError(f"input column {input_col!r}: this model was fitted on {fitted_on}")

    def similar(self, dataset: DataFrame, queries: DataFrame, k: int = 10) -> DataFrame:
        """For each row of ``queries``, the ``k`` rows of ``dataset`` most similar to it; lazy, but for a
        count of ``queries``: more than ``rows.similar.MAX_QUERIES`` (10,000) are refused.

        Both DataFrames have the model's input column (texts, or vectors). Similarity is the
        cosine of the autoencoder's embeddings, by an exact scan on the executors (the job's
        neighbours/ table searches cells instead: docs/similar.md); neither side is placed on the
        UMAP or clustered. The result is ``dataset``'s columns, ``query``, ``rank`` (1..k) and
        ``similarity``. ``query`` is the query's idCol value when idCol is set and ``queries`` has
        that column, else its input value. A query is not its own neighbour: with idCol in both,
        the row of ``dataset`` with the query's id is left out (ids name the same rows on both
        sides); with idCol but a ``queries`` without it, no row is; without idCol, the rows with
        the query's input value are. Rows the model cannot embed take no part (with idCol: a null
        or repeated id, on either side).
        """
        if k <= 0:
            raise InputError(f"k must be at least 1, got {k}")
        self._check_mode(dataset)
        self._check_mode(queries)
        check_query_count(queries)
        input_col, id_col = self.getInputCol(), self.getIdCol()
        query_id_col = id_col if id_col in queries.columns else None
        key = "_n2d_similar_key"
        rows = embedded_frame(dataset, self._fitted, input_col=input_col, id_col=id_col)
        rows = rows.withColumn(key, row_key(rows, input_col, id_col))
        asked = embedded_frame(queries, self._fitted, input_col=input_col, id_col=query_id_col).filter(F.col(EMBEDDING_COL).isNotNull())
        asked = asked.select(
            F.col(quoted(query_id_col or input_col)).alias(QUERY_COL),
            row_key(asked, input_col, query_id_col).alias(f"{key}_query"),
            F.col(EMBEDDING_COL).alias(QUERY_EMBEDDING_COL),
        ).dropDuplicates([f"{key}_query"])
        # Keys compare only when of one kind: ids on both sides, or input values' hashes on both.
        own = F.col(key) == F.col(f"{key}_query") if query_id_col == id_col else None
        found = most_similar(rows, asked, k, ties=[F.col(key)], exclude=own)
        return found.drop(key, f"{key}_query", EMBEDDING_COL)

    def update(self, dataset: DataFrame, **settings: Any) -> N2DModel:
        """A model that also has the topics ``dataset`` brings and this one lacks: ``n2d-spark update``'s model
        (docs/reuse.md, "Keeping a model current"), without its tables.

        Every row of ``dataset`` (the model's input column) is embedded and placed by this model; the
        rows it does not describe (model/novelty.py) and the groups they form are found as the job
        finds them, with this model's config and ``settings`` for the ``update`` keys
        (``novelty_quantile=0.99``, ``min_topic_rows=100``). The returned model's topics are this
        one's, under the same ids, and the new ones after them, named as the job names them: by
        c-TF-IDF over a vocabulary fitted on ``dataset``'s rows (in vector mode, unnamed). This model
        must be saved or loaded: the update names it as its parent by its id.
        """
        fitted = self._fitted
        if fitted.model_id is None:
            raise InputError("save the model before updating it: the updated model names its parent by the saved model's id")
        if fitted.topics is None or fitted.novelty is None:
            raise InputError(
                f"model {fitted.model_id} cannot be updated: it has no novelty calibration "
                "(saved before format 4, or fitted on too few rows); fit a new model"
            )
        raw = fitted.config.to_dict()
        raw["update"].update(settings)
        config = config_from_dict(raw)
        input_col, id_col = self.getInputCol(), self.getIdCol()
        labelled = self.transform(dataset, {self.withEmbedding: True})
        with ExitStack() as held:
            rows = labelled.filter(F.col(EMBEDDING_COL).isNotNull()).select(
                row_key(labelled, input_col, id_col).alias(ID_COL), F.col(quoted(self.getOutputCol())).alias(CLUSTER_COL),
                CONFIDENCE_COL, SECOND_CLUSTER_COL, EMBEDDING_COL,
            ).dropDuplicates([ID_COL])
            terms_col = None
            if fitted.novelty.terms is not None:
                terms, terms_col = term_rows(dataset, fitted, input_col=input_col, id_col=id_col)
                rows = rows.join(terms, ID_COL)
            rows = persisted(held, rows)
            n_rows = rows.count()
            if n_rows == 0:
                raise InputError("no row of the DataFrame has anything to embed with this model")
            update = find_new(rows, rows, fitted.assigner, fitted.novelty, config, held, terms_col, fitted.topics.out_of_vocabulary_share)
            done = labelled_by_update(
                rows.select(ID_COL, CLUSTER_COL, CONFIDENCE_COL, SECOND_CLUSTER_COL), rows, update, fitted.assigner, fitted.novelty,
                config, terms_col, held,
            )
            found = done.update.topics
            names = pd.DataFrame()
            if found.topic_ids and fitted.learned_text is not None:
                texts = text_rows(dataset, fitted, input_col=input_col, id_col=id_col)
                names = fresh_names(texts, done.assigned.select(ID_COL, CLUSTER_COL), found.topic_ids, config)
        def topic(cluster: int, size: int) -> Topic:
            if cluster not in names.index:
                return Topic(cluster, None, (), size / n_rows)
            return Topic(cluster, names.loc[cluster, "name"], tuple(names.loc[cluster, "top_terms"]), size / n_rows)

        new = tuple(topic(cluster, done.joined[cluster]) for cluster in found.topic_ids)
        child = dataclasses.replace(
            fitted, config=config, assigner=done.assigner, topics=fitted.topics.updated(fitted.model_id, new),
            novelty=done.signals,
            model_id=None, parent_model_id=fitted.model_id,
        )
        return self._copyValues(N2DModel(child))

    def write(self) -> MLWriter:
        return _N2DModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _N2DModelReader()

    @classmethod
    def load(cls, path: str, allow_pickle: bool = False) -> N2DModel:
        """The model saved at ``path``; ``allow_pickle`` lets its bundle's pickles load (class docstring)."""
        return _N2DModelReader(allow_pickle=allow_pickle).load(path)


class _N2DModelWriter(MLWriter):
    """``PATH/metadata`` (Spark's: class, uid, Params) and ``PATH/model/`` (the job's model bundle)."""

    def __init__(self, instance: N2DModel) -> None:
        super().__init__()
        self.instance = instance

    def save(self, path: str) -> None:
        """Save into a folder beside ``path``, then swap it in: a save that fails at any point leaves the
        model that was at ``path`` there, or the whole new one beside it (docs/estimator.md, "Saving")."""
        path = path.rstrip("/")
        fs = file_system(self.sparkSession, path)
        fs.check_writable(path)
        if not self.shouldOverwrite and fs.exists(path):
            raise FileExistsError(f"{path} already exists: save with model.write().overwrite().save(path) to replace it")
        run_id = new_run_id()
        staging = f"{path}.saving-{run_id}"
        try:
            self.saveImpl(staging)
        except BaseException:
            if fs.exists(staging):
                fs.delete(staging)
            raise
        if isinstance(fs, ConnectFileSystem):
            # No rename without a JVM: the old model goes only once the new one is whole beside it, which is
            # then written again in its place.
            if fs.exists(path):
                fs.delete(path)
            self.saveImpl(path)
            fs.delete(staging)
        else:
            # As the job publishes its output: the old model aside, the new one in, the old one deleted.
            publish(fs, staging, path, "overwrite" if self.shouldOverwrite else "error", run_id)

    def saveImpl(self, path: str) -> None:
        fs = file_system(self.sparkSession, path)
        fitted = self.instance._fitted
        model_id = save_bundle(
            fs, f"{path}/{MODEL_DIR}", fitted.config, fitted.embedding_model, fitted.assigner, fitted.learned_text,
            fitted.topics or ModelTopics(()), fitted.novelty, parent_model_id=fitted.parent_model_id,
        )
        # The metadata last: a folder without it is no saved model.
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession, extraMetadata={"modelId": model_id})
        self.instance._fitted = dataclasses.replace(fitted, model_id=model_id)


class _N2DModelReader(MLReader):
    """``PATH/metadata`` and the bundle in ``PATH/model/``; a bundle's pickles only with ``allow_pickle``."""

    def __init__(self, allow_pickle: bool = False) -> None:
        super().__init__()
        self.allow_pickle = allow_pickle

    def load(self, path: str) -> N2DModel:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        bundle = load_bundle(
            self.sparkSession, file_system(self.sparkSession, path), f"{path}/{MODEL_DIR}", allow_pickle=self.allow_pickle
        )
        model = N2DModel(FittedN2D(
            bundle.config, bundle.embedding_model, bundle.assigner, bundle.learned_text, bundle.model_id,
            topics=bundle.topics, novelty=bundle.novelty, parent_model_id=bundle.parent_model_id,
        ))
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        return model


def _is_text(dataset: DataFrame, column: str) -> bool:
    """Whether ``column`` is text (a string); a vector or numeric array is not; any other type is refused."""
    dtype = dataset.schema[column].dataType
    if isinstance(dtype, T.StringType):
        return True
    if not isinstance(dtype, (VectorUDT, T.ArrayType)):
        raise InputError(f"input column {column!r} has type {dtype.simpleString()}: expected text, a vector or a numeric array")
    check_features_type(dtype, column)
    return False
