"""Every bad input gets one clear line naming what and where, and the right exit code; no traceback.

The cases are the reproduced defects of the reliability findings (tracebacks, unclear messages and
silently accepted nonsense), each with the words the user needs to act on.
"""

from __future__ import annotations

import os
import struct
import zlib

import pytest
import torch
from PIL import Image

from tests.helpers import tiny_config
from vaekit.cli import main

SMALL = ["data.num_images=64", "model.channels=[8,16]", "model.latent_dim=4", "data.image_size=16", "train.threads=1"]
SMALL += ["train.fit_sampler=false"]  # (tests/training/test_sampler_fit.py)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("errors")
    tiny_config(**{"train.max_steps": 4}).to_yaml(folder / "tiny.yaml")
    assert main(["train", "--config", str(folder / "tiny.yaml"), "--out", str(folder / "run")]) == 0
    return folder / "run"


def one_line(capsys) -> str:
    """The one line the error printed (warnings, each a ``vaekit: warning:`` line, may come before)."""
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if not line.startswith(("vaekit: warning:", "  "))]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("train.batch_size=0", "train.batch_size: must be at least 1"),
        ("train.batch_size=-1", "train.batch_size"),
        ("train.grid_size=-4", "train.grid_size"),
        ("train.log_every=0", "train.log_every"),
        ("train.checkpoint_every=0", "train.checkpoint_every"),
        ("train.device=cuda", "train.device"),
        ("train.device=gpu", "train.device: 'gpu' is not"),
        ("model.channels=[]", "model.channels"),
        ("model.latent_dim=0", "model.latent_dim"),
        ("model.kernel_size=0", "model.kernel_size"),
        ("model.arch=convv", "did you mean 'conv'"),
        ("train.precision=bf61", "train.precision"),
        ("train.epochs=0", "train.epochs"),
        ("train.epochs=-1", "train.epochs"),
        ("train.max_steps=0", "train.max_steps"),
        ("train.max_time=-5", "train.max_time"),
        ("objective.kl.warmup_steps=-5", "objective.kl.warmup_steps"),
        ("data.num_images=0", "data.num_images"),
        ("data.image_size=-5", "data.image_size"),
        ("data.workers=-1", "data.workers"),
        ("data.channels=2", "data.channels"),
        ("data.channels=0", "data.channels"),
        ("data.crop=foo", "data.crop: unknown crop 'foo'"),
        ("likelihood.scale=0", "likelihood.scale"),
        ("objective.name=soft-intr", "did you mean 'soft-intro'"),
        # numbers are numbers (D11): NaN, inf and values past a float's range, for every float option
        ("train.lr=inf", "train.lr: must be a finite number"),
        ("train.lr=1e400", "train.lr: must be a finite number"),
        ("objective.kl.weight=nan", "objective.kl.weight: must be a finite number"),
        ("objective.kl.sigmoid_slope=nan", "objective.kl.sigmoid_slope: must be a finite number"),
        ("data.val_fraction=nan", "data.val_fraction: must be a finite number"),
        ("train.betas=[0.9, .nan]", "train.betas[1]: must be a finite number"),
        # every size is bounded before it is allocated (D5, D24)
        ("data.image_size=100000", "data.image_size: must be at most 4096"),
        ("model.channels=[12000, 12000]", "model.channels: must be at most 8192"),
        ("model.latent_dim=2000000000", "model.latent_dim: must be at most 65536"),
        ("model.latent_dim=2e9", "model.latent_dim: expected an integer, got 2e9"),
        ("data.num_images=50000000000", "data.num_images: must be at most 1e+06"),
        ("train.epochs=1.0e+23", "train.epochs: must be at most 1e+06"),
    ],
)
def test_a_bad_value_names_its_key_and_exits_2_before_any_work(tmp_path, capsys, setting, words):
    code = main(["train", "--data", "shapes", "--out", str(tmp_path / "run"), "--set", *SMALL, setting])
    assert code == 2
    assert words in one_line(capsys)
    assert not (tmp_path / "run").exists()  # refused before any data, cache or run-folder work


