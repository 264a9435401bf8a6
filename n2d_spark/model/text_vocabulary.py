"""What a fitted text model learned, as data: its vocabulary and stop words; and how this project
cleans and splits text, which rows/text.py builds into Spark ML stages.

A bundle stores a ``TextVocabulary`` as JSON (``text.json``), and loading it rebuilds the text
pipeline from this code: nothing a bundle carries is run as SQL or imported as a class. Bundles
of format 1 and 2 stored the pipeline as Spark ML saves it (``text_pipeline/``), whose loading
runs the SQL statement it holds and imports the Python classes its metadata names;
``from_spark_ml_files`` reads those files as data instead, and refuses any that are not the
pipeline this project wrote.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from n2d_spark.core.columns import quoted

CLEAN_COL = "_clean_text"
TOKENS_COL = "_tokens"
TERMS_COL = "_terms"
# Tokens are runs of letters, digits and in-word apostrophes; shorter than 2 characters is no term.
TOKEN_PATTERN = r"[^\p{L}\p{N}'’]+"
MIN_TOKEN_LENGTH = 2
TEXT_PART = "text.json"
# What cleaning_sql blanks after tags: entities (also those whose "&" a scrape lost), and
# apostrophes not inside a word. Each pattern starts with what it must match first, a character
# (a class, or a lookahead for one), so the regex engine tries the rest only there, where a
# lookbehind first is tried at every character: IMDB cleans in 67 µs a review per core against 86
# (BENCHMARKS.md, "Where vectorize spends its time"), with more to match.
CLEANING_PATTERNS = (
    r"(?=[&#aglnq])(?:&[#a-zA-Z0-9]+;|#[0-9]+;|(?<!\\p{L})(?:amp|quot|lt|gt|nbsp|apos);)",
    r"[\\x27\\x{2019}](?:(?<!\\p{L}[\\x27\\x{2019}])|(?!\\p{L}))",
)
# The same two in the cleaning statement that bundle formats 1 and 2 saved.
SPARK_ML_CLEANING_PATTERNS = ("&[#a-zA-Z0-9]+;", r"(?<!\\p{L})[\\x27\\x{2019}]|[\\x27\\x{2019}](?!\\p{L})")


def cleaning_sql(text_col: str, patterns: tuple[str, str] = CLEANING_PATTERNS) -> str:
    """The cleaning stage's statement, reading ``text_col``.

    Tags and entities become spaces (so "end.<br />Next" stays two words), and so do entities
    whose ``&`` a scrape lost ("Sony #146;s", "Johnson amp; Johnson" in AG News), which would
    otherwise leave terms such as "146" and "amp"; apostrophes are kept only inside words, so
    "don't" is one token that the stop-word list knows. coalesce: a null review is an empty
    document, not a null the tokenizer rejects.
    """
    return (
        f"SELECT *, lower(regexp_replace(regexp_replace(regexp_replace(coalesce({quoted(text_col)}, ''), "
        f"'<[^>]*>', ' '), '{patterns[0]}', ' '), '{patterns[1]}', ' ')) AS {CLEAN_COL} FROM __THIS__"
    )


@dataclass(frozen=True)
class TextVocabulary:
    """A fitted text model: its terms in count-vector order, and the stop words removed before counting."""

    terms: tuple[str, ...]
    stop_words: tuple[str, ...]

    def to_json(self) -> bytes:
        return json.dumps({"terms": list(self.terms), "stop_words": list(self.stop_words)}, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TextVocabulary:
        """Raises ValueError unless ``data`` is what ``to_json`` writes: two lists of strings, distinct terms."""
        value = json.loads(data.decode("utf-8"))
        if not isinstance(value, dict) or set(value) != {"terms", "stop_words"}:
            raise ValueError("expected an object with exactly the keys terms and stop_words")
        return cls(_strings(value["terms"], "terms", distinct=True), _strings(value["stop_words"], "stop_words"))


def _strings(value, key: str, distinct: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key} is not a list of strings")
    if distinct and len(set(value)) != len(value):
        raise ValueError(f"{key} has duplicates")
    return tuple(value)


# The stages of the pipeline formats 1 and 2 saved, in order, as Spark ML's metadata names them.
_SPARK_ML_STAGES = (
    "org.apache.spark.ml.feature.SQLTransformer",
    "org.apache.spark.ml.feature.RegexTokenizer",
    "org.apache.spark.ml.feature.StopWordsRemover",
    "org.apache.spark.ml.feature.CountVectorizerModel",
)


def from_spark_ml_files(files: dict[str, bytes], text_col: str) -> TextVocabulary:
    """The vocabulary and stop words of a Spark ML text pipeline saved by formats 1 and 2, read as data.

    ``files``: the pipeline folder's files by path inside it, already checked against bundle.json.
    Raises ValueError naming what differs unless every stage is the one this project wrote, with
    its parameters: the statement the cleaning stage would run must be the one those formats
    saved (``SPARK_ML_CLEANING_PATTERNS``); the vocabulary is then read with today's cleaning.
    Nothing is executed or imported: the metadata is parsed as JSON, the vocabulary read from Parquet.
    """
    stage_uids = _param(_metadata(files, "metadata/"), "stageUids")
    if not isinstance(stage_uids, list) or len(stage_uids) != len(_SPARK_ML_STAGES):
        raise ValueError(f"the pipeline has {stage_uids!r} as stages, expected {len(_SPARK_ML_STAGES)}")
    stages = []
    for index, (uid, expected) in enumerate(zip(stage_uids, _SPARK_ML_STAGES)):
        folder = f"stages/{index}_{uid}/"
        metadata = _metadata(files, f"{folder}metadata/")
        if metadata.get("class") != expected or metadata.get("language", "Scala") != "Scala":
            raise ValueError(f"stage {index} is {metadata.get('class')!r} ({metadata.get('language', 'Scala')}), expected {expected}")
        stages.append((folder, metadata))
    (_, cleaning), (_, tokenizer), (_, remover), (counts_folder, _) = stages
    expected_params = [
        (cleaning, "statement", cleaning_sql(text_col, SPARK_ML_CLEANING_PATTERNS)),
        (tokenizer, "pattern", TOKEN_PATTERN),
        (tokenizer, "minTokenLength", MIN_TOKEN_LENGTH),
        (tokenizer, "toLowercase", False),
        (tokenizer, "gaps", True),
        (remover, "caseSensitive", False),
    ]
    for metadata, name, value in expected_params:
        if _param(metadata, name) != value:
            raise ValueError(f"the {metadata['class'].rsplit('.', 1)[-1]}'s {name} is not the one this n2d-spark writes")
    data = [data for path, data in sorted(files.items()) if path.startswith(f"{counts_folder}data/") and path.endswith(".parquet")]
    if len(data) != 1:
        raise ValueError(f"expected one Parquet file of vocabulary, found {len(data)}")
    import pyarrow.parquet as pq  # here: only formats 1 and 2 need it

    terms = pq.read_table(io.BytesIO(data[0])).column("vocabulary").to_pylist()
    if len(terms) != 1:
        raise ValueError("the vocabulary's Parquet file does not hold one row")
    return TextVocabulary(_strings(terms[0], "vocabulary", distinct=True), _strings(_param(remover, "stopWords"), "stopWords"))


def _metadata(files: dict[str, bytes], folder: str) -> dict:
    found = [data for path, data in files.items() if path.startswith(folder) and path.rsplit("/", 1)[-1].startswith("part-")]
    if len(found) != 1:
        raise ValueError(f"expected one metadata file in {folder}, found {len(found)}")
    metadata = json.loads(found[0].decode("utf-8"))
    if not isinstance(metadata, dict):
        raise ValueError(f"the metadata in {folder} is not a JSON object")
    return metadata


def _param(metadata: dict, name: str):
    """A stage's parameter as Spark ML resolves it: set explicitly, else its default."""
    for key in ("paramMap", "defaultParamMap"):
        params = metadata.get(key)
        if isinstance(params, dict) and name in params:
            return params[name]
    raise ValueError(f"{metadata.get('class')!r} has no parameter {name}")
