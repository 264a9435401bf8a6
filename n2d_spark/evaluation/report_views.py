"""The report's interactive views: a document map, a map of the topics, and topics over time.

Plotly figures rendered as HTML fragments for ``report.html``. The page embeds plotly.js
once (``PLOTLY_JS_TAG``) and every figure's data inline, so it works from disk with no
server and no network. Texts are user data: they are HTML-escaped before Plotly sees them
(its hover labels read a few tags), and cut to ``HOVER_CHARS``.

The views share one colour per topic, so a topic looks the same in all three.
"""

from __future__ import annotations

import html
import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.offline import get_plotlyjs

from n2d_spark.core.columns import NOISE

HOVER_CHARS = 200
MAP_DIV = "n2d-map"
TOPICS_DIV = "n2d-topics"
TIME_DIV = "n2d-time"
SEARCH_BOX = "n2d-search"
NEAREST_PANEL = "n2d-nearest"
_LINE_CHARS = 70
_NOISE_COLOUR = "#b0b0b0"
_PALETTE = qualitative.Dark24
# Nothing that links to or uploads to plotly.com; the figures resize with the window.
_FIGURE_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendChartToCloud"]}


def plotly_js_tag() -> str:
    """plotly.js itself, inline (about 5 MB): every figure on the page uses it."""
    return f'<script type="text/javascript">{get_plotlyjs()}</script>'


def topic_colour(cluster: int) -> str:
    return _NOISE_COLOUR if cluster == NOISE else _PALETTE[cluster % len(_PALETTE)]


def shortened(text: str, limit: int) -> str:
    """``text`` with its runs of whitespace collapsed, cut to ``limit`` characters (an ellipsis says so)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def hover_text(text: str, limit: int = HOVER_CHARS) -> str:
    """``text`` cut to ``limit`` characters, escaped, and broken into lines for a hover label."""
    text = shortened(text, limit)
    return "<br>".join(html.escape(line, quote=True) for line in textwrap.wrap(text, _LINE_CHARS)) or "(empty)"


def figure_html(fig: go.Figure, div_id: str) -> str:
    """``fig`` as an HTML fragment for a page that has loaded plotly.js (``plotly_js_tag``)."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_FIGURE_CONFIG)


def document_map(
    xy: np.ndarray, labels: np.ndarray, names: dict[int, str], texts: list[str] | None, nearest: list[list[tuple]] | None = None,
    confidence: np.ndarray | None = None,
) -> go.Figure:
    """The sampled rows on the 2-D map, one legend entry (and colour) per topic; hover shows the topic and text.

    ``nearest``: for each row, its most similar rows as (id, similarity, text or None), which a
    click on the point lists below the map (``nearest_script``). ``confidence``: each row's
    (0-1), shown on hover; a less sure row is drawn paler, so a topic's borders show where it
    shades into another (noise, in no topic, keeps one shade).
    """
    fig = go.Figure()
    for cluster in sorted(set(int(c) for c in labels), key=lambda c: (c != NOISE, c)):
        rows = np.flatnonzero(labels == cluster)
        name = _topic_label(cluster, names)
        shown = [hover_text(texts[i]) if texts is not None else "" for i in rows]
        listed = [_nearest_html(nearest[i]) if nearest is not None else "" for i in rows]
        # Noise belongs to no topic: it has no confidence to show.
        shaded = confidence is not None and cluster != NOISE
        sure = {"text": [f"confidence {c:.2f}" for c in confidence[rows]]} if shaded else {}
        fig.add_trace(
            go.Scatter(
                x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=f"{name} ({len(rows)})",
                marker={"size": 5, "opacity": _opacity(confidence, rows) if shaded else 0.8, "color": topic_colour(cluster)},
                customdata=[[name, text, found] for text, found in zip(shown, listed)],
                hovertemplate="<b>%{customdata[0]}</b>" + (" (%{text})" if sure else "") + "<br>%{customdata[1]}<extra></extra>",
                **sure,
            )
        )
    shading = "; paler: less sure of its topic" if confidence is not None else ""
    fig.update_layout(
        height=650, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"itemsizing": "constant", "font": {"size": 11}},
        xaxis={"visible": False}, yaxis={"visible": False}, plot_bgcolor="white",
        title={"text": f"{len(xy):,} sampled rows; hover a point to read it{shading}", "font": {"size": 13}},
    )
    return fig


