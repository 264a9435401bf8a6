"""Report stage: plots and one self-contained ``report.html`` that show what the clusters are.

Pure: arrays, the manifest and the cluster summary in; named bytes out through a
``write_bytes(name, data)`` callback, so the caller decides where they land (the job writes
them to ``report/`` in its staging folder). Plots use Matplotlib's object API with the Agg
canvas (no pyplot, no global figure state, no display). The HTML embeds every image as a
base64 ``data:`` URI and has no external CSS, scripts or fonts: it opens from disk with no
server and no network. Every piece of text in it is HTML-escaped; example texts are user
data and are also truncated.

The 2-D maps are a separate 2-component UMAP of the sample's autoencoder embedding (not
t-SNE, and not the job's own ``manifold.n_components``-wide UMAP), fitted once and coloured
three ways: by cluster, by the label column, by the baseline's clusters. The same map is
also drawn as an interactive Plotly scatter (``report_views``), with plotly.js inline.

Over 300 lines: the page is one document, and its sections (metrics, maps, clusters,
training, config) share the escaping and table helpers here.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import dendrogram
from matplotlib import colormaps

from n2d_spark.core.columns import NOISE
from n2d_spark.evaluation.report_views import (
    MAP_DIV,
    TIME_DIV,
    TOPICS_DIV,
    document_map,
    figure_html,
    nearest_panel,
    nearest_script,
    plotly_js_tag,
    search_box,
    search_script,
    shortened,
    topic_map,
    topics_over_time_chart,
)
from n2d_spark.model.manifold import seeded_umap

LOSS_PNG = "loss.png"
MAP_CLUSTERS_PNG = "map_clusters.png"
MAP_LABELS_PNG = "map_labels.png"
MAP_BASELINE_PNG = "map_baseline.png"
SIZES_PNG = "cluster_sizes.png"
TREE_PNG = "topic_tree.png"
REPORT_HTML = "report.html"

EXAMPLE_CHARS = 300
# Maps list their categories in a legend up to this many; beyond it the colours repeat.
_LEGEND_MAX = 20
_NOISE_COLOUR = "#b0b0b0"
_BASELINE_ORDER = ("kmeans_raw", "kmeans_embedding", "n2d")
_BASELINE_TITLES = {
    "kmeans_raw": "KMeans on the raw vectors",
    "kmeans_embedding": "KMeans on the autoencoder embedding",
    "n2d": "N2D (this run)",
}


@dataclass(frozen=True)
class ReportInputs:
    # The run.json dict: config, clusters, evaluation?, baselines?, stability?,
    # autoencoder_history, rows, stage_seconds, run_id.
    manifest: dict
    # (n, d) autoencoder embeddings of a sample of rows (a few thousand at most).
    embeddings: np.ndarray
    # (n,) cluster of each sample row, -1 = noise.
    labels: np.ndarray
    # (n,) label-column values of the sample rows, or None.
    truth: np.ndarray | None
    # (n,) KMeans-on-raw-vectors labels of the same rows, or None.
    baseline_labels: np.ndarray | None
    # Columns cluster, size, top_terms (list[str]), coherence (float or None).
    summary: pd.DataFrame
    # Cluster -> a few example texts (may be empty, e.g. in vector mode).
    examples: dict[int, list[str]]
    # Optional: how the baseline map is captioned.
    baseline_title: str = _BASELINE_TITLES["kmeans_raw"]
    # Optional: the hierarchy of the clusters (cluster.topic_tree's columns node, left, right, distance).
    tree: pd.DataFrame | None = None
    # Optional: (n,) texts of the sample rows, shown when a point of the interactive map is hovered.
    texts: list[str] | None = None
    # Optional: the topics_over_time table (period, cluster, rows, share, top_terms).
    topics_over_time: pd.DataFrame | None = None
    # Optional: (n,) each sample row's most similar rows, (id, similarity, text or None), listed when its point is clicked.
    nearest: list[list[tuple]] | None = None
    # Optional: (n,) each sample row's confidence (0-1, labels/'s), which shades its point on the map.
    confidence: np.ndarray | None = None


def write_report(inputs: ReportInputs, write_bytes: Callable[[str, bytes], None], seed: int = 0) -> list[str]:
    """Writes loss.png, map_clusters.png, map_labels.png (when truth), map_baseline.png (when
    baseline_labels), cluster_sizes.png and report.html via write_bytes(relative_name, data);
    returns the names written."""
    labels = np.asarray(inputs.labels)
    n = len(labels)
    if len(inputs.embeddings) != n:
        raise ValueError(f"embeddings has {len(inputs.embeddings)} rows, labels {n}")
    for name, values in (
        ("truth", inputs.truth), ("baseline_labels", inputs.baseline_labels), ("texts", inputs.texts), ("nearest", inputs.nearest),
        ("confidence", inputs.confidence),
    ):
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} rows, labels {n}")

    images: dict[str, bytes] = {}
    images[LOSS_PNG] = _loss_png(inputs.manifest.get("autoencoder_history") or {})
    xy = map_2d(inputs.embeddings, seed)
    names = _topic_names(inputs.summary)
    images[MAP_CLUSTERS_PNG] = _map_png(xy, _cluster_names(labels, names), "UMAP of the embedding, coloured by topic")
    if inputs.truth is not None:
        label_col = (inputs.manifest.get("evaluation") or {}).get("label_col") or "label"
        truth = np.array(["(missing)" if _missing(v) else str(v) for v in inputs.truth], dtype=object)
        images[MAP_LABELS_PNG] = _map_png(xy, truth, f"The same map, coloured by {label_col}")
    if inputs.baseline_labels is not None:
        images[MAP_BASELINE_PNG] = _map_png(
            xy, _cluster_names(np.asarray(inputs.baseline_labels)), f"The same map, coloured by {inputs.baseline_title}"
        )
    images[SIZES_PNG] = _sizes_png(_sizes(inputs))
    if inputs.tree is not None and len(inputs.tree):
        images[TREE_PNG] = _tree_png(inputs.tree, names)

    written = []
    for name, data in images.items():
        write_bytes(name, data)
        written.append(name)
    write_bytes(REPORT_HTML, render_html(inputs, images, xy).encode("utf-8"))
    written.append(REPORT_HTML)
    return written


def map_2d(embeddings: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 2-component UMAP of ``embeddings``; too few rows for UMAP: the first two dimensions."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {x.shape}")
    if len(x) < 10 or x.shape[1] < 2:
        out = np.zeros((len(x), 2), dtype=np.float32)
        out[:, : min(2, x.shape[1])] = x[:, :2]
        return out
    # UMAP's default n_neighbors and min_dist: a picture of the embedding, not the job's manifold.
    _, coordinates = seeded_umap(x, n_components=2, n_neighbors=min(15, len(x) - 1), min_dist=0.1, metric="euclidean", seed=seed, stage="report")
    return coordinates


# --- plots ---------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    # No "Software" stamp: the same inputs give the same bytes.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _loss_png(history: dict) -> bytes:
    fig = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    ax = fig.subplots()
    plotted = False
    for key, title in (("loss", "training"), ("val_loss", "validation")):
        values = [float(v) for v in history.get(key) or []]
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", label=title)
            plotted = True
    if plotted:
        ax.legend()
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (MSE)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.text(0.5, 0.5, "no training history", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    seconds = history.get("epoch_seconds") or []
    ax.set_title("Autoencoder loss per epoch" + (f" ({sum(seconds):.1f} s of training)" if seconds else ""))
    return _png(fig)


def _topic_names(summary: pd.DataFrame | None) -> dict[int, str]:
    """Cluster -> its name (``3_vampire_blood_dracula``) from the summary, where it has one."""
    if summary is None or "name" not in summary:
        return {}
    return {int(c): str(n) for c, n in zip(summary["cluster"], summary["name"])}


def _cluster_names(labels: np.ndarray, names: dict[int, str] | None = None) -> np.ndarray:
    names = names or {}
    return np.array(["noise" if int(v) == NOISE else names.get(int(v), f"cluster {int(v)}") for v in labels], dtype=object)


_NUMBERED = re.compile(r"^(?:cluster )?(-?\d+)(?:_|$)")


def _category_order(values: np.ndarray) -> list[str]:
    """Noise first (drawn underneath), then clusters by number (``cluster 3`` or ``3_terms``), then other values sorted."""

    def key(value: str):
        if value == "noise":
            return (0, 0, "")
        numbered = _NUMBERED.match(value)
        if numbered:
            return (1, int(numbered.group(1)), "")
        return (2, 0, value)

    return sorted(set(values.tolist()), key=key)


def _map_png(xy: np.ndarray, categories: np.ndarray, title: str) -> bytes:
    fig = Figure(figsize=(7.0, 5.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    order = _category_order(categories) if len(categories) else []
    palette = colormaps["tab10" if len(order) <= 10 else "tab20"]
    size = 4.0 if len(xy) > 2000 else 8.0
    colour_index = 0
    for value in order:
        rows = categories == value
        if value in ("noise", "(missing)"):
            colour = _NOISE_COLOUR
        else:
            colour = palette(colour_index % palette.N)
            colour_index += 1
        ax.scatter(xy[rows, 0], xy[rows, 1], s=size, color=colour, alpha=0.7, linewidths=0,
                   label=f"{_as_text(value)} ({int(rows.sum())})")
    if not len(xy):
        ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
    if 0 < len(order) <= _LEGEND_MAX:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, fontsize="small", frameon=False)
    ax.set_title(f"{_as_text(title)}\n{len(xy)} sampled rows")
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)


def _as_text(value: str) -> str:
    """``value`` as Matplotlib draws it literally: it reads text between two ``$`` as TeX."""
    return value.replace("$", r"\$")


def _sizes(inputs: ReportInputs) -> list[tuple[int, int]]:
    """(cluster, size) over all labelled rows: the summary's, else the manifest's cluster sizes."""
    summary = inputs.summary
    if summary is not None and len(summary):
        pairs = [(int(c), int(s)) for c, s in zip(summary["cluster"], summary["size"])]
    else:
        clusters = inputs.manifest.get("clusters") or {}
        pairs = [(int(c), int(s)) for c, s in (clusters.get("sizes") or {}).items()]
    return sorted(pairs)


def _sizes_png(sizes: list[tuple[int, int]]) -> bytes:
    fig = Figure(figsize=(max(6.4, 0.3 * len(sizes) + 2), 4.0), dpi=100, layout="constrained")
    ax = fig.subplots()
    if sizes:
        names = ["noise" if c == NOISE else str(c) for c, _ in sizes]
        colours = [_NOISE_COLOUR if c == NOISE else "#1f77b4" for c, _ in sizes]
        ax.bar(range(len(sizes)), [s for _, s in sizes], color=colours)
        ax.set_xticks(range(len(sizes)), names, rotation=90 if len(sizes) > 20 else 0)
        ax.set_xlabel("cluster")
        ax.set_ylabel("rows")
    else:
        ax.text(0.5, 0.5, "no clusters", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title("Cluster sizes (all labelled rows)")
    return _png(fig)


def _tree_png(tree: pd.DataFrame, names: dict[int, str]) -> bytes:
    """A dendrogram of the clusters (Ward distance between centroids), leaves labelled by topic name."""
    n_leaves = len(tree) + 1
    members = tree["clusters"].iloc[-1]
    links = np.column_stack([tree["left"], tree["right"], tree["distance"], [len(c) for c in tree["clusters"]]]).astype(float)
    fig = Figure(figsize=(8.0, max(3.0, 0.28 * n_leaves + 1.0)), dpi=100, layout="constrained")
    ax = fig.subplots()
    dendrogram(links, orientation="left", labels=[_as_text(names.get(int(c), str(c))) for c in members], ax=ax,
               color_threshold=0, above_threshold_color="#1f77b4", leaf_font_size=8)
    ax.set_xlabel("Ward distance between centroids (UMAP space)")
    ax.set_title("Topic hierarchy: the most similar topics join first")
    return _png(fig)


# --- HTML ----------------------------------------------------------------------------

REPORT_CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figcaption { font-size: 0.9em; color: #555; max-width: 40em; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
ul.examples li { margin-bottom: 0.4em; white-space: pre-wrap; }
.muted { color: #777; }
"""


