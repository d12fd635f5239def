"""Sample grids, scatter plots and the HTML run report."""
from .grid import save_grid, save_scatter, tile
from .html import read_metrics, write_report

__all__ = ["save_grid", "save_scatter", "tile", "read_metrics", "write_report"]
