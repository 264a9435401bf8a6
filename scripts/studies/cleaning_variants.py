"""Would fewer passes clean and tokenize faster (issue 29)? Each variant timed alone on cached rows, and checked equal.

    .venv/bin/python scripts/studies/cleaning_variants.py --input ../shared/data/imdb_reviews.csv.gz --text-col review

The rows are read, spread over 32 partitions and cached; each pass ends in Spark's no-op sink
(fastest of two). Variants: the cleaning statement as the job runs it (three nested
``regexp_replace``), against the statement of bundle formats 1 and 2 (7bcde87 and before:
lookbehind-first patterns, no entities without "&") and one ``regexp_replace`` of the job's
three patterns joined; each pattern alone, then and now; Spark ML's
RegexTokenizer against SQL's ``split`` and ``filter``; StopWordsRemover case-insensitive (the
job's) against case-sensitive with the lower-cased list (the text is lower-cased already). Each
pair is also compared row by row: the count of rows whose result differs is printed.
"""

from __future__ import annotations

import argparse
import time

from pyspark import StorageLevel
from pyspark.ml.feature import RegexTokenizer, StopWordsRemover
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from n2d_spark.core.columns import quoted
from n2d_spark.model.text_vocabulary import (
    CLEAN_COL,
    CLEANING_PATTERNS,
    MIN_TOKEN_LENGTH,
    SPARK_ML_CLEANING_PATTERNS,
    TOKEN_PATTERN,
    cleaning_sql,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--text-col", required=True)
    args = parser.parse_args()
    spark = SparkSession.builder.master("local[2]").config("spark.driver.memory", "6g").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    rows = spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(args.input)
    rows = rows.select(args.text_col).repartition(32).persist(StorageLevel.MEMORY_ONLY)
    n = rows.count()
    rows.createOrReplaceTempView("__THIS__")
    def expression(patterns) -> str:
        return cleaning_sql(args.text_col, patterns).split("SELECT *, ", 1)[1].rsplit(" AS ", 1)[0]

    three, before = expression(CLEANING_PATTERNS), expression(SPARK_ML_CLEANING_PATTERNS)
    one = f"lower(regexp_replace(coalesce({quoted(args.text_col)}, ''), '<[^>]*>|{'|'.join(CLEANING_PATTERNS)}', ' '))"

    def timed(label: str, frame) -> None:
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            frame.write.format("noop").mode("overwrite").save()
            best = min(best, time.perf_counter() - started)
        print(f"| {label} | {best:.2f} | {best * 2 / n * 1e6:.1f} |", flush=True)

    print(f"# {n:,} rows, local[2]\n| pass | s | us a row per core |\n|---|---|---|")
    cleaned = spark.sql(f"SELECT {one} AS {CLEAN_COL} FROM __THIS__")
    timed("the text column alone", rows.select(F.length(args.text_col)))
    timed("cleaning, formats 1 and 2 (7bcde87)", spark.sql(f"SELECT {before} AS {CLEAN_COL} FROM __THIS__"))
    timed("cleaning, three regexp_replace (the job)", spark.sql(f"SELECT {three} AS {CLEAN_COL} FROM __THIS__"))
    timed("cleaning, one regexp_replace", cleaned)
    for label, patterns in (("7bcde87", SPARK_ML_CLEANING_PATTERNS), ("now", CLEANING_PATTERNS)):
        for part, pattern in zip(("entities", "apostrophes"), patterns):
            alone = f"SELECT regexp_replace({quoted(args.text_col)}, '{pattern}', ' ') AS c FROM __THIS__"
            timed(f"the {part} pattern alone, {label}", spark.sql(alone))
    tokenizer = RegexTokenizer(inputCol=CLEAN_COL, outputCol="tokens", pattern=TOKEN_PATTERN, toLowercase=False,
                               minTokenLength=MIN_TOKEN_LENGTH)
    split = F.filter(F.split(CLEAN_COL, TOKEN_PATTERN), lambda t: F.length(t) >= MIN_TOKEN_LENGTH)
    timed("cleaning + RegexTokenizer (the job)", tokenizer.transform(cleaned).select("tokens"))
    timed("cleaning + split and filter", cleaned.select(split.alias("tokens")))
    insensitive = StopWordsRemover(inputCol="tokens", outputCol="terms")
    sensitive = StopWordsRemover(inputCol="tokens", outputCol="terms_cs", caseSensitive=True,
                                 stopWords=[w.lower() for w in insensitive.getStopWords()])
    tokens = tokenizer.transform(cleaned)
    timed("+ stop words, case-insensitive (the job)", insensitive.transform(tokens).select("terms"))
    timed("+ stop words, case-sensitive, list lower-cased", sensitive.transform(tokens).select("terms_cs"))
    differ = {
        "cleaning, joined": spark.sql(f"SELECT {three} AS a, {one} AS b FROM __THIS__").where("a != b").count(),
        "cleaning, formats 1 and 2": spark.sql(f"SELECT {three} AS a, {before} AS b FROM __THIS__").where("a != b").count(),
        "tokens": tokens.select(F.col("tokens").alias("a"), split.alias("b")).where("a != b").count(),
        "terms": sensitive.transform(insensitive.transform(tokens)).where("terms != terms_cs").count(),
    }
    print("rows that differ: " + ", ".join(f"{k} {v}" for k, v in differ.items()))


if __name__ == "__main__":
    main()
