"""The report's charts as inline SVG (matplotlib, Agg; text stays text).

Okabe-Ito colours (colour-blind safe, distinct in grey print), no chart junk,
labels in plain words. Each function takes report data and returns one
``<svg>`` string; :func:`all_plots` returns them with ids and captions.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.contracts import EVA_ANGLE_EDGES_DEG, EVA_DURATION_EDGES_S, DailySummary
from dashboards.panels import BAND_COLOURS, BLUE, GREEN, GREY, ORANGE, PURPLE, SKY_BLUE, YELLOW
from dashboards.report.model import ReportData

TEXT = "#222222"
RC: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": "#888888",
    "axes.labelcolor": TEXT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "xtick.color": TEXT,
    "ytick.color": TEXT,
    "legend.frameon": False,
    "svg.fonttype": "none",  # keep text as text: crisp, searchable, small
}
WIDTH_IN = 7.0


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    caption: str
    svg: str


def _figure(height_in: float) -> tuple[Figure, Axes]:
    # A bare Figure (no pyplot): no global state, no GUI backend, thread-safe.
    fig = Figure(figsize=(WIDTH_IN, height_in))
    return fig, fig.subplots()


def _svg(fig: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element; ``name`` salts its element ids, so the
    six charts inlined in one page never share an id."""
    buf = io.StringIO()
    with rc_context({"svg.hashsalt": f"postmon-report-{name}"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # matplotlib names groups "figure_1", "axes_1", ... in every file: prefix
    # ids and the references to them so inlined charts stay distinct
    text = re.sub(r'\bid="', f'id="{name}-', text)
    text = text.replace("url(#", f"url(#{name}-")
    return re.sub(r'href="#', f'href="#{name}-', text)


def _dates(days: Sequence[DailySummary]) -> npt.NDArray[np.float64]:
    """Matplotlib date numbers of the days (so the axis is a real time axis)."""
    return _num([dt.date.fromisoformat(d.date) for d in days])


def _num(dates: Sequence[dt.date]) -> npt.NDArray[np.float64]:
    return np.asarray(mdates.date2num(list(dates)), dtype=np.float64)


def _date_axis(ax: Axes, data: ReportData) -> None:
    """The same calendar axis on every chart: the whole period, ticks every few days."""
    n_days = data.n_calendar_days
    lo, hi = _num([data.date_from, data.date_to])
    ax.set_xlim(lo - 0.7, hi + 0.7)
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, math.ceil(n_days / 8))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.tick_params(axis="x", labelrotation=0)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def posture_per_day(data: ReportData) -> str:
    days = data.days
    x = _dates(days)
    parts = (
        ("Sitting", [d.sitting_min for d in days], ORANGE),
        ("Standing", [d.standing_min for d in days], SKY_BLUE),
        ("Walking", [d.walking_min for d in days], GREEN),
        ("Lying", [d.lying_min for d in days], PURPLE),
        ("Other", [d.other_min for d in days], YELLOW),
    )
    with rc_context(RC):
        fig, ax = _figure(2.8)
        bottom = np.zeros(len(days))
        for label, minutes, colour in parts:
            hours = np.nan_to_num(np.asarray(minutes, dtype=float)) / 60
            ax.bar(x, hours, bottom=bottom, color=colour, label=label, width=0.8)
            bottom += hours
        ax.set_ylabel("hours")
        _date_axis(ax, data)
        ax.legend(ncols=5, loc="upper center", bbox_to_anchor=(0.5, 1.15))
        return _svg(fig, "posture_per_day")


def static_bouts(data: ReportData) -> str:
    days = data.days
    x = _dates(days)
    with rc_context(RC):
        fig, ax = _figure(2.5)
        longest = [d.longest_static_bout_min for d in days]
        ax.bar(x, longest, color=BLUE, width=0.8, label="longest still period")
        ax.axhline(30, color=TEXT, linestyle=(0, (4, 3)), linewidth=1)
        ax.text(
            1.005,
            30,
            "30 min",
            ha="left",
            clip_on=False,
            fontsize=8,
            color=TEXT,
            va="center",
            transform=ax.get_yaxis_transform(),
        )
        for xi, d in zip(x, days, strict=True):
            if d.sitting_bouts_ge30:
                ax.text(
                    xi,
                    d.longest_static_bout_min + 1,
                    str(d.sitting_bouts_ge30),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color=TEXT,
                )
        ax.set_ylabel("minutes")
        _date_axis(ax, data)
        return _svg(fig, "static_bouts")


def flexion_bands(data: ReportData) -> str:
    days = data.days
    x = _dates(days)
    bands = (
        ("under 20°", [d.flexion_lt20_min for d in days]),
        ("20-45°", [d.flexion_20_45_min for d in days]),
        ("45-60°", [d.flexion_45_60_min for d in days]),
        ("over 60°", [d.flexion_gt60_min for d in days]),
    )
    with rc_context(RC):
        fig, ax = _figure(2.6)
        bottom = np.zeros(len(days))
        for (label, minutes), colour in zip(bands, BAND_COLOURS, strict=True):
            hours = np.nan_to_num(np.asarray(minutes, dtype=float)) / 60
            ax.bar(
                x,
                hours,
                bottom=bottom,
                color=colour,
                label=label,
                width=0.8,
                edgecolor="white",
                linewidth=0.3,
            )
            bottom += hours
        ax.set_ylabel("hours")
        _date_axis(ax, data)
        ax.legend(
            ncols=4,
            loc="upper center",
            bbox_to_anchor=(0.5, 1.25),
            title="forward bend",
            title_fontsize=8,
        )
        return _svg(fig, "flexion_bands")


def apdf(data: ReportData) -> str:
    days = [d for d in data.days if d.wear_min > 0]
    x = _dates(days)
    p10 = np.array([d.incl_p10_deg for d in days], dtype=float)
    p50 = np.array([d.incl_p50_deg for d in days], dtype=float)
    p90 = np.array([d.incl_p90_deg for d in days], dtype=float)
    with rc_context(RC):
        fig, ax = _figure(2.5)
        ax.vlines(x, p10, p90, color=SKY_BLUE, linewidth=5, label="P10 to P90 (spread)")
        ax.scatter(x, p50, color=BLUE, s=18, zorder=3, label="P50 (typical)")
        ax.set_ylabel("degrees from upright")
        ax.set_ylim(bottom=0)
        _date_axis(ax, data)
        ax.legend(ncols=2, loc="upper center", bbox_to_anchor=(0.5, 1.15))
        return _svg(fig, "apdf")


def eva_heatmap(data: ReportData) -> str:
    """Mean minutes per worn day in each angle class × uninterrupted-duration class."""
    worn = [d for d in data.days if d.wear_min > 0]
    n_a = len(EVA_ANGLE_EDGES_DEG) + 1
    n_d = len(EVA_DURATION_EDGES_S) + 1
    grid = np.zeros((n_a, n_d))
    if worn:
        grid = np.mean([np.asarray(d.eva_min, dtype=float).reshape(n_a, n_d) for d in worn], axis=0)
    a_edges = (0.0, *EVA_ANGLE_EDGES_DEG)
    a_labels = [
        f"{a_edges[i]:g}-{EVA_ANGLE_EDGES_DEG[i]:g}°" if i < n_a - 1 else f"over {a_edges[i]:g}°"
        for i in range(n_a)
    ]

    def span(lo: float, hi: float) -> str:
        # "1-5 s", "30-60 s", "1-5 min": one unit per label
        if hi <= 60:
            return f"{lo:g}-{hi:g} s"
        return f"{lo / 60:g}-{hi / 60:g} min"

    d_edges = EVA_DURATION_EDGES_S
    last = d_edges[-1]
    d_labels = (
        [f"< {d_edges[0]:g} s"]
        + [span(d_edges[j - 1], d_edges[j]) for j in range(1, n_d - 1)]
        + [f"> {last / 60:g} min" if last >= 60 else f"> {last:g} s"]
    )
    with rc_context(RC):
        fig, ax = _figure(2.6)
        im = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
        ax.set_xticks(range(n_d), d_labels)
        ax.set_yticks(range(n_a), a_labels)
        ax.set_xlabel("held without interruption")
        ax.set_ylabel("forward bend")
        ax.spines[:].set_visible(False)
        vmax = float(grid.max()) if grid.size else 0.0
        for i in range(n_a):
            for j in range(n_d):
                v = grid[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if v < 0.6 * vmax else "black",
                )
        cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cb.set_label("minutes per day")
        return _svg(fig, "eva_heatmap")


def nudge_response(data: ReportData) -> str:
    span = [data.date_from + dt.timedelta(days=k) for k in range(data.n_calendar_days)]
    sent = dict.fromkeys(span, 0)
    answered = dict.fromkeys(span, 0)
    for n in data.nudges:
        day = dt.date.fromisoformat(n.date)
        sent[day] = sent.get(day, 0) + 1
        answered[day] = answered.get(day, 0) + int(n.answered)
    with rc_context(RC):
        fig, ax = _figure(2.3)
        days = list(sent)
        xs = _num(days)
        ax.bar(xs, [sent[d] for d in days], color=GREY, width=0.8, label="reminders sent")
        ax.bar(
            xs,
            [answered[d] for d in days],
            color=GREEN,
            width=0.5,
            label="moved in time after one",
        )
        ax.set_ylabel("per day")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _date_axis(ax, data)
        ax.legend(ncols=2, loc="upper center", bbox_to_anchor=(0.5, 1.18))
        return _svg(fig, "nudge_response")


def all_plots(data: ReportData) -> list[Plot]:
    return [
        Plot(
            "posture",
            "Time in each posture, per day",
            "Hours per day sitting, standing, walking, lying and other.",
            posture_per_day(data),
        ),
        Plot(
            "static",
            "Longest still period, per day",
            "The longest time without meaningful trunk movement each day; the number above a "
            "bar counts sitting bouts of 30 minutes or more.",
            static_bouts(data),
        ),
        Plot(
            "flexion",
            "Forward bend of the trunk, per day",
            "Hours per day in each band of forward bend, relative to the wearer's own upright "
            "posture.",
            flexion_bands(data),
        ),
        Plot(
            "apdf",
            "Range of trunk postures (APDF), per day",
            "The bar spans the 10th to 90th percentile of trunk inclination; a longer bar "
            "means more varied postures.",
            apdf(data),
        ),
        Plot(
            "eva",
            "How long postures were held (EVA)",
            "Mean minutes per worn day in each band of forward bend, by how long the posture "
            "was held without interruption (Exposure Variation Analysis).",
            eva_heatmap(data),
        ),
        Plot(
            "nudges",
            "Reminders to move, per day",
            "Reminders sent, and how many were followed by movement in time.",
            nudge_response(data),
        ),
    ]
