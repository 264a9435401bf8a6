"""The report stage: every file written, PNGs valid, report.html self-contained and escaped."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from plotly.offline import get_plotlyjs

from n2d_spark.evaluation.report import ReportInputs, map_2d, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT_TEXT = "<script>alert('x')</script> & a review that goes on " + "and on " * 100


def _inputs(with_truth: bool = True, with_baseline: bool = True, with_examples: bool = True) -> ReportInputs:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 10, [8.0] * 10, [-8.0] * 5 + [8.0] * 5])
    blob = np.repeat(np.arange(3), 100)
    embeddings = (centres[blob] + rng.normal(size=(300, 10))).astype(np.float32)
    labels = blob.copy()
    labels[::25] = -1
    manifest = {
        "run_id": "20261126T000000Z-abcdef12",
        "config": {"autoencoder": {"epochs": 3, "hidden": [1024, 512, 256]}, "cluster": {"algorithm": "dbscan", "eps": 1.0}},
        "rows": {"in": 1000, "labelled": 990, "rejected": 10, "autoencoder_sample": 500},
        "clusters": {"n_clusters": 3, "noise_share": 0.04, "sizes": {0: 330, 1: 320, 2: 300}, "silhouette": 0.6543},
        "autoencoder_history": {"loss": [1.0, 0.9, 0.85], "val_loss": [1.01, 0.93, 0.88], "epoch_seconds": [1.5, 1.4, 1.4]},
        "stage_seconds": {"read": 1.0, "vectorize": 2.0, "autoencoder": 4.3, "manifold": 5.0},
        "total_seconds": 12.3,
    }
    if with_truth:
        manifest["evaluation"] = {"label_col": "topic", "accuracy": 0.8771, "ari": 0.7654, "nmi": 0.6543, "noise_share": 0.04}
        manifest["baselines"] = {
            "kmeans_raw": {"n_clusters": 3, "noise_share": 0.0, "accuracy": 0.5432, "ari": 0.4321, "nmi": 0.3219},
            "kmeans_embedding": {"n_clusters": 3, "noise_share": 0.0, "accuracy": 0.6111, "ari": 0.5222, "nmi": 0.4333},
            "n2d": {"n_clusters": 3, "noise_share": 0.04, "accuracy": 0.8771, "ari": 0.7654, "nmi": 0.6543},
        }
        manifest["stability"] = {"ari": 0.9321, "seeds": [0, 1]}
    summary = pd.DataFrame(
        {
            "cluster": np.array([-1, 0, 1, 2], dtype=np.int32),
            "size": np.array([40, 330, 320, 300], dtype=np.int64),
            "top_terms": [["noise_term"], ["alpha", "beta"], ["gamma", "delta<b>"], []],
            "coherence": [None, 0.4567, -0.1234, None],
        }
    )
    examples = {0: ["first example", SCRIPT_TEXT], 1: ["third & last"], -1: ["a noisy one"]} if with_examples else {}
    return ReportInputs(
        manifest=manifest,
        embeddings=embeddings,
        labels=labels,
        truth=np.array(["a", "b", "c"], dtype=object)[blob] if with_truth else None,
        baseline_labels=(blob + 1) % 3 if with_baseline else None,
        summary=summary,
        examples=examples,
    )


def _write(inputs: ReportInputs) -> tuple[list[str], dict[str, bytes]]:
    files: dict[str, bytes] = {}

    def write_bytes(name: str, data: bytes) -> None:
        assert name not in files, f"{name} written twice"
        files[name] = data

    return write_report(inputs, write_bytes, seed=0), files


@pytest.fixture(scope="module")
def full_report():
    return _write(_inputs())


def test_every_file_is_written_and_pngs_are_pngs(full_report):
    names, files = full_report
    expected = {"loss.png", "map_clusters.png", "map_labels.png", "map_baseline.png", "cluster_sizes.png", "report.html"}
    assert set(names) == set(files) == expected
    for name in expected - {"report.html"}:
        assert files[name].startswith(PNG_SIGNATURE), name
        assert len(files[name]) > 1000


def _without_plotly_js(page: str) -> str:
    """The page less the plotly.js bundle, which must be there once, verbatim (it is the library's, not ours)."""
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1
    return page.replace(bundle, "")


def test_html_is_self_contained(full_report):
    _, files = full_report
    page = _without_plotly_js(files["report.html"].decode("utf-8"))
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.IGNORECASE)
    sources = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]*)""", page, flags=re.IGNORECASE)
    assert len(sources) == 5
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"https?://", page, flags=re.IGNORECASE)
    assert not re.search(r"\bhref\s*=", page, flags=re.IGNORECASE)
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_images_in_the_html_are_the_files_written(full_report):
    import base64

    _, files = full_report
    page = files["report.html"].decode("utf-8")
    for name in ("loss.png", "map_clusters.png", "cluster_sizes.png"):
        assert base64.b64encode(files[name]).decode("ascii") in page


def test_user_text_is_escaped_and_truncated(full_report):
    _, files = full_report
    page = _without_plotly_js(files["report.html"].decode("utf-8"))
    assert "<script>alert" not in page.lower() and "\\u003cscript\\u003ealert" not in page.lower()
    # The page's own scripts: plotly.js, one per figure, the search box's.
    assert len(re.findall(r"<script\b", page)) == 4
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; a review" in page
    assert "and on " * 100 not in page
    assert "delta&lt;b&gt;" in page and "delta<b>" not in page
    assert "third &amp; last" in page


def test_metrics_appear(full_report):
    _, files = full_report
    page = files["report.html"].decode("utf-8")
    for value in ("0.877", "0.765", "0.654", "0.543", "0.432", "0.611", "0.932", "0.457", "-0.123", "0.040"):
        assert value in page, value
    for text in ("topic", "KMeans on the raw vectors", "KMeans on the autoencoder embedding", "seeds 0 and 1",
                 "alpha, beta", "autoencoder:", "hidden:", "vectorize", "20261126T000000Z-abcdef12"):
        assert text in page, text


def test_optional_maps_follow_their_inputs():
    names, files = _write(_inputs(with_truth=False, with_baseline=False, with_examples=False))
    assert set(names) == {"loss.png", "map_clusters.png", "cluster_sizes.png", "report.html"}
    page = _without_plotly_js(files["report.html"].decode("utf-8"))
    assert len(re.findall(r"\bsrc=", page)) == 3
    assert "Against the baselines" not in page and "Example texts" not in page

    names, _ = _write(_inputs(with_truth=False, with_baseline=True))
    assert "map_baseline.png" in names and "map_labels.png" not in names
    names, _ = _write(_inputs(with_truth=True, with_baseline=False))
    assert "map_labels.png" in names and "map_baseline.png" not in names


def test_the_map_is_seeded_and_two_dimensional():
    embeddings = _inputs().embeddings
    first, second = map_2d(embeddings, seed=3), map_2d(embeddings, seed=3)
    assert first.shape == (300, 2)
    np.testing.assert_array_equal(first, second)
    # Too few rows for UMAP: the first two dimensions, still a report.
    assert map_2d(embeddings[:4], seed=0).shape == (4, 2)


def test_mismatched_lengths_are_refused():
    inputs = _inputs()
    with pytest.raises(ValueError, match="truth"):
        write_report(
            ReportInputs(**{**inputs.__dict__, "truth": inputs.truth[:10]}), lambda name, data: None
        )


def test_document_map_has_a_point_per_row_one_trace_per_topic_and_escaped_hover_texts():
    from n2d_spark.evaluation.report_views import HOVER_CHARS, document_map

    inputs = _inputs()
    xy = np.random.default_rng(0).normal(size=(len(inputs.labels), 2))
    texts = [SCRIPT_TEXT if i == 3 else f"row {i} text" for i in range(len(xy))]
    names = {0: "0_alpha_beta", 1: "1_gamma_delta<b>", 2: "2"}
    fig = document_map(xy, inputs.labels, names, texts)
    assert [trace.name for trace in fig.data] == ["noise (12)", "0_alpha_beta (96)", "1_gamma_delta&lt;b&gt; (96)", "2 (96)"]
    assert sum(len(trace.x) for trace in fig.data) == len(xy)
    hovered = {text for trace in fig.data for _, text, _ in trace.customdata}
    shown = next(text for text in hovered if "alert" in text)
    assert shown.startswith("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; a review")
    # Cut to HOVER_CHARS characters of text (before escaping), then broken into lines.
    assert shown.endswith(" …") and len(shown.replace("<br>", " ")) < HOVER_CHARS + 60
    assert "<script" not in shown


def test_the_map_draws_less_sure_rows_paler_and_the_search_gives_their_shade_back():
    import dataclasses

    from n2d_spark.evaluation.report_views import document_map

    inputs = _inputs()
    n = len(inputs.labels)
    # As the clusterer gives it: 0 for noise, which is in no topic.
    confidence = np.where(inputs.labels == -1, 0.0, np.linspace(0, 1, n))
    confidence[7] = np.nan
    fig = document_map(np.zeros((n, 2)), inputs.labels, {}, None, None, confidence)
    noise, *topics = fig.data
    assert noise.name.startswith("noise") and noise.marker.opacity == 0.8 and "%{text}" not in noise.hovertemplate
    for cluster, trace in enumerate(topics):
        sure = confidence[inputs.labels == cluster]
        # Paler with less confidence: from 0.15 on a border to 0.9 at a topic's centre; no confidence (NaN) as a border.
        np.testing.assert_allclose(trace.marker.opacity, 0.15 + 0.75 * np.nan_to_num(sure), atol=1e-3)
        assert list(trace.text) == [f"confidence {c:.2f}" for c in sure] and "%{text}" in trace.hovertemplate
    assert min(topics[0].marker.opacity) == 0.15 and topics[-1].marker.opacity[-1] == 0.9
    # Without confidences, one opacity and no confidence on hover.
    plain = document_map(np.zeros((n, 2)), inputs.labels, {}, None)
    assert all(trace.marker.opacity == 0.8 and "%{text}" not in trace.hovertemplate for trace in plain.data)
    _, files = _write(dataclasses.replace(inputs, confidence=confidence))
    page = files["report.html"].decode()
    assert "paler: less sure of its topic" in page and "shading[r][i]" in page
    with pytest.raises(ValueError, match="confidence"):
        _write(dataclasses.replace(inputs, confidence=confidence[:10]))


def test_a_click_on_the_map_lists_the_points_nearest_rows_escaped():
    import dataclasses

    from n2d_spark.evaluation.report_views import NEAREST_PANEL, document_map

    inputs = _inputs()
    n = len(inputs.labels)
    nearest = [[(i + 1, 0.9, SCRIPT_TEXT), (f"r{i}", 0.5, None)] for i in range(n)]
    fig = document_map(np.zeros((n, 2)), inputs.labels, {}, None, nearest)
    listed = {found for trace in fig.data for _, _, found in trace.customdata}
    first = next(found for found in listed if found.startswith("<ol><li><code>1</code> (0.900): "))
    assert "&lt;script&gt;" in first and "<script" not in first and first.endswith("<li><code>r0</code> (0.500)</li></ol>")
    _, files = _write(dataclasses.replace(inputs, nearest=nearest))
    page = files["report.html"].decode()
    assert f'id="{NEAREST_PANEL}"' in page and 'document.getElementById("n2d-nearest")' in page
    _, without = _write(inputs)
    assert NEAREST_PANEL not in without["report.html"].decode()


def test_topic_map_draws_each_topic_at_its_rows_centre_with_area_by_share():
    from n2d_spark.evaluation.report_views import topic_map

    inputs = _inputs()
    xy = np.repeat(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]), 100, axis=0)
    fig = topic_map(xy, inputs.labels, inputs.summary, inputs.examples)
    (circles,) = fig.data
    # Noise is not a topic; the others sit where their rows are.
    assert list(circles.text) == ["0", "1", "2"]
    np.testing.assert_allclose(np.column_stack([circles.x, circles.y]), [[0, 0], [10, 0], [0, 10]])
    np.testing.assert_allclose(circles.marker.size, np.array([330, 320, 300]) / 990)
    assert "alpha, beta" in circles.hovertext[0] and "first example" in circles.hovertext[0]
    assert "delta&lt;b&gt;" in circles.hovertext[1]


def test_topics_over_time_chart_has_a_line_per_topic_and_zero_where_a_topic_has_no_rows():
    import datetime as dt

    from n2d_spark.evaluation.report_views import topics_over_time_chart

    january, february = dt.date(2025, 1, 1), dt.date(2025, 2, 1)
    table = pd.DataFrame(
        {
            "period": [january, january, february],
            "cluster": [0, 1, 1],
            "rows": [3, 1, 4],
            "share": [0.75, 0.25, 1.0],
            "top_terms": [["ghost"], ["alien"], ["laser", "planet"]],
        }
    )
    fig = topics_over_time_chart(table, {0: "0_ghost", 1: "1_alien"})
    assert [trace.name for trace in fig.data] == ["0_ghost", "1_alien"]
    assert [list(trace.x) for trace in fig.data] == [["2025-01-01", "2025-02-01"]] * 2
    assert [list(trace.y) for trace in fig.data] == [[0.75, 0.0], [0.25, 1.0]]
    assert fig.data[1].customdata[1].tolist() == ["4", "laser, planet"]


def test_dollar_signs_in_label_values_draw_as_text():
    """Matplotlib reads text between two $ as TeX, and stops at what TeX cannot parse: a label value
    like $1_0_0$ or $x^$ must draw as written, not fail the report after every other stage's work."""
    values = np.array(["$1_0_0$", "US$ 5 or $x^$", "$1_000_000$"], dtype=object)[np.repeat(np.arange(3), 100)]
    inputs = ReportInputs(**{**_inputs().__dict__, "truth": values})
    names, files = _write(inputs)
    assert "map_labels.png" in names and files["map_labels.png"].startswith(PNG_SIGNATURE)
