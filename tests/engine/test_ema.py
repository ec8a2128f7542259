"""The exponential moving average of a module's parameters."""

import torch
from torch import nn

from vaekit.engine.ema import EMA


def test_the_shadow_moves_one_minus_decay_of_the_way_and_swaps_in_and_out():
    layer = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(layer.weight)
    ema = EMA(layer, decay=0.9)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update()
    torch.testing.assert_close(ema.shadow["weight"], torch.full((1, 2), 0.1))
    ema.update()
    torch.testing.assert_close(ema.shadow["weight"], torch.full((1, 2), 0.19))
    with ema.applied():
        torch.testing.assert_close(layer.weight.detach(), torch.full((1, 2), 0.19))
    torch.testing.assert_close(layer.weight.detach(), torch.ones(1, 2))


def test_warmup_starts_with_small_decays_and_reaches_the_configured_one():
    layer = nn.Linear(1, 1, bias=False)
    ema = EMA(layer, decay=0.99, warmup=True)
    decays = []
    for _ in range(2000):
        decays.append(ema.current_decay())
        ema.update()
    assert decays[0] == 0.1 and decays[1] == 2 / 11 and decays[-1] == 0.99
    restored = EMA(layer, decay=0.99, warmup=True)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 2000 and restored.current_decay() == 0.99