def _opacity(confidence: np.ndarray, rows: np.ndarray) -> list[float]:
    """From 0.15 (confidence 0, a border) to 0.9 (a topic's centre); an unknown confidence as 0."""
    return [round(0.15 + 0.75 * float(c), 3) for c in np.clip(np.nan_to_num(confidence[rows], nan=0.0), 0, 1)]


def _nearest_html(found: list[tuple]) -> str:
    """A row's most similar rows as an HTML list, every text escaped."""
    items = "".join(
        f"<li><code>{html.escape(str(row_id))}</code> ({similarity:.3f})"
        + (f": {html.escape(shortened(text, HOVER_CHARS))}" if text else "") + "</li>"
        for row_id, similarity, text in found
    )
    return f"<ol>{items}</ol>" if items else "<p>no similar rows recorded</p>"


def nearest_panel() -> str:
    """Where a click on the document map lists the point's most similar rows (``nearest_script``)."""
    return f'<div id="{NEAREST_PANEL}"><p class="muted">Click a point on the map to list its most similar rows (neighbours/).</p></div>'


def nearest_script() -> str:
    # customdata[2] is HTML built here from escaped texts (_nearest_html).
    return f"""<script type="text/javascript">
(function () {{
  var plot = document.getElementById("{MAP_DIV}"), panel = document.getElementById("{NEAREST_PANEL}");
  if (!plot || !panel || !plot.on) return;
  plot.on("plotly_click", function (event) {{
    var point = event.points[0];
    panel.innerHTML = "<p>Most similar to the row \u201c" + point.customdata[1].slice(0, 80) + "\u201d:</p>" + point.customdata[2];
  }});
}})();
</script>"""


def search_box(n_rows: int) -> str:
    """A text box that highlights the rows of the document map (div ``MAP_DIV``) whose text contains its words."""
    return (
        f'<p><label for="{SEARCH_BOX}">Highlight the rows whose text contains </label>'
        f'<input id="{SEARCH_BOX}" type="search" placeholder="a word" size="24"> '
        f'<span id="{SEARCH_BOX}-note" class="muted">of {n_rows:,} rows on the map</span></p>'
    )


def search_script() -> str:
    # The texts in customdata are escaped, so the query is escaped the same way before matching.
    return f"""<script type="text/javascript">
(function () {{
  var box = document.getElementById("{SEARCH_BOX}"), note = document.getElementById("{SEARCH_BOX}-note");
  var plot = document.getElementById("{MAP_DIV}");
  if (!box || !plot) return;
  var escapes = {{"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}};
  function escape(s) {{ return s.replace(/[&<>"']/g, function (c) {{ return escapes[c]; }}); }}
  var texts = null, shading = null, total = 0;
  box.addEventListener("input", function () {{
    if (texts === null) {{
      texts = plot.data.map(function (trace) {{
        return trace.customdata.map(function (d) {{ total += 1; return d[1].replace(/<br>/g, " ").toLowerCase(); }});
      }});
      // Each point's own opacity (its confidence's shade), given back when the box is cleared.
      shading = plot.data.map(function (trace) {{
        var o = trace.marker.opacity;
        return trace.customdata.map(function (d, i) {{ return Array.isArray(o) ? o[i] : o; }});
      }});
    }}
    var query = escape(box.value.trim().toLowerCase()), hits = 0;
    var opacity = texts.map(function (rows, r) {{
      return rows.map(function (t, i) {{
        var hit = query && t.indexOf(query) >= 0; if (hit) hits += 1; return !query ? shading[r][i] : hit ? 0.9 : 0.07;
      }});
    }});
    var size = opacity.map(function (rows) {{ return rows.map(function (o) {{ return query && o > 0.5 ? 9 : 5; }}); }});
    Plotly.restyle(plot, {{"marker.opacity": opacity, "marker.size": size}});
    note.textContent = query ? hits + " of " + total + " rows on the map contain \\u201c" + box.value.trim() + "\\u201d"
                             : "of " + total + " rows on the map";
  }});
}})();
</script>"""


