"""Issue 30, novelty in the terms (not merged): the job's count vectors and word counts of an update_bench input, pickled.

    .venv/bin/python scripts/studies/novelty_terms_vectors.py W/imdb-model/model W/imdb review OUT.pkl [LABEL_COL]
"""
import sys, numpy as np, pandas as pd
from pyspark.sql import SparkSession
from n2d_spark.estimator import N2DModel
from n2d_spark.rows.estimator_stages import term_rows
from n2d_spark.model.encoder import spark_vectors_to_csr
from n2d_spark.core.columns import WORD_COUNT_COL, ID_COL
spark = SparkSession.builder.master("local[2]").config("spark.driver.memory","6g").getOrCreate()
from n2d_spark.model.bundle import load_bundle
from n2d_spark.core.fs import FileSystem
from n2d_spark.rows.estimator_stages import FittedN2D
b = load_bundle(spark, FileSystem(spark, sys.argv[1]), sys.argv[1])
fitted = FittedN2D(b.config, b.embedding_model, b.assigner, b.learned_text, b.model_id, topics=b.topics, novelty=b.novelty)
out = {}
for part in ("train", "new"):
    df = spark.read.csv(sys.argv[2] + f"-{part}.csv", header=True, multiLine=True, escape='"').withColumn("rid", __import__("pyspark.sql.functions", fromlist=["x"]).monotonically_increasing_id())
    rows, col = term_rows(df, fitted, input_col=sys.argv[3], id_col="rid")
    pdf = rows.toPandas()
    counts = spark_vectors_to_csr(pd.DataFrame({n: [v[n] if isinstance(v, dict) else getattr(v, n) for v in pdf[col]] for n in ("indices","values")}), len(fitted.novelty.idf))
    lab = df.select("rid", sys.argv[5]).toPandas().set_index("rid")[sys.argv[5]] if len(sys.argv) > 5 else None
    out[part] = (counts, pdf[WORD_COUNT_COL].to_numpy(), None if lab is None else lab.loc[pdf[ID_COL]].to_numpy())
import scipy.sparse as sp, pickle
pickle.dump({"idf": fitted.novelty.idf, **{k: v for k, v in out.items()}}, open(sys.argv[4], "wb"))
print({k: (v[0].shape[0], None if v[2] is None else pd.Series(v[2]).value_counts().to_dict())  for k, v in out.items()}); print({k: (v[0].shape, v[0].nnz / v[0].shape[0], v[1].mean(), 1 - v[0].sum()/v[1].sum()) for k, v in out.items()})
