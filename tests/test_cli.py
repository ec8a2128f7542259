import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import fake_mnist, tiny_config
from vaekit.cli import main
from vaekit.config import load_preset


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    cache = folder / "cache"
    tiny_config(**{"data.cache_dir": str(cache)}).to_yaml(folder / "tiny.yaml")
    run = folder / "run"
    settings = ["train.max_steps=8", "train.fit_sampler=false"]  # a run without a sampler: fit-sampler's case
    assert main(["train", "--config", str(folder / "tiny.yaml"), "--out", str(run), "--set", *settings]) == 0
    return run


def test_train_writes_a_loadable_run(trained_run):
    import vaekit

    model = vaekit.load(trained_run)
    assert model.config.train.max_steps == 8 and not model.training


def test_resume_with_a_higher_step_limit(trained_run, capsys):
    assert main(["train", "--resume", str(trained_run), "--set", "train.max_steps=10"]) == 0
    assert "step-00000010" in {p.name for p in (trained_run / "checkpoints").iterdir()}


def test_sample_grid_and_dump(trained_run, tmp_path):
    out, dump = tmp_path / "s.png", tmp_path / "dump"
    assert (
        main(["sample", str(trained_run), "-n", "6", "-o", str(out), "--dump", str(dump), "--temperature", "0.8"]) == 0
    )
    assert out.is_file() and len(list(dump.glob("*.png"))) == 6
    with Image.open(next(dump.glob("*.png"))) as image:
        assert image.size == (16, 16)


