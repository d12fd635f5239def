"""Sample grids, scatter plots, the HTML run report and a run's evaluation history."""
from .evals import latest_eval, read_evals, record_eval
from .grid import panel_rows, save_grid, save_panels, save_scatter, tile
from .html import read_metrics, write_report

__all__ = ["panel_rows", "save_grid", "save_panels", "save_scatter", "tile", "read_metrics", "write_report", "latest_eval", "read_evals",
           "record_eval"]
