"""Tokens out and back: the .npy of a dataset's token grids, resumable, and its decode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from tests.helpers import tiny_config
from vaekit.cli import main
from vaekit.explore import tokens as tokens_module
from vaekit.explore.tokens import decode_tokens, read_tokens, tokenize_images

pytest.importorskip("vector_quantize_pytorch")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    config = tiny_config(**{"model.latent": "vq", "model.vq.codebook_size": 16, "model.vq.token_dim": 2})
    run = vaekit.train(config, out=tmp_path_factory.mktemp("tokenizer") / "run", overrides=["train.max_steps=3"])
    return run


def _images(n: int = 10) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 3, 16, 16), dtype=np.uint8)


def test_the_token_file_holds_each_images_tokens_and_decodes_to_its_reconstruction(tokenizer, tmp_path):
    model = vaekit.load(tokenizer)
    images = _images()
    path = tokenize_images(model, images, tmp_path / "tokens.npy", batch_size=4)
    written = read_tokens(path, model)
    batch = torch.from_numpy(images).float() / 255
    assert written.dtype == np.int16 and torch.equal(torch.from_numpy(written.astype(np.int64)), model.tokenize(batch))
    decoded = torch.cat(list(decode_tokens(model, written, batch_size=4)))
    reconstructed = torch.cat([model.reconstruct(batch[i : i + 4]) for i in range(0, 10, 4)])
    assert torch.equal(decoded, reconstructed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.npy"]  # no partial left behind


def test_a_stopped_tokenize_resumes_where_it_stopped_and_ends_the_same(tokenizer, tmp_path, monkeypatch):
    model = vaekit.load(tokenizer)
    images = _images(12)
    straight = np.load(tokenize_images(model, images, tmp_path / "straight.npy", batch_size=4))
    monkeypatch.setattr(tokens_module, "SAVE_EVERY", -1.0)  # record after every batch
    calls = []
    real = model.tokenize

    def stopping(batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt  # stopped during the third batch
        return real(batch)

    model.tokenize = stopping
    with pytest.raises(KeyboardInterrupt):
        tokenize_images(model, images, tmp_path / "resumed.npy", batch_size=4)
    assert not (tmp_path / "resumed.npy").exists()
    calls.clear()
    model.tokenize = lambda batch: (calls.append(len(batch)), real(batch))[1]
    resumed = np.load(tokenize_images(model, images, tmp_path / "resumed.npy", batch_size=4))
    assert calls == [4]  # only the last batch was left
    assert np.array_equal(resumed, straight)


def test_a_partial_from_another_model_or_other_images_is_started_afresh(tokenizer, tmp_path, monkeypatch):
    model = vaekit.load(tokenizer)
    monkeypatch.setattr(tokens_module, "SAVE_EVERY", -1.0)
    real, calls = model.tokenize, []

    def stopping(batch):
        if len(calls) == 1:
            raise KeyboardInterrupt
        calls.append(1)
        return real(batch)

    model.tokenize = stopping
    with pytest.raises(KeyboardInterrupt):
        tokenize_images(model, _images(8), tmp_path / "t.npy", batch_size=4)
    model.tokenize = real
    other = _images(8)[::-1].copy()  # other images, same count and shape
    result = np.load(tokenize_images(model, other, tmp_path / "t.npy", batch_size=4))
    expected = model.tokenize(torch.from_numpy(other).float() / 255).numpy()
    assert np.array_equal(result, expected)


def test_token_files_of_the_wrong_shape_or_type_are_refused(tokenizer, tmp_path):
    model = vaekit.load(tokenizer)
    np.save(tmp_path / "floats.npy", np.zeros((2, *model.bottleneck.token_grid), dtype=np.float32))
    np.save(tmp_path / "shape.npy", np.zeros((2, 99), dtype=np.int16))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name in ("floats", "shape", "objects"):
        with pytest.raises(ValueError) as refused:
            read_tokens(tmp_path / f"{name}.npy", model)
        assert "\n" not in str(refused.value)


def test_tokenize_and_decode_from_the_command_line(tokenizer, tmp_path, capsys):
    out = tmp_path / "tokens.npy"
    assert main(["tokenize", str(tokenizer), "--split", "test", "-o", str(out)]) == 0
    assert "token grids of" in capsys.readouterr().out
    assert main(["decode", str(tokenizer), str(out), "-o", str(tmp_path / "decoded.png")]) == 0
    assert (tmp_path / "decoded.png").is_file()
    assert main(["decode", str(tokenizer), str(out), "-o", str(tmp_path / "pngs")]) == 0
    assert len(list((tmp_path / "pngs").glob("*.png"))) == len(np.load(out))


def test_the_api_tokenizes_in_memory_images_and_decodes_them(tokenizer):
    images = _images(5)
    tokens = vaekit.tokenize(tokenizer, images)
    model = vaekit.load(tokenizer)
    assert torch.equal(vaekit.decode(tokenizer, tokens), model.reconstruct(torch.from_numpy(images).float() / 255))


def test_a_gaussian_run_refuses_tokenize_in_one_line(tmp_path):
    run = vaekit.train(tiny_config(), out=tmp_path / "run", overrides=["train.max_steps=1"])
    assert main(["tokenize", str(run), "-o", str(tmp_path / "t.npy")]) == 2


def test_tokens_at_scale_go_to_webdataset_shards_that_decode_like_the_array(tokenizer, tmp_path):
    from vaekit.explore.tokens import write_token_shards

    model = vaekit.load(tokenizer)
    array = tokenize_images(model, _images(10), tmp_path / "tokens.npy", batch_size=4)
    expected = np.load(array).copy()
    folder = write_token_shards(array, tmp_path / "shards", per_shard=4)
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", *(f"shard-00000{i}.tar" for i in range(3))]
    assert not array.exists()  # the shards replace the array once whole
    assert np.array_equal(read_tokens(folder, model), expected)
    wds = pytest.importorskip("webdataset")
    read = [
        sample["npy"]
        for sample in wds.WebDataset(sorted(str(p) for p in folder.glob("*.tar")), shardshuffle=False).decode()
    ]
    assert np.array_equal(np.stack(read), expected)  # the library reads them as they are


def test_the_command_line_writes_shards_for_a_folder_and_decodes_them(tokenizer, tmp_path, capsys):
    out = tmp_path / "token-shards"
    assert main(["tokenize", str(tokenizer), "--split", "test", "-o", str(out)]) == 0
    assert "WebDataset shards" in capsys.readouterr().out
    assert main(["decode", str(tokenizer), str(out), "-o", str(tmp_path / "decoded.png")]) == 0