def test_reconstruct_user_images_of_any_size(trained_run, tmp_path):
    paths = []
    for i, size in enumerate([(40, 30), (16, 16)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", size, (200, 20, 20)).save(paths[-1])
    out = tmp_path / "r.png"
    assert main(["reconstruct", str(trained_run), *map(str, paths), "-o", str(out)]) == 0
    with Image.open(out) as grid:  # originals above reconstructions, 16 px tiles with 2 px borders
        assert grid.size == (2 + 2 * 18, 2 + 2 * 18)
    assert main(["reconstruct", str(trained_run), *map(str, paths), "-o", str(out), "--scale", "3"]) == 0
    with Image.open(out) as grid:
        assert grid.size == (3 * 38, 3 * 38)


def test_full_size_reconstructions_are_the_size_of_their_input(trained_run, tmp_path):
    Image.new("RGB", (40, 30), (200, 20, 20)).save(tmp_path / "wide.png")
    args = ["reconstruct", str(trained_run), str(tmp_path / "wide.png"), "--full-size", "-o", str(tmp_path / "r.png")]
    assert main(args) == 0
    with Image.open(tmp_path / "r-0.png") as picture:
        assert picture.size == (40, 30)


def test_interpolate_between_random_latents_and_between_images(trained_run, tmp_path):
    assert main(["interpolate", str(trained_run), "--steps", "5", "-o", str(tmp_path / "r.gif")]) == 0
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (16, 16), "red").save(a)
    Image.new("RGB", (16, 16), "blue").save(b)
    assert main(["interpolate", str(trained_run), str(a), str(b), "--mode", "lerp", "-o", str(tmp_path / "i.gif")]) == 0
    with Image.open(tmp_path / "i.gif") as gif:  # (Pillow may merge identical frames: no exact count)
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames // 2)
        middle = np.asarray(gif.convert("RGB"))
        assert gif.n_frames > 2 and gif.size == (128, 128) and not np.array_equal(first, middle)


def test_errors_are_one_clear_line(trained_run, tmp_path, capsys):
    assert main(["train", "--preset", "conv-mnist", "--set", "train.lrr=1"]) == 2  # a config error is usage
    assert "unknown config key 'train.lrr' (did you mean 'train.lr'?)" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.png").write_text("not a picture")
    assert main(["reconstruct", str(trained_run), str(tmp_path / "bad.png")]) == 1
    assert "bad.png: cannot read image" in capsys.readouterr().err
    assert main(["sample", str(tmp_path)]) == 1
    assert "no trained model here" in capsys.readouterr().err


def test_console_script_lists_presets():
    result = subprocess.run([sys.executable, "-m", "vaekit", "presets"], capture_output=True, text=True, check=True)
    assert "conv-mnist" in result.stdout and "anime-l1" in result.stdout


def test_evaluate_writes_json_and_markdown(trained_run, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(trained_run), "--metrics", "elbo,reconstruction,nll,latents,speed", "--k", "3"]
    assert main([*args, "--max-images", "8", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["data"]["images"] == 8 and report["settings"]["iwae_k"] == 3
    assert report["metrics"]["nll"]["iwae_nll"] > 0 and out.with_suffix(".md").is_file()
    assert "| elbo.neg_elbo |" in capsys.readouterr().out


def test_evaluating_a_held_out_folder_decodes_only_max_images_of_it(trained_run, tmp_path):
    for i in range(6):
        Image.new("RGB", (20, 20), (30 * i, 90, 10)).save(tmp_path / f"{i}.png")
    out = tmp_path / "m.json"
    assert main(["evaluate", str(trained_run), "--data", str(tmp_path), "--metrics", "elbo", "--max-images", "3",
                 "-o", str(out)]) == 0  # fmt: skip
    assert json.loads(out.read_text())["data"]["images"] == 3
    cache = trained_run.parent / "cache"
    decoded = [np.load(p / "images.npy", mmap_mode="r") for p in cache.glob("images-*") if not p.is_symlink()]
    assert [len(images) for images in decoded] == [3]


def test_fid_without_inception_weights_says_which_file_to_get(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VAEKIT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["evaluate", str(trained_run), "--metrics", "fid", "-n", "4", "-o", str(tmp_path / "m.json")]) == 1
    assert "pt_inception-2015-12-05-6726825d.pth" in capsys.readouterr().err


def test_fid_with_a_trained_domain_classifier(tmp_path, capsys):
    mnist = fake_mnist(tmp_path / "mnist", n_train=40, n_test=20)
    classifier = tmp_path / "digits.safetensors"
    assert main(["train-classifier", "--data", str(mnist), "--epochs", "1", "-o", str(classifier)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    config = tiny_config(**{"data.source": str(mnist), "data.image_size": 28, "data.channels": 1})
    config.to_yaml(tmp_path / "c.yaml")
    run = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(run), "--set", "train.max_steps=2"]) == 0
    out = tmp_path / "fid.json"
    args = ["evaluate", str(run), "--metrics", "fid,kid", "-n", "30", "--features", str(classifier), "-o", str(out)]
    assert main(args) == 0
    generation = json.loads(out.read_text())["metrics"]["generation"]
    assert generation["fid"] > 0 and "kid" in generation


def test_train_classifier_from_class_folders_and_from_a_npz(tmp_path, capsys):
    for label, shade in enumerate((20, 230)):
        (tmp_path / "shades" / f"class{label}").mkdir(parents=True)
        for i in range(12):
            Image.new("L", (16, 16), shade + i).save(tmp_path / "shades" / f"class{label}" / f"{i}.png")
    out = tmp_path / "c.safetensors"
    argv = ["train-classifier", "--data", str(tmp_path / "shades"), "--image-size", "16", "--epochs", "1"]
    assert main([*argv, "-o", str(out)]) == 0 and out.is_file()
    images = np.random.default_rng(0).integers(0, 256, (40, 16, 16), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", x=images, y=np.arange(40) % 4)
    assert main(["train-classifier", "--data", str(tmp_path / "set.npz"), "--image-size", "16", "-o", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_progress_gif_from_epoch_grids(trained_run, tmp_path):
    assert main(["progress", str(trained_run), "-o", str(tmp_path / "p.gif")]) == 0
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames >= 1


def test_progress_of_a_run_shorter_than_one_epoch_shows_its_final_grid(tmp_path):
    tiny_config().to_yaml(tmp_path / "tiny.yaml")
    run = tmp_path / "short"
    assert (
        main(["train", "--config", str(tmp_path / "tiny.yaml"), "--out", str(run), "--set", "train.max_steps=2"]) == 0
    )
    assert main(["progress", str(run), "-o", str(tmp_path / "p.gif")]) == 0
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == 1


def test_samples_from_a_fitted_mixture_instead_of_the_prior(trained_run, tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert main(["sample", str(trained_run), "--sampler", "gmm", "-o", str(tmp_path / "s.png")]) == 2
    assert "vaekit fit-sampler" in capsys.readouterr().err  # what to run first, in one line
    assert main(["fit-sampler", str(trained_run), "--components", "2"]) == 0
    assert "2-component Gaussian mixture" in capsys.readouterr().out
    for sampler in ("prior", "gmm"):
        assert (
            main(["sample", str(trained_run), "-n", "4", "--sampler", sampler, "-o", str(tmp_path / f"{sampler}.png")])
            == 0
        )
    assert (tmp_path / "prior.png").read_bytes() != (tmp_path / "gmm.png").read_bytes()
    gif = tmp_path / "i.gif"
    assert main(["interpolate", str(trained_run), "--sampler", "gmm", "--steps", "3", "-o", str(gif)]) == 0
    out = tmp_path / "e.json"
    assert main(["evaluate", str(trained_run), "--metrics", "prior_hole", "-o", str(out)]) == 0
    hole = json.loads(out.read_text())["metrics"]["prior_hole"]
    assert hole["prior"]["nearest_distance_ratio"] > 0 and 0 <= hole["prior"]["draws_beyond_data"] <= 1
    assert main(["evaluate", str(trained_run), "--metrics", "prior_hole", "--sampler", "gmm", "-o", str(out)]) == 0
    assert "sampler" in json.loads(out.read_text())["metrics"]["prior_hole"]
    assert main(["evaluate", str(trained_run), "--metrics", "prior_hole", "--sampler", "gmm"]) == 0
    assert (trained_run / "evaluation-test-gmm.json").is_file()  # beside the prior's report, not over it


def test_the_demo_says_how_long_it_will_train_and_ends_trained_whatever_the_clock(tmp_path, capsys):
    argv = ["demo", "--out", str(tmp_path / "demo"), "--set", "train.max_steps=3", "data.num_images=256"]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert re.search(r"3 training steps; about \d+ s of training on this machine", first), first
    assert load_preset("shapes-demo").train.max_time is None  # a budget in steps, never cut by a clock
    assert (tmp_path / "demo" / "images" / "samples-final.png").is_file()


def test_interpolate_grid_manifold(trained_run, tmp_path):
    out = tmp_path / "grid.gif"
    assert main(["interpolate", str(trained_run), "--grid", "3x4", "--steps", "5", "-o", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames > 2 and gif.size == (1 + 4 * 17, 1 + 3 * 17)
    assert main(["interpolate", str(trained_run), "--grid", "big"]) == 2  # a usage mistake (D10)


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    rows = ["filename,Bright"]
    for i in range(24):
        value = 220 if i % 2 else 30
        Image.new("RGB", (16, 16), (value, value, value)).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{1 if i % 2 else -1}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    config = tiny_config(**{"data.source": str(folder), "model.arch": "spatial", "model.spatial.residual_blocks": 1})
    config.to_yaml(folder / "c.yaml")
    run = tmp_path_factory.mktemp("runs") / "run"  # not inside the image folder it reads
    assert main(["train", "--config", str(folder / "c.yaml"), "--out", str(run), "--set", "train.max_steps=3"]) == 0
    return run, folder


def test_attributes_edit_and_arithmetic(labelled_run, tmp_path, capsys):
    run, folder = labelled_run
    assert main(["attributes", str(run), "--labels", str(folder / "labels.csv")]) == 0
    assert "Bright" in capsys.readouterr().out and (run / "model" / "attributes.safetensors").is_file()
    image = str(folder / "0.png")
    assert main(["edit", str(run), image, "--attr", "Bright=1.5", "-o", str(tmp_path / "e.png")]) == 0
    with Image.open(tmp_path / "e.png") as picture:
        assert picture.width == 2 + 3 * 18
    assert main(["edit", str(run), image, "--attr", "Bright", "--sweep", "-2:2:5", "-o", str(tmp_path / "s.png")]) == 0
    with Image.open(tmp_path / "s.png") as picture:
        assert picture.width == 2 + 6 * 18
    assert main(["edit", str(run), image, "--attr", "Smiling=1"]) == 2  # a usage mistake (D10)
    assert "no attribute vector 'Smiling'" in capsys.readouterr().err
    args = ["arithmetic", str(run), str(folder / "0.png"), str(folder / "1.png"), str(folder / "2.png")]
    assert main([*args, "-o", str(tmp_path / "a.png")]) == 0


def test_latent_map_command(trained_run, tmp_path):
    out = tmp_path / "map.png"
    assert main(["latent-map", str(trained_run), "--method", "pca", "--max-points", "30", "-o", str(out)]) == 0
    assert out.is_file()


def test_config_prints_yaml_that_train_takes_back(tmp_path, capsys):
    assert main(["config", "--preset", "conv-mnist", "--set", "train.epochs=1"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "f.yaml").write_text(text)
    from vaekit.config import Config, load_preset

    assert Config.from_yaml(tmp_path / "f.yaml") == load_preset("conv-mnist").with_overrides(["train.epochs=1"])
    args = ["train", "--config", str(tmp_path / "f.yaml"), "--data", "shapes", "--out", str(tmp_path / "run")]
    small = ["data.num_images=64", "model.channels=[8,16]", "train.batch_size=32", "train.threads=1"]
    assert main([*args, "--set", *small]) == 0
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_info_export_and_help_show_what_they_promise(trained_run, tmp_path, capsys):
    assert main(["info", str(trained_run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["architecture"] == "conv" and info["parameters"] > 0
    assert main(["export", str(trained_run), "--format", "torchscript", "-o", str(tmp_path / "ts")]) == 0
    assert sorted(p.name for p in (tmp_path / "ts").iterdir()) == ["decoder.pt", "encoder.pt"]
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "(default: 64)" in capsys.readouterr().out


def test_console_script_help_answers_without_importing_torch():
    code = "import sys; from vaekit.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_cache_lists_what_it_holds_and_clear_keeps_downloads(tmp_path, capsys):
    cache = tmp_path / "cache"
    tiny = tiny_config(**{"data.cache_dir": str(cache)})
    from vaekit.data import load_dataset

    load_dataset(tiny.data)
    (cache / "mnist").mkdir()
    assert main(["cache", "--dir", str(cache)]) == 0
    listed = capsys.readouterr().out
    assert "entry" in listed and "shapes" in listed and "kept" in listed
    assert main(["cache", "--dir", str(cache), "--prune", "30"]) == 0  # used just now: kept
    assert "removed 0 item(s)" in capsys.readouterr().out
    assert main(["cache", "--dir", str(cache), "--clear"]) == 0
    assert [p.name for p in cache.iterdir()] == ["mnist"]
    with pytest.raises(SystemExit) as refused:  # argparse's one line
        main(["cache", "--dir", str(cache), "--prune", "-3"])
    assert refused.value.code == 2