def escaped(value) -> str:
    return html.escape(str(value), quote=True)


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def number(value, digits: int = 3) -> str:
    if _missing(value):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}"
    return str(value)


def html_table(header: list[str], rows: list[list[str]], text_columns: tuple[int, ...] = (0,)) -> str:
    """``header`` and ``rows`` hold already-escaped HTML; columns not in ``text_columns`` are right-aligned."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" if i in text_columns else f'<td class="num">{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(images: dict[str, bytes], name: str, alt: str, caption: str) -> str:
    if name not in images:
        return ""
    data = base64.b64encode(images[name]).decode("ascii")
    return (
        f'<figure><img alt="{escaped(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escaped(caption)} <span class=\"muted\">({escaped(name)})</span></figcaption></figure>"
    )


def _metrics_section(manifest: dict) -> str:
    clusters = manifest.get("clusters") or {}
    rows_info = manifest.get("rows") or {}
    rows = [
        ["rows in / labelled / rejected",
         " / ".join(number(rows_info.get(k)) for k in ("in", "labelled", "rejected"))],
        ["autoencoder sample rows", number(rows_info.get("autoencoder_sample"))],
        ["clusters (noise excluded)", number(clusters.get("n_clusters"))],
        ["noise share", number(clusters.get("noise_share"))],
        ["noise share before outlier reduction (fit sample)", number(clusters.get("noise_share_before_reduction"))],
        ["silhouette of the UMAP space (sampled, noise excluded)", number(clusters.get("silhouette"))],
    ]
    topics = manifest.get("topics")
    if topics:
        rows += [
            ["topic coherence (mean NPMI)", number(topics.get("npmi"))],
            ["topic diversity", number(topics.get("diversity"))],
        ]
    evaluation = manifest.get("evaluation")
    if evaluation:
        against = escaped(evaluation.get("label_col", "the label column"))
        rows += [
            [f"accuracy against {against} (best one-to-one matching)", number(evaluation.get("accuracy"))],
            [f"ARI against {against}", number(evaluation.get("ari"))],
            [f"NMI against {against}", number(evaluation.get("nmi"))],
        ]
    stability = manifest.get("stability")
    if stability:
        seeds = stability.get("seeds") or []
        between = " and ".join(escaped(s) for s in seeds) if seeds else "two seeds"
        rows.append([f"stability: ARI between the labels of seeds {between}", number(stability.get("ari"))])
    html_parts = ["<h2>Metrics</h2>", html_table(["metric", "value"], rows)]
    if topics:
        html_parts.append(f'<p class="muted">{escaped(topics.get("definition", ""))}.</p>')

    baselines = manifest.get("baselines")
    if baselines:
        names = [n for n in _BASELINE_ORDER if n in baselines] + sorted(n for n in baselines if n not in _BASELINE_ORDER)
        metrics = [("n_clusters", "clusters"), ("noise_share", "noise share"), ("accuracy", "accuracy"),
                   ("ari", "ARI"), ("nmi", "NMI")]
        table_rows = [[label] + [number((baselines[n] or {}).get(key)) for n in names] for key, label in metrics]
        header = ["metric"] + [escaped(_BASELINE_TITLES.get(n, n)) for n in names]
        html_parts += ["<h3>Against the baselines</h3>", html_table(header, table_rows)]
    return "\n".join(html_parts)


def _cluster_section(inputs: ReportInputs, images: dict[str, bytes]) -> str:
    parts = ["<h2>Clusters</h2>", _img(images, SIZES_PNG, "bar chart of cluster sizes", "Rows per cluster; noise in grey.")]
    summary = inputs.summary if inputs.summary is not None else pd.DataFrame(columns=["cluster", "size"])
    total = int(summary["size"].sum()) if len(summary) else 0
    rows = []
    for record in summary.sort_values("cluster").to_dict("records"):
        cluster = int(record["cluster"])
        terms = record.get("top_terms")
        terms = list(terms) if terms is not None and not _missing(terms) else []
        size = int(record["size"])
        rows.append([
            "noise" if cluster == NOISE else str(cluster),
            escaped(record.get("name") or ""),
            number(size),
            f"{100 * size / total:.1f}%" if total else "n/a",
            number(record.get("coherence")),
            escaped(", ".join(str(t) for t in terms)) or '<span class="muted">none</span>',
        ])
    parts.append(
        html_table(["cluster", "name", "rows", "share", "coherence (NPMI)", "top terms, best first"], rows, text_columns=(0, 1, 5))
    )
    parts.append(_img(images, TREE_PNG, "dendrogram of the topics", "How the topics group: the nearer two join, the more alike they are."))
    if inputs.examples:
        parts.append("<h3>Example texts</h3>")
        for cluster in sorted(inputs.examples):
            texts = inputs.examples[cluster] or []
            title = "Noise" if int(cluster) == NOISE else f"Cluster {int(cluster)}"
            items = "".join(f"<li>{escaped(shortened(t, EXAMPLE_CHARS))}</li>" for t in texts) or '<li class="muted">none</li>'
            parts.append(f'<h4>{escaped(title)}</h4><ul class="examples">{items}</ul>')
    return "\n".join(parts)


def _config_text(config) -> str:
    try:
        return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)
    except yaml.YAMLError:
        return json.dumps(config, indent=2, default=str)


def render_html(inputs: ReportInputs, images: dict[str, bytes], xy: np.ndarray) -> str:
    """The whole report as one HTML page; ``xy`` is the sample's 2-D map; images from ``images`` (name -> PNG bytes) inline."""
    manifest = inputs.manifest
    sample_rows = len(xy)
    labels = np.asarray(inputs.labels)
    names = _topic_names(inputs.summary)
    run_id = manifest.get("run_id", "")
    label_col = (manifest.get("evaluation") or {}).get("label_col") or "the label column"
    maps = [
        _img(images, MAP_CLUSTERS_PNG, "2-D map coloured by cluster", "Coloured by cluster; noise in grey."),
        _img(images, MAP_LABELS_PNG, f"2-D map coloured by {label_col}", f"Coloured by {label_col}."),
        _img(images, MAP_BASELINE_PNG, "2-D map coloured by the baseline's clusters",
             f"Coloured by the clusters of {inputs.baseline_title}, for comparison."),
    ]
    history = manifest.get("autoencoder_history") or {}
    epochs = max((len(history.get(k) or []) for k in ("loss", "val_loss", "epoch_seconds")), default=0)
    epoch_rows = [
        [str(i + 1)] + [number(_at(history.get(k), i), 5 if k != "epoch_seconds" else 1) for k in ("loss", "val_loss", "epoch_seconds")]
        for i in range(epochs)
    ]
    stages = manifest.get("stage_seconds") or {}
    stage_rows = [[escaped(name), number(float(seconds), 1)] for name, seconds in stages.items()]
    if "total_seconds" in manifest:
        stage_rows.append(["total", number(float(manifest["total_seconds"]), 1)])

    body = [
        "<h1>N2D clustering report</h1>",
        f"<p>Run <code>{escaped(run_id)}</code>"
        + (f", input <code>{escaped(manifest['input'])}</code>" if manifest.get("input") else "")
        + (f", finished {escaped(manifest['finished_at'])}" if manifest.get("finished_at") else "")
        + ".</p>",
        _metrics_section(manifest),
        "<h2>Maps</h2>",
        f"<p>A separate 2-component UMAP of the autoencoder embedding of {sample_rows:,} sampled rows, "
        "fitted once and coloured several ways. The clusters themselves come from the job's own UMAP "
        "and clusterer on every row. Drag to zoom, double-click to zoom out, click a topic in the "
        "legend to hide or show it.</p>",
        search_box(sample_rows),
        figure_html(document_map(xy, labels, names, inputs.texts, inputs.nearest, inputs.confidence), MAP_DIV) + search_script(),
        nearest_panel() + nearest_script() if inputs.nearest is not None else "",
        figure_html(topic_map(xy, labels, inputs.summary, inputs.examples), TOPICS_DIV)
        if inputs.summary is not None and len(inputs.summary) else "",
        "<h3>The same map as pictures</h3>",
        "\n".join(m for m in maps if m),
        _topics_over_time_section(inputs, names),
        "<h2>Autoencoder training</h2>",
        _img(images, LOSS_PNG, "training and validation loss per epoch", "Training and validation loss (MSE) per epoch."),
        _early_stop_note(manifest.get("autoencoder_epochs") or {}),
        html_table(["epoch", "training loss", "validation loss", "seconds"], epoch_rows) if epoch_rows else "",
        _cluster_section(inputs, images),
        "<h2>Stage times</h2>",
        html_table(["stage", "wall seconds"], stage_rows) if stage_rows else '<p class="muted">not recorded</p>',
        "<h2>Resolved config</h2>",
        f"<pre>{escaped(_config_text(manifest.get('config') or {}))}</pre>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>N2D report {escaped(run_id)}</title>\n<style>{REPORT_CSS}</style>\n{plotly_js_tag()}\n</head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body>\n</html>\n"
    )


def _early_stop_note(epochs: dict) -> str:
    if epochs.get("best") is None:
        return ""
    return (
        f"<p>Stopped after {number(epochs.get('run'))} of {number(epochs.get('planned'))} epochs: the validation loss "
        f"had flattened (autoencoder.early_stopping); the encoder has epoch {number(epochs['best'])}'s weights.</p>"
    )


def _topics_over_time_section(inputs: ReportInputs, names: dict[int, str]) -> str:
    table = inputs.topics_over_time
    if table is None:
        return ""
    about = inputs.manifest.get("topics_over_time") or {}
    without = about.get("rows_without_time")
    note = (
        f'<p class="muted">Periods of one {escaped(about.get("bucket", "period"))} by {escaped(about.get("time_col", "the time column"))}'
        + (f"; {number(without)} rows had no readable time and are in no period" if without else "")
        + ".</p>"
    )
    if not len(table):
        return "<h2>Topics over time</h2>" + note
    return "<h2>Topics over time</h2>" + note + figure_html(topics_over_time_chart(table, names), TIME_DIV)


def _at(values, i: int):
    return values[i] if values is not None and i < len(values) else None
