"""Data sources (image folders and zips, IDX, CelebA, procedural shapes), the cache and batches."""

from vaekit.data.dataset import ImageDataset
from vaekit.data.images import DataError
from vaekit.data.loader import BatchLoader
from vaekit.data.recipes import CROPS
from vaekit.data.sources import load_dataset, parse_spec

__all__ = ["CROPS", "BatchLoader", "DataError", "ImageDataset", "load_dataset", "parse_spec"]
