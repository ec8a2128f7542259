"""vaekit: train and use variational autoencoders on images.

>>> import vaekit
>>> run = vaekit.train(preset="conv-mnist", data="path/to/mnist", overrides=["train.epochs=3"])
>>> model = vaekit.load(run)
>>> images = model.sample(16)
"""

from vaekit.api import load, load_images, train
from vaekit.config import Config, available_presets, load_preset
from vaekit.models import VAE, create_model

__version__ = "0.1.0"

__all__ = ["VAE", "Config", "available_presets", "create_model", "load", "load_images", "load_preset", "train"]
