import torch

from tests.helpers import tiny_config
from vaekit.explore.sampling import dump_images, iter_samples, sample_images
from vaekit.models import create_model


def test_samples_drawn_in_chunks_are_the_samples_drawn_at_once_and_are_written_one_by_one(tmp_path):
    model = create_model(tiny_config()).eval()
    whole = sample_images(model, 10, seed=3, batch_size=4)
    chunks = list(iter_samples(model, 10, seed=3, batch_size=4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    torch.testing.assert_close(torch.cat(chunks), whole, rtol=0, atol=0)
    assert dump_images(iter(chunks), tmp_path) == 10
    assert sorted(p.name for p in tmp_path.iterdir())[-1] == "sample-000009.png"


def test_the_temperature_and_the_seed_shape_the_samples():
    model = create_model(tiny_config()).eval()
    cold, warm = sample_images(model, 8, seed=1, temperature=0.1), sample_images(model, 8, seed=1, temperature=2.0)
    assert not torch.equal(cold, warm)
    assert torch.equal(sample_images(model, 8, seed=1), sample_images(model, 8, seed=1))
    assert not torch.equal(sample_images(model, 8, seed=1), sample_images(model, 8, seed=2))


def test_samples_for_fid_are_made_in_chunks_sized_by_pixels(monkeypatch):
    import vaekit.limits as limits
    from tests.helpers import tiny_config
    from vaekit.explore.sampling import iter_samples
    from vaekit.models import create_model

    model = create_model(tiny_config()).eval()  # 16 px, 3 channels
    monkeypatch.setattr(limits, "CHUNK_VALUES", 5 * 3 * 16 * 16)
    assert [len(chunk) for chunk in iter_samples(model, 12)] == [5, 5, 2]
    monkeypatch.setattr(limits, "CHUNK_VALUES", 1 << 40)
    assert [len(chunk) for chunk in iter_samples(model, 600)] == [256, 256, 88]  # at most 256 at a time
