"""Pure figure builders (arguments in, go.Figure out), shared by exports, the figure command and
the app's small plots: palette.py (colours, labels), layers.py (the map's rules: trajectories,
opacity, density, upload markers; the interactive map itself is WebGL, frontend/), small.py
(outputs, image), time.py (a patient's course, the cohort over time), paper.py (figures for a
journal page)."""
from cxrviz.figures.layers import (ARROW_AT, ARROW_TRACES, PATH_TRACES, POINT_OPACITY,
                                   percentile_ticks, trajectory_data, visible_edges)
from cxrviz.figures.palette import (COLOR_LABELS, GREY, OKABE_ITO, STATE_COLORS,
                                    SURVIVAL_COLORS, SURVIVAL_NAMES, category_colors,
                                    color_options, point_colors)
from cxrviz.figures.paper import EXPORT_DPI, PRESETS, paper_figure
from cxrviz.figures.small import image_figure, outputs_figure

__all__ = [
    "ARROW_AT", "ARROW_TRACES", "COLOR_LABELS", "EXPORT_DPI", "GREY", "OKABE_ITO", "PATH_TRACES",
    "POINT_OPACITY", "PRESETS", "STATE_COLORS", "SURVIVAL_COLORS", "SURVIVAL_NAMES",
    "category_colors", "color_options", "image_figure", "outputs_figure", "paper_figure",
    "percentile_ticks", "point_colors", "trajectory_data", "visible_edges",
]
