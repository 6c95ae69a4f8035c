"""Log-scale tick labels of the run's figures (``runs/figures.py``)."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from handgrad.runs.figures import _log_scale


@pytest.mark.parametrize("span", [(2.87e-3, 2.89e-3), (2.1e-8, 2.6e-8), (0.21, 0.26), (1e-3, 1e2)])
def test_log_tick_labels_never_repeat(span):
    figure = Figure()
    ax = figure.add_subplot()
    ax.plot([1, 2], span)
    _log_scale(ax, "y")
    FigureCanvasAgg(figure).draw()
    lo, hi = ax.get_ylim()
    ticks = ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()
    labels = [t.label1.get_text() for t in ticks if t.label1.get_text() and lo <= t.get_loc() <= hi]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
