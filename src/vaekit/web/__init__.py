"""``vaekit serve``: a local web page to explore a trained model's latent space."""

from vaekit.web.app import create_app, serve
from vaekit.web.background import running

__all__ = ["create_app", "running", "serve"]
