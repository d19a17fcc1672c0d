"""Pure figure builders (arguments in, go.Figure out), shared by the app, exports and the figure
command: palette.py (colours, labels), layers.py (the map), small.py (outputs, image),
time.py (a patient's course, the cohort over time), paper.py (figures for a journal page)."""
from cxrviz.figures.layers import (ARROW_AT, ARROW_TRACES, DIM_OPACITY,
                                   PATH_TRACES, POINT_OPACITY, TRACE, TRAJECTORY_TRACES,
                                   arrow_angles, arrow_opacity, density_trace, highlight_path,
                                   map_figure, path_opacity, percentile_ticks, point_positions,
                                   selected_point,
                                   trajectory_data, uploads_trace, visible_edges)
from cxrviz.figures.palette import (COLOR_LABELS, GREY, OKABE_ITO, STATE_COLORS,
                                    SURVIVAL_COLORS, SURVIVAL_NAMES, category_colors,
                                    color_options, point_colors)
from cxrviz.figures.paper import EXPORT_DPI, PRESETS, paper_figure
from cxrviz.figures.small import image_figure, outputs_figure

__all__ = [
    "ARROW_AT", "ARROW_TRACES", "COLOR_LABELS", "DIM_OPACITY", "EXPORT_DPI", "GREY",
    "OKABE_ITO", "PATH_TRACES", "POINT_OPACITY", "PRESETS", "STATE_COLORS",
    "SURVIVAL_COLORS", "SURVIVAL_NAMES", "TRACE", "TRAJECTORY_TRACES", "arrow_angles",
    "arrow_opacity", "category_colors", "color_options", "density_trace",
    "highlight_path", "image_figure", "map_figure", "outputs_figure",
    "paper_figure", "path_opacity", "percentile_ticks", "point_colors", "point_positions", "selected_point", "trajectory_data",
    "uploads_trace", "visible_edges",
]
