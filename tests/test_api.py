"""The Python API as a notebook user meets it: in-memory data, own networks, reload, image-space methods."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from tests.networks import MLPDecoder, MLPEncoder
from vaekit.config import ConfigError
from vaekit.data import DataError
from vaekit.plugins import UntrustedCode

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.latent_dim=4",
    "model.channels=[8,16]",
    "likelihood.name=gaussian",
    "likelihood.scale=0.1",
    "train.epochs=2",
    "train.batch_size=16",
    "train.log_every=2",
    "train.grid_size=4",
    "train.threads=1",
    "train.fit_sampler=false",  # (tests/training/test_sampler_fit.py)
]


def digits(n: int = 64, size: int = 16) -> np.ndarray:
    """uint8 (N, H, W) pictures: a bright square whose position depends on the index."""
    images = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        top = i % (size - 4)
        images[i, top : top + 4, 4:8] = 255
    return images


def fresh_process(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing cached from this one) and return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_train_from_a_numpy_array_records_the_data_and_reloads_in_a_fresh_process(tmp_path):
    images = digits()
    run = vaekit.train(data=images, out=tmp_path / "run", overrides=TINY)
    config = vaekit.load(run).config
    assert config.data.source == "memory" and config.data.image_size == 16 and config.data.channels == 1
    assert config.data.fingerprint.startswith("64x1x16x16 uint8 sha256:")
    out = fresh_process(
        f"""
        import vaekit
        model = vaekit.load({str(run)!r})
        images = model.generate(5, seed=0)
        print(tuple(images.shape), float(images.min()) >= 0, float(images.max()) <= 1)
        """
    )
    assert out.strip() == "(5, 1, 16, 16) True True"


def test_float_tensor_nchw_and_numpy_nhwc_are_the_same_data(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    from vaekit.data.memory import fingerprint, from_memory

    as_numpy = from_memory(rgb)
    as_tensor = from_memory(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0)
    assert as_numpy.image_shape == (3, 16, 16)
    np.testing.assert_array_equal(as_numpy.images, as_tensor.images)
    assert fingerprint(as_numpy) == fingerprint(as_tensor)
    run = vaekit.train(
        data=torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0, out=tmp_path / "t", overrides=TINY
    )
    assert vaekit.load(run).image_shape == (3, 16, 16)


def test_a_torch_dataset_of_image_label_pairs_trains_and_keeps_its_labels(tmp_path):
    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return 48

        def __getitem__(self, i):
            return torch.from_numpy(digits(48)[i]).float()[None] / 255.0, i % 3

    from vaekit.data.memory import from_memory

    dataset = from_memory(Pairs())
    assert dataset.labels.tolist()[:4] == [0, 1, 2, 0]
    run = vaekit.train(data=Pairs(), out=tmp_path / "run", overrides=TINY)
    assert (run / "model" / "model.safetensors").is_file()


def test_a_hugging_face_dataset_with_an_image_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    pictures = [Image.fromarray(image) for image in digits(40)]
    hf = datasets.Dataset.from_dict({"image": pictures, "label": [i % 2 for i in range(40)]}).cast_column(
        "image", datasets.Image()
    )
    from vaekit.data.memory import from_memory

    dataset = from_memory(hf)
    assert dataset.image_shape == (1, 16, 16) and dataset.labels.tolist()[:3] == [0, 1, 0]
    np.testing.assert_array_equal(dataset.images[:, 0], digits(40))


def test_bad_in_memory_data_gets_one_clear_line():
    from vaekit.data.memory import from_memory

    with pytest.raises(DataError, match=r"must lie in \[0, 1\]"):
        from_memory(np.full((4, 8, 8), 3.0))
    with pytest.raises(DataError, match="vectors, not images"):
        from_memory(np.zeros((4, 2), np.float32))
    with pytest.raises(DataError, match="NaN"):
        from_memory(np.full((4, 8, 8), np.nan))
    with pytest.raises(DataError, match="cannot use a dict"):
        from_memory({"a": 1})


def test_own_networks_train_and_reload_in_a_fresh_process_only_with_trust(tmp_path):
    model = vaekit.VAE.from_modules(
        MLPEncoder(256, 2),
        MLPDecoder(2, (1, 16, 16)),
        latent_shape=2,
        likelihood="gaussian",
        scale=0.1,
        encoder_args={"inputs": 256, "latent": 2},
        decoder_args={"latent": 2, "shape": [1, 16, 16]},
    )
    run = vaekit.train(
        data=digits(), model=model, out=tmp_path / "run", overrides=["train.epochs=2", "train.batch_size=16"]
    )
    config = vaekit.load(run, trust_code=True).config
    assert config.model.arch == "modules" and config.model.modules.encoder == "tests.networks:MLPEncoder"
    assert config.likelihood.name == "gaussian" and config.likelihood.scale == 0.1
    with pytest.raises(UntrustedCode, match="--trust-code"):
        vaekit.load(run)
    same = vaekit.load(run, modules=(MLPEncoder(256, 2), MLPDecoder(2, (1, 16, 16))))
    torch.testing.assert_close(same.decode_images(torch.zeros(1, 2)), model.decode_images(torch.zeros(1, 2)))
    out = fresh_process(
        f"""
        import vaekit, torch
        model = vaekit.load({str(run)!r}, trust_code=True)
        images = model.generate(3, seed=1)
        print(type(model.encoder).__name__, tuple(images.shape), bool(((images >= 0) & (images <= 1)).all()))
        """
    )
    assert out.strip() == "MLPEncoder (3, 1, 16, 16) True"


def test_own_networks_train_on_vectors_with_every_objective(tmp_path):
    points = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)
    for objective in ("elbo", "soft-intro"):
        model = vaekit.VAE.from_modules(
            MLPEncoder(2, 2),
            MLPDecoder(2, (2,)),
            latent_shape=(2,),
            likelihood="gaussian",
            output="identity",
            encoder_args={"inputs": 2},
            decoder_args={"shape": [2]},
        )
        run = vaekit.train(
            data=points,
            model=model,
            out=tmp_path / objective,
            overrides=[f"objective.name={objective}", "train.epochs=1", "train.batch_size=64"],
        )
        assert vaekit.load(run, trust_code=True).config.data.vector_dim == 2
        assert model.generate(4).shape == (4, 2)


def test_a_plug_in_architecture_and_objective_need_trust(tmp_path):
    overrides = [
        *TINY,
        "model.arch=tests.networks:TinyPluginVAE",
        "model.options.hidden=8",
        "objective.name=tests.networks:CountingELBO",
    ]
    with pytest.raises(UntrustedCode, match=r"model\.arch"):
        vaekit.train(data=digits(), out=tmp_path / "no", overrides=overrides)
    run = vaekit.train(data=digits(), out=tmp_path / "yes", overrides=overrides, trust_code=True)
    assert "steps_seen" in (run / "metrics.csv").read_text().splitlines()[0]
    assert type(vaekit.load(run, trust_code=True)).__name__ == "TinyPluginVAE"


def test_image_space_methods_return_images_in_the_unit_range(tmp_path):
    run = vaekit.train(data=digits(), out=tmp_path / "run", overrides=TINY)
    model = vaekit.load(run)
    z = torch.randn(3, *model.latent_shape) * 5
    decoded = model.decode_images(z)
    raw = model.decode(z)
    assert decoded.min() >= 0 and decoded.max() <= 1 and not torch.equal(decoded, raw)
    recon = vaekit.reconstruct(model, digits(4))
    assert recon.shape == (4, 1, 16, 16) and recon.min() >= 0 and recon.max() <= 1
    assert vaekit.sample(run, 6, seed=3).shape == (6, 1, 16, 16)
    frames = vaekit.interpolate(model, digits(2), steps=5, gif=tmp_path / "walk.gif")
    assert frames.shape == (5, 1, 16, 16) and (tmp_path / "walk.gif").is_file()


def test_evaluate_and_attributes_take_memory_data_and_say_when_it_is_missing(tmp_path):
    images = digits()
    run = vaekit.train(data=images, out=tmp_path / "run", overrides=TINY)
    with pytest.raises(DataError, match=r"trained on in-memory data.*pass the data again"):
        vaekit.evaluate(run, metrics=["elbo"])
    report = vaekit.evaluate(run, images[:16], metrics=["elbo", "reconstruction"])
    assert report["data"]["images"] == 16 and report["metrics"]["reconstruction"]["psnr"] > 0
    labels = (np.arange(64)[:, None] % 2 == np.array([[0, 1]])).astype(np.int8)
    vectors = vaekit.attributes(run, images, labels=labels, label_names=["even", "odd"], save=True)
    assert set(vectors.vectors) == {"even", "odd"}
    edited = vaekit.edit(run, images[:2], {"odd": 1.0})
    assert edited.shape == (2, 1, 16, 16)
    assert vaekit.latent_map(run, images, tmp_path / "map.png", method="pca").is_file()


def test_a_config_file_overrides_the_preset_key_by_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("train:\n  lr: 0.005\n")
    config = vaekit.resolve_config(path, "conv-mnist")
    preset = vaekit.load_preset("conv-mnist")
    assert config.train.lr == 0.005 and config.model == preset.model and config.train.epochs == preset.train.epochs
    with pytest.raises(ConfigError, match="aliases"):
        path.write_text("a: &x [1]\nb: *x\n")
        vaekit.resolve_config(path)


def test_importing_vaekit_loads_nothing_heavy_and_keeps_the_matplotlib_backend():
    out = fresh_process(
        """
        import sys
        import vaekit
        print('torch' in sys.modules, 'matplotlib' in sys.modules)
        import matplotlib
        matplotlib.use('svg')
        vaekit.Config  # the config module alone
        from vaekit.io import run_folder
        print(matplotlib.get_backend())
        """
    )
    assert out.split() == ["False", "False", "svg"]


def test_every_api_input_goes_through_the_one_image_reader(tmp_path, monkeypatch):
    from tests.helpers import tiny_config
    from vaekit.data import DataError

    run = vaekit.train(tiny_config(**{"train.max_steps": 1}), out=tmp_path / "run")
    disguised = tmp_path / "x.png"
    disguised.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    for call in (
        lambda: vaekit.reconstruct(run, disguised),
        lambda: vaekit.interpolate(run, [disguised, disguised]),
    ):
        with pytest.raises(DataError, match=r"x\.png: cannot read image \(not an image in a format"):
            call()


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_what_config_yaml_records_reads_the_cache_the_run_trained_on(tmp_path, monkeypatch, mode):
    """A run with ``data.channels: null`` records the channels it found; evaluate, serve, latent-map
    and --resume read that config and must find the same cache entry, not decode the data again."""
    from PIL import Image

    import vaekit.data.images as images_module
    from tests.helpers import tiny_config
    from vaekit.config import Config

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(40):
        Image.new(mode, (20, 20), (i * 6, 0, 0) if mode == "RGB" else i * 6).save(folder / f"{i}.png")
    decodes = []
    real = images_module._decode_all
    monkeypatch.setattr(images_module, "_decode_all", lambda *a, **k: decodes.append(1) or real(*a, **k))
    overrides = {"data.source": str(folder), "data.channels": None, "data.cache_dir": str(tmp_path / "cache")}
    run = vaekit.train(tiny_config(**overrides, **{"train.max_steps": 1}), out=tmp_path / "run")
    recorded = Config.from_yaml(run / "config.yaml").data
    assert recorded.channels == (3 if mode == "RGB" else 1)
    vaekit.evaluate(run, metrics=["reconstruction"])
    assert len(decodes) == 1


def test_in_memory_inputs_go_through_the_models_own_recipe_as_files_do(tmp_path):
    """A 16 px model given 32 px tensors: cropped and resized by its recipe, never run at 32 px."""
    from PIL import Image

    from tests.helpers import tiny_config
    from vaekit.data.recipes import prepare

    run = vaekit.train(tiny_config(**{"train.max_steps": 1}), out=tmp_path / "run")
    big = torch.rand(3, 3, 32, 40)
    by_file = []
    for i, image in enumerate(big):
        path = tmp_path / f"{i}.png"
        Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
        by_file.append(path)
    from_tensors, from_files = vaekit.reconstruct(run, big), vaekit.reconstruct(run, by_file)
    assert from_tensors.shape == (3, 3, 16, 16)
    torch.testing.assert_close(from_tensors, from_files)
    gray = (np.random.default_rng(0).random((40, 24, 24)) * 255).astype(np.uint8)  # gray, another size
    report = vaekit.evaluate(run, data=gray, metrics=["reconstruction"])
    prepared = np.stack([prepare(Image.fromarray(g), 16, "center", 3).transpose(1, 2, 0) for g in gray])
    assert report["data"]["images"] == 40
    assert report["metrics"] == vaekit.evaluate(run, data=prepared, metrics=["reconstruction"])["metrics"]


def test_a_held_out_folder_is_scored_whole_unless_a_split_is_asked_for(tmp_path):
    from PIL import Image

    from tests.helpers import tiny_config

    run = vaekit.train(tiny_config(**{"train.max_steps": 1}), out=tmp_path / "run")
    folder = tmp_path / "heldout"
    folder.mkdir()
    for i in range(40):
        Image.new("RGB", (16, 16), (i * 6, 0, 0)).save(folder / f"{i}.png")
    whole = vaekit.evaluate(run, data=str(folder), metrics=["reconstruction"])
    assert (whole["data"]["images"], whole["data"]["split"]) == (40, "all")
    test = vaekit.evaluate(run, data=str(folder), split="test", metrics=["reconstruction"])
    assert (test["data"]["images"], test["data"]["split"]) == (2, "test")  # 5 % of 40
    own = vaekit.evaluate(run, metrics=["reconstruction"])
    assert own["data"]["split"] == "test" and own["data"]["images"] < 256


def test_a_run_records_its_data_path_absolute_so_it_works_from_any_directory(tmp_path, monkeypatch):
    from PIL import Image

    from tests.helpers import tiny_config

    project = tmp_path / "project"
    (project / "png" / "train").mkdir(parents=True)
    for i in range(40):
        Image.new("RGB", (16, 16), (i * 6, 0, 0)).save(project / "png" / "train" / f"{i}.png")
    monkeypatch.chdir(project)
    run = vaekit.train(tiny_config(**{"data.source": "png/train", "train.max_steps": 1}), out="run")
    recorded = vaekit.load(project / run).config.data.source
    assert recorded == str(project / "png" / "train")
    monkeypatch.chdir(tmp_path)  # another directory: the run still finds its data
    assert vaekit.evaluate(project / "run", metrics=["reconstruction"])["data"]["images"] == 2


TINY_RUN = [
    "data.num_images=96",
    "data.image_size=16",
    "model.channels=[8, 16]",
    "model.latent_dim=4",
    "train.epochs=1",
    "train.batch_size=16",
    "train.threads=1",
    "train.fit_sampler=false",
    "train.grid_size=4",
]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "model" / "model.safetensors")


def test_a_preset_free_runs_config_yaml_reproduces_its_weights_bit_for_bit(tmp_path):
    """The precision is chosen on the real path (timed matrix products on this machine): nothing vaekit
    chooses draws from the global generator, so the first run, a second one in the same process and
    a run of the first one's config.yaml train the same weights."""
    from vaekit import defaults

    defaults.bf16_speedup.cache_clear()  # the first run times the matrix products itself
    first = vaekit.train(data="shapes", out=tmp_path / "first", overrides=TINY_RUN)
    second = vaekit.train(data="shapes", out=tmp_path / "second", overrides=TINY_RUN)
    again = vaekit.train(first / "config.yaml", out=tmp_path / "again")
    reference = _weights(first)
    for run in (second, again):
        weights = _weights(run)
        assert weights.keys() == reference.keys()
        assert all(torch.equal(weights[key], reference[key]) for key in reference), run
    timing = ("elapsed_s", "images_per_s")
    rows = [
        [
            {k: v for k, v in row.items() if k not in timing}
            for row in csv.DictReader((run / "metrics.csv").read_text().splitlines())
        ]
        for run in (first, second, again)
    ]
    assert rows[0] and rows[0] == rows[1] == rows[2]


def test_a_pil_image_is_reconstructed_exactly_as_its_file_is(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    import vaekit
    from tests.helpers import tiny_config

    run = vaekit.train(tiny_config(**{"train.max_steps": 1}), out=tmp_path / "run")
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8))
    picture.save(tmp_path / "p.png")
    from_file = vaekit.reconstruct(run, tmp_path / "p.png")
    assert torch.equal(vaekit.reconstruct(run, picture), from_file)
    two_files = vaekit.reconstruct(run, [tmp_path / "p.png", tmp_path / "p.png"])
    assert torch.equal(vaekit.reconstruct(run, [picture, picture]), two_files)
    with pytest.raises(vaekit.api.DataError, match="PIL images of 2 sizes"):
        vaekit.reconstruct(run, [picture, picture.resize((10, 10))])
