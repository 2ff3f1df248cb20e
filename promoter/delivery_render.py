"""Delivery metrics as people read them: an aligned table for a CI log, markdown with a chart for Prefect.

The chart is text (unicode bars in a code block), which reads the same in a terminal, the Prefect UI and a
copied-out artifact; with matplotlib installed (`promoter[charts]`) the artifact shows it as a picture too.
"""

from __future__ import annotations

from collections.abc import Sequence

from promoter.delivery import DeliveryMetrics, EnvironmentMetrics
from promoter.delivery_chart import png_markdown

BAR = "█"
BAR_WIDTH = 24
COUNTING = (
    "A deployment is a commit on main that changed an app's tag or digest in an environment. Lead time runs "
    "from the release's first bump (in the first environment) to its merge into that environment; a failure "
    "is a deployment Flux reported failed; time to restore runs from an app's first failed deployment to its "
    "next healthy one there. Percentiles are nearest-rank."
)


def duration(seconds: float | None) -> str:
    """Two units at most, zero-padded so a column lines up: `45s`, `2m 05s`, `1h 00m`, `3d 04h`; `-` for none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _rate(metrics: EnvironmentMetrics) -> str:
    if metrics.change_failure_rate is None:
        return "-"
    return f"{metrics.change_failure_rate:.0%} ({metrics.failures} of {metrics.deployments})"


HEADERS = (
    "env",
    "deployments",
    "per day",
    "per week",
    "lead p50",
    "lead p90",
    "change failure",
    "restore p50",
    "unrestored",
)


def _row(m: EnvironmentMetrics) -> tuple[str, ...]:
    return (
        m.env,
        str(m.deployments),
        f"{m.per_day:.2f}",
        f"{m.per_week:.2f}",
        duration(m.lead_p50),
        duration(m.lead_p90),
        _rate(m),
        duration(m.restore_p50),
        str(m.unrestored),
    )


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell: the first left-aligned, numbers to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _window(metrics: DeliveryMetrics) -> str:
    since, until = (when.strftime("%Y-%m-%d %H:%M") for when in (metrics.since, metrics.until))
    return f"{since} to {until} UTC ({metrics.days:g} days)"


def table(metrics: DeliveryMetrics) -> str:
    """`promoter metrics`: a heading line, the table, and how many deployments Flux said nothing on."""
    apps = ", ".join(metrics.apps) or "no deployments"
    lines = [f"Delivery of {apps}, {_window(metrics)}", ""]
    lines += aligned([HEADERS, *(_row(m) for m in metrics.environments)])
    unreported = sum(m.unreported for m in metrics.environments)
    if unreported:
        many = "deployment" if unreported == 1 else "deployments"
        lines += ["", f"{unreported} {many} without a Flux report: counted as deployments, not as failures."]
    return "\n".join(lines)


def chart(metrics: DeliveryMetrics) -> str:
    """Deployments per UTC day and environment, one bar each, scaled to the busiest."""
    busiest = max((count for m in metrics.environments for _, count in m.daily), default=0)
    scale = min(1.0, BAR_WIDTH / busiest) if busiest else 1.0
    width = max((len(m.env) for m in metrics.environments), default=0)
    lines = []
    days = [day for day, _ in metrics.environments[0].daily] if metrics.environments else []
    for index, day in enumerate(days):
        label = day.strftime("%a %m-%d")
        for number, m in enumerate(metrics.environments):
            count = m.daily[index][1]
            bar = BAR * (max(1, round(count * scale)) if count else 0)
            lead = label if number == 0 else " " * len(label)
            lines.append(f"{lead}  {m.env.ljust(width)}  {bar} {count}".rstrip())
    return "\n".join(lines)


def markdown(metrics: DeliveryMetrics) -> str:
    """The weekly artifact: the table, the chart, and what counts as what."""
    headers = (
        "environment",
        "deployments",
        "per day",
        "per week",
        "lead time p50",
        "lead time p90",
        "change failure rate",
        "time to restore p50",
        "unrestored",
    )
    lines = [
        f"## Delivery, {_window(metrics)}",
        "",
        f"Apps: {', '.join(f'`{a}`' for a in metrics.apps) or 'no deployments'}",
        "",
        "| " + " | ".join(headers) + " |",
        "| --- |" + " ---: |" * (len(headers) - 1),
        *("| " + " | ".join(_row(m)) + " |" for m in metrics.environments),
        "",
        "### Deployments per day (UTC)",
        "",
        *([image, ""] if (image := png_markdown(metrics)) else []),
        "```text",
        chart(metrics),
        "```",
        "",
        COUNTING,
    ]
    return "\n".join(lines) + "\n"