def test_a_config_file_that_is_binary_or_an_alias_bomb_is_refused(tmp_path, capsys):
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    assert main(["train", "--config", str(tmp_path / "binary.yaml")]) == 2
    assert "binary.yaml: not a text (UTF-8) file" in one_line(capsys)
    levels = ["&a0 [" + ", ".join(["1"] * 10) + "]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    (tmp_path / "bomb.yaml").write_text("data:\n  labels: [" + ", ".join(levels) + "]\n")
    assert main(["train", "--config", str(tmp_path / "bomb.yaml")]) == 2
    assert "aliases" in one_line(capsys)
    (tmp_path / "huge.yaml").write_text("# " + "x" * (2 << 20))
    assert main(["train", "--config", str(tmp_path / "huge.yaml")]) == 2
    assert "too large" in one_line(capsys)


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["sample", "RUN", "-n", "0"], 2),
        (["sample", "RUN", "-n", "-3"], 2),
        (["sample", "RUN", "--temperature", "nan"], 2),
        (["evaluate", "RUN", "--metrics", "nll", "--k", "0"], 2),
        (["interpolate", "RUN", "--steps", "0"], 2),
        (["interpolate", "RUN", "--grid", "0x0"], 2),
        (["interpolate", "RUN", "--grid", "axb"], 2),
        (["interpolate", "RUN", "RUN"], 2),  # one image
        # every count is bounded before anything is made (D5), seeds are seeds (D13)
        (["sample", "RUN", "-n", "50000000"], 2),
        (["interpolate", "RUN", "--steps", "100000000"], 2),
        (["interpolate", "RUN", "--grid", "1000x1000"], 2),
        (["sample", "RUN", "--seed", "100000000000000000000000"], 2),
        (["sample", "RUN", "--seed", "1e23"], 2),
        (["sample", "RUN", "--scale", "17"], 2),
        (["sample", "RUN", "--scale", "0"], 2),
        (["evaluate", "RUN", "--metrics", "foo"], 2),
        (["evaluate", "RUN", "--metrics", "kid", "-n", "1000000000"], 2),  # held against the budget
        (["evaluate", "RUN", "--metrics", "nll", "--k", "1000000000"], 2),  # importance samples are bounded
        (["evaluate", "RUN", "--metrics", "nll", "--k", "100001"], 2),  # (both ends of the bound)
        (["fit-sampler", "RUN", "--components", "1000000000"], 2),  # a bad value, not a failure
        (["train-classifier", "--data", "shapes", "--image-size", "100000"], 2),  # through the config's bounds
        (["serve", "RUN", "--device", "cuda"], 2),  # validated like train (D12)
        (["serve", "RUN", "--host", "nonexist.invalid"], 2),  # not uvicorn's exit 3
        (["serve", "RUN", "--port", "99999"], 2),
        (["serve", "RUN", "--port", "-1"], 2),
    ],
)
def test_bad_command_line_values_are_refused(run, capsys, argv, code):
    argv = [str(run) if a == "RUN" else a for a in argv]
    try:
        assert main(argv) == code
    except SystemExit as exit_:  # argparse's own refusal: one usage line, exit 2
        assert exit_.code == code
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--attr", "Bigger=nan"], "a strength must be a number within +-100, got nan"),
        (["--attr", "Bigger=inf"], "a strength must be a number within +-100"),
        (["--attr", "Bigger=1e308"], "a strength must be a number within +-100"),
        (["--attr", "Bigger=abc"], "--attr takes NAME=STRENGTH"),
        (["--attr", "Nope=1"], "no attribute vector 'Nope'"),
        (["--attr", "Bigger", "--sweep", "-2:2:100000"], "--sweep: COUNT must be 1 to 256"),
        (["--attr", "Bigger", "--sweep", "a:b:c"], "--sweep takes START:STOP:COUNT"),
        (["--attr", "Bigger", "--sweep", "2:-2:0"], "--sweep: COUNT must be 1 to 256"),
        (["--attr", "Bigger", "--sweep", "-1e308:1e308:3"], "a strength must be a number within +-100"),
    ],
)
def test_an_edit_that_asks_for_nonsense_is_one_line_and_exit_2(run, tmp_path, capsys, argv, words):
    from vaekit.explore.attributes import AttributeVectors

    AttributeVectors({"Bigger": torch.ones(4)}, {"Bigger": {"with": 1, "without": 1}}).save(run / "model")
    image = tmp_path / "face.png"
    Image.new("RGB", (16, 16), (90, 30, 30)).save(image)
    assert main(["edit", str(run), str(image), "-o", str(tmp_path / "out.png"), *argv]) == 2
    assert words in one_line(capsys)
    assert not (tmp_path / "out.png").exists()


def test_a_preset_with_resume_is_refused(run, capsys):
    assert main(["train", "--resume", str(run), "--preset", "conv-mnist"]) == 2
    assert "--set" in one_line(capsys)


