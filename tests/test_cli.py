import subprocess
import sys

import pytest
from PIL import Image

from tests.helpers import tiny_config
from vaekit.cli import main


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    cache = folder / "cache"
    tiny_config(**{"data.cache_dir": str(cache)}).to_yaml(folder / "tiny.yaml")
    run = folder / "run"
    assert main(["train", "--config", str(folder / "tiny.yaml"), "--out", str(run), "--set", "train.max_steps=5"]) == 0
    return run


def test_train_writes_a_loadable_run(trained_run):
    import vaekit

    model = vaekit.load(trained_run)
    assert model.config.train.max_steps == 5 and not model.training


def test_resume_with_a_higher_step_limit(trained_run, capsys):
    assert main(["train", "--resume", str(trained_run), "--set", "train.max_steps=9"]) == 0
    assert "step-00000009" in {p.name for p in (trained_run / "checkpoints").iterdir()}


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
    assert out.is_file()


def test_interpolate_between_random_latents_and_between_images(trained_run, tmp_path):
    assert main(["interpolate", str(trained_run), "--steps", "5", "-o", str(tmp_path / "r.gif")]) == 0
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (16, 16), "red").save(a)
    Image.new("RGB", (16, 16), "blue").save(b)
    assert main(["interpolate", str(trained_run), str(a), str(b), "--mode", "lerp", "-o", str(tmp_path / "i.gif")]) == 0
    with Image.open(tmp_path / "i.gif") as gif:
        assert gif.n_frames == 16 + 14


def test_errors_are_one_clear_line(trained_run, tmp_path, capsys):
    assert main(["train", "--preset", "conv-mnist", "--set", "train.lrr=1"]) == 1
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
