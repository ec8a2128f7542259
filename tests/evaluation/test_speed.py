"""Throughput: images per second of encode and decode, timed without touching any random stream."""

from __future__ import annotations

import torch

from tests.helpers import tiny_config
from vaekit.evaluation.speed import throughput
from vaekit.models import create_model


def test_throughput_times_encode_and_decode_and_leaves_the_global_random_streams_alone():
    model = create_model(tiny_config())
    before = torch.random.get_rng_state()
    result = throughput(model, batch_size=2, repeats=1, warmup=1)
    assert result["encode_images_per_s"] > 0 and result["decode_images_per_s"] > 0
    assert torch.equal(torch.random.get_rng_state(), before)
