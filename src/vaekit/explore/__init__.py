"""Looking at a trained model: grids, interpolations and GIFs."""

from vaekit.explore.grids import make_grid, save_grid
from vaekit.explore.interpolation import interpolate, save_gif

__all__ = ["interpolate", "make_grid", "save_gif", "save_grid"]