def test_a_pickle_as_training_state_is_one_line_and_never_runs(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    folder = tmp_path / "run"
    assert main(["train", "--data", "shapes", "--out", str(folder), "--set", *SMALL, "train.max_steps=2"]) == 0
    for checkpoint in (folder / "checkpoints").iterdir():  # every one, or resume falls back to an older one
        torch.save({"x": Evil()}, checkpoint / "training.pt")
    assert main(["train", "--resume", str(folder), "--set", "train.max_steps=4"]) == 1
    assert "unreadable training state" in one_line(capsys)
    assert not (tmp_path / "PWNED").exists()


def test_a_run_folders_config_cannot_make_vaekit_import_code(run, tmp_path, capsys):
    import shutil

    import yaml

    evil = tmp_path / "evilrun"
    shutil.copytree(run, evil)
    (tmp_path / "payload.py").write_text(f"open({str(tmp_path / 'PWNED')!r}, 'w').write('ran')\ndef make(): pass\n")
    for path in (evil / "config.yaml", evil / "model" / "config.yaml"):
        config = yaml.safe_load(path.read_text())
        config["likelihood"]["name"] = "perceptual"
        config["likelihood"]["perceptual"].update(network="payload:make", random_weights=True)
        path.write_text(yaml.safe_dump(config))
    os.chdir(tmp_path)  # as under `python -m vaekit` or a notebook: the current folder is importable
    assert main(["evaluate", str(evil), "--metrics", "elbo", "--max-images", "4"]) == 2
    message = one_line(capsys)
    assert "likelihood.perceptual.network" in message and "--trust-code" in message
    assert not (tmp_path / "PWNED").exists()


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_header_is_one_line(run, tmp_path, capsys):
    (tmp_path / "huge.png").write_bytes(_png_header(2**31 - 1, 2**31 - 1))
    assert main(["reconstruct", str(run), str(tmp_path / "huge.png"), "-o", str(tmp_path / "r.png")]) == 1
    assert "huge.png: cannot read image" in one_line(capsys)


def test_broken_idx_and_celeba_files_are_named(tmp_path, capsys):
    (tmp_path / "ndim").mkdir()
    (tmp_path / "ndim" / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\xc8" + bytes(16))
    assert main(["train", "--data", str(tmp_path / "ndim"), "--out", str(tmp_path / "a")]) == 1
    assert "train-images-idx3-ubyte: not an IDX file" in one_line(capsys)
    (tmp_path / "count").mkdir()
    (tmp_path / "count" / "train-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x803, 20, 28, 28) + bytes(20 * 784)
    )
    (tmp_path / "count" / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 7) + bytes(7))
    assert main(["train", "--data", str(tmp_path / "count"), "--out", str(tmp_path / "b")]) == 1
    assert "7 labels for 20 images" in one_line(capsys)
    celeba = tmp_path / "celeba"
    (celeba / "img_align_celeba").mkdir(parents=True)
    for i in range(1, 7):
        Image.new("RGB", (32, 32), (40 * i, 80, 120)).save(celeba / "img_align_celeba" / f"{i:06d}.jpg")
    rows = "".join(f"{i:06d}.jpg {1 if i % 2 else -1} {'yes' if i == 3 else -1}\n" for i in range(1, 7))
    (celeba / "list_attr_celeba.txt").write_text("6\nSmiling Male\n" + rows)
    assert main(["train", "--data", str(celeba), "--out", str(tmp_path / "c"), "--set", *SMALL]) == 1
    assert "list_attr_celeba.txt:5: 'yes' is not an attribute value" in one_line(capsys)


def test_duplicate_rows_in_a_labels_csv_are_refused(tmp_path):
    from vaekit.data import DataError
    from vaekit.data.labels import read_label_table

    (tmp_path / "labels.csv").write_text("file,Smiling\na.png,1\nb.png,0\na.png,0\n")
    with pytest.raises(DataError, match=r"labels\.csv:4: a second row for 'a\.png'"):
        read_label_table(tmp_path / "labels.csv")


def test_an_unexpected_error_is_one_line_with_the_debug_hint(monkeypatch, capsys):
    import vaekit.commands.listings as listings

    def boom(_args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(listings, "presets", boom)
    assert main(["presets"]) == 1
    assert "VAEKIT_DEBUG=1 shows the traceback" in one_line(capsys)


def test_demo_into_a_folder_holding_a_run_is_refused_without_overwrite(run, capsys):
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert main(["demo", "--out", str(run)]) == 2
    assert "--overwrite" in one_line(capsys)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before


def test_overwrite_of_a_folder_vaekit_did_not_write_is_refused_and_deletes_nothing(tmp_path, capsys):
    (tmp_path / "proj" / "images").mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(tmp_path / "proj" / "images" / "a.png")
    (tmp_path / "proj" / "config.yaml").write_text("my: notes\n")
    args = ["train", "--data", str(tmp_path / "proj" / "images"), "--out", str(tmp_path / "proj"), "--overwrite"]
    assert main([*args, "--set", *SMALL]) == 2
    assert "did not write" in one_line(capsys)
    assert (tmp_path / "proj" / "images" / "a.png").is_file()
    assert (tmp_path / "proj" / "config.yaml").read_text() == "my: notes\n"


def test_a_damaged_metrics_row_longer_than_the_csv_field_limit_is_dropped_on_resume(tmp_path, capsys):
    tiny_config(**{"train.max_steps": 4}).to_yaml(tmp_path / "tiny.yaml")
    assert main(["train", "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "run")]) == 0
    with open(tmp_path / "run" / "metrics.csv", "a") as handle:
        handle.write("x" * 200_000 + "\n")
    assert main(["train", "--resume", str(tmp_path / "run"), "--set", "train.max_steps=6"]) == 0
    assert "x" * 100 not in (tmp_path / "run" / "metrics.csv").read_text()


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_config_or_labels_file_that_is_a_device_is_refused_unread(tmp_path, capsys, device):
    assert main(["train", "--config", device, "--out", str(tmp_path / "run")]) == 2
    assert "not a regular file" in one_line(capsys)
    from vaekit.data import DataError
    from vaekit.data.images import read_text

    with pytest.raises(DataError, match="not a regular file"):
        read_text(__import__("pathlib").Path(device))


def test_a_file_name_with_terminal_escapes_is_printed_escaped(tmp_path, capsys):
    """A data file named with ESC sequences (retitle, clear screen) reaches the terminal as text."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (i * 30, 0, 0)).save(folder / f"{i}.png")
    (folder / "\x1b]0;PWNED\x07\x1b[2J x.png").write_bytes(b"not an image")
    assert (
        main(["train", "--data", str(folder), "--out", str(tmp_path / "run"), "--set", *SMALL, "train.max_steps=1"])
        == 0
    )
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "vaekit: warning: skipped 1 unreadable image(s)" in err and "\\x1b]0;PWNED\\x07" in err


@pytest.fixture(scope="module")
def diffusers_folder(tmp_path_factory):
    pytest.importorskip("diffusers")
    from vaekit.export import export
    from vaekit.models import ARCHITECTURES

    tiny = ARCHITECTURES.get("autoencoder-kl").tiny
    config = tiny_config(**{"model.arch": "autoencoder-kl", **tiny, "train.max_steps": 1})
    folder = tmp_path_factory.mktemp("diffusers")
    run = __import__("vaekit").train(config, out=folder / "run")
    export(__import__("vaekit").load(run), folder / "vae", "diffusers", scaling={"scaling_factor": 1.0})
    return folder / "vae"


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda f: (f / "config.json").write_text('["not", "a", "mapping"]'), "expected a mapping of settings"),
        (lambda f: _without(f, "block_out_channels"), "no 'block_out_channels'"),
        (lambda f: _with(f, "layers_per_block", 1e400), "model.autoencoder_kl.layers_per_block"),
        (lambda f: _with(f, "sample_size", "big"), "data.image_size: expected an integer"),
        (
            lambda f: _truncate(f / "diffusion_pytorch_model.safetensors"),
            "diffusion_pytorch_model.safetensors: unreadable",
        ),
    ],
)
def test_a_malformed_diffusers_folder_is_one_line_naming_the_file(diffusers_folder, tmp_path, capsys, damage, words):
    import shutil

    folder = tmp_path / "vae"
    shutil.copytree(diffusers_folder, folder)
    damage(folder)
    assert main(["info", str(folder)]) in (1, 2)
    line = one_line(capsys)
    assert words in line and ("config.json" in line or "safetensors" in line)


def _with(folder, key, value):
    import json

    raw = json.loads((folder / "config.json").read_text())
    raw[key] = value
    (folder / "config.json").write_text(json.dumps(raw).replace("Infinity", "1e400"))


def _without(folder, key):
    import json

    raw = json.loads((folder / "config.json").read_text())
    del raw[key]
    (folder / "config.json").write_text(json.dumps(raw))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:200])


def test_a_model_card_that_is_not_a_mapping_is_ignored_not_a_crash(run, tmp_path, capsys):
    import shutil

    shutil.copytree(run / "model", tmp_path / "model")
    (tmp_path / "model" / "vaekit.json").write_text("[1, 2, 3]")
    assert main(["info", str(tmp_path / "model")]) == 0


def test_train_classifier_checks_where_it_will_write_before_it_trains(tmp_path, capsys):
    import time

    started = time.monotonic()
    assert main(["train-classifier", "--data", "shapes", "-o", str(tmp_path / "missing" / "c.safetensors")]) == 1
    assert "cannot write there" in one_line(capsys) and time.monotonic() - started < 5


def test_no_control_character_reaches_the_terminal_through_what_a_command_prints(tmp_path, capsys):
    run = tmp_path / "run\x1b]0;PWNED\x07\x1b[2Jx"
    settings = ["data.image_size=8", "data.num_images=32", "model.latent_dim=2", "model.channels=[4]"]
    assert main(["train", "--data", "shapes", "--out", str(run), "--set", *settings, "train.max_steps=1"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;PWNED" in out