def topic_map(xy: np.ndarray, labels: np.ndarray, summary: pd.DataFrame, examples: dict[int, list[str]]) -> go.Figure:
    """Each topic as a circle at the centre of its rows on the document map, its area its share of all rows."""
    total = int(summary["size"].sum()) or 1
    clusters, centres, shares, hovers = [], [], [], []
    for record in summary.sort_values("cluster").to_dict("records"):
        cluster = int(record["cluster"])
        on_map = labels == cluster
        if cluster == NOISE or not on_map.any():
            continue
        terms = ", ".join(str(t) for t in list(record.get("top_terms") or [])[:10])
        shown = "<br>".join("• " + hover_text(text, 120) for text in (examples.get(cluster) or [])[:2])
        share = int(record["size"]) / total
        clusters.append(cluster)
        centres.append(xy[on_map].mean(axis=0))
        shares.append(share)
        hovers.append(
            f"<b>{html.escape(str(record.get('name') or cluster))}</b><br>{int(record['size']):,} rows, {100 * share:.1f}%"
            f"<br>{html.escape(terms)}" + (f"<br>{shown}" if shown else "")
        )
    centres = np.array(centres).reshape(-1, 2)
    fig = go.Figure(
        go.Scatter(
            x=centres[:, 0], y=centres[:, 1], mode="markers+text", text=[str(c) for c in clusters],
            marker={
                "size": shares, "sizemode": "area", "sizeref": 2 * max(shares, default=1) / 70**2, "sizemin": 6,
                "color": [topic_colour(c) for c in clusters], "opacity": 0.6, "line": {"width": 1, "color": "white"},
            },
            hovertext=hovers, hoverinfo="text", showlegend=False,
        )
    )
    fig.update_layout(
        height=550, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis={"visible": False}, yaxis={"visible": False},
        plot_bgcolor="white", title={"text": "Topics where their rows lie on the map; area = share of rows", "font": {"size": 13}},
    )
    return fig


def topics_over_time_chart(table: pd.DataFrame, names: dict[int, str]) -> go.Figure:
    """Each topic's share of each period's rows, one line per topic; hover shows that period's top terms."""
    periods = sorted(table["period"].unique())
    fig = go.Figure()
    for cluster, rows in table.groupby("cluster"):
        cluster = int(cluster)
        by_period = rows.set_index("period").reindex(periods)
        terms = [", ".join(list(t)[:6]) if isinstance(t, (list, np.ndarray)) else "" for t in by_period["top_terms"]]
        fig.add_trace(
            go.Scatter(
                x=[str(p) for p in periods], y=by_period["share"].fillna(0.0), mode="lines+markers",
                name=_topic_label(cluster, names), line={"color": topic_colour(cluster)},
                customdata=np.column_stack([by_period["rows"].fillna(0).astype(int), [html.escape(t) for t in terms]]),
                hovertemplate=(
                    f"<b>{_topic_label(cluster, names)}</b><br>%{{x}}: %{{y:.1%}} of the period's rows "
                    "(%{customdata[0]})<br>%{customdata[1]}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        height=500, margin={"l": 50, "r": 10, "t": 30, "b": 40}, yaxis={"tickformat": ".0%", "title": "share of the period's rows"},
        legend={"font": {"size": 11}}, title={"text": "Topics over time; click a topic in the legend to hide it", "font": {"size": 13}},
    )
    return fig


def _topic_label(cluster: int, names: dict[int, str]) -> str:
    """The topic's name, escaped: Plotly reads tags in legend and hover text."""
    return "noise" if cluster == NOISE else html.escape(names.get(cluster, f"cluster {cluster}"), quote=True)
