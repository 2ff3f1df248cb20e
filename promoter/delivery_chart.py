"""The weekly report's chart as a PNG: deployments per day and environment, drawn by matplotlib.

Optional (`promoter[charts]`): without matplotlib the report keeps its text chart alone. The picture is
embedded as a `data:image/png;base64` image, which both of Prefect's UIs render in a markdown artifact
(the V2 UI's sanitizer strips inline `<svg>` but keeps `data:image/*` in an `<img>`).
"""

from __future__ import annotations

import base64
import io

from promoter.delivery import DeliveryMetrics


def png_chart(metrics: DeliveryMetrics) -> bytes | None:
    """Grouped bars, one group per UTC day, one bar per environment; None without matplotlib or data."""
    try:
        from matplotlib.figure import Figure  # the object API: no pyplot state, safe in any thread
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    environments = metrics.environments
    if not environments or not environments[0].daily:
        return None
    days = [day for day, _ in environments[0].daily]
    figure = Figure(figsize=(7.5, 2.8), dpi=100)
    axes = figure.subplots()
    width = 0.8 / len(environments)
    for index, env in enumerate(environments):
        positions = [day + (index - (len(environments) - 1) / 2) * width for day in range(len(days))]
        axes.bar(positions, [count for _, count in env.daily], width, label=env.env)
    axes.set_xticks(range(len(days)), [day.strftime("%a\n%m-%d") for day in days])
    axes.set_ylabel("deployments")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole deployments
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(frameon=False, ncols=len(environments), loc="upper left", bbox_to_anchor=(0, 1.18))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def png_markdown(metrics: DeliveryMetrics) -> str | None:
    """The chart as a markdown image, or None when it cannot be drawn."""
    png = png_chart(metrics)
    if png is None:
        return None
    return f"![Deployments per day and environment](data:image/png;base64,{base64.b64encode(png).decode()})"
