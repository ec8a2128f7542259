import numpy as np
import pytest
from PIL import Image

from vaekit.config import DataConfig
from vaekit.data import DataError, load_dataset
from vaekit.data.labels import classes_from_folders, read_label_table


def test_csv_with_any_binary_spelling(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("filename,Smiling,Glasses\nsub/a.png,1,-1\nb.png,true,0\nc.png,no,yes\n")
    names, table = read_label_table(path)
    assert names == ["Smiling", "Glasses"]
    assert {k: v.tolist() for k, v in table.items()} == {"a.png": [1, 0], "b.png": [1, 0], "c.png": [0, 1]}


def test_csv_errors_name_the_line_and_column(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("filename,Smiling\na.png,maybe\n")
    with pytest.raises(DataError, match=r"labels.csv:2: column 'Smiling' holds 'maybe'"):
        read_label_table(path)
    path.write_text("filename,Smiling\na.png\n")
    with pytest.raises(DataError, match=r"labels.csv:2: expected 2 columns, got 1"):
        read_label_table(path)


def test_labels_are_joined_to_an_image_folder_by_file_name(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "labels.csv").write_text("filename,Smiling\na.png,1\nb.png,-1\n")
    data = load_dataset(DataConfig(source=str(tmp_path), image_size=8, labels=str(tmp_path / "labels.csv")))
    assert data.label_names == ["Smiling"] and data.labels[:, 0].tolist() == [1, 0]
    (tmp_path / "labels.csv").write_text("filename,Smiling\na.png,1\n")
    with pytest.raises(DataError, match=r"no labels for 1 image\(s\), e.g. \['b.png'\]"):
        load_dataset(DataConfig(source=str(tmp_path), image_size=8, labels=str(tmp_path / "labels.csv")))


def test_class_folders_number_their_classes_in_sorted_order(tmp_path):
    for folder, shade in (("dog", 200), ("cat", 30)):
        (tmp_path / folder).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (shade,) * 3).save(tmp_path / folder / f"{i}.png")
    data = classes_from_folders(load_dataset(DataConfig(source=str(tmp_path), image_size=8)))
    assert data.label_names == ["cat", "dog"]
    assert dict(zip(data.names, data.labels.tolist(), strict=True)) == {
        "cat/0.png": 0, "cat/1.png": 0, "dog/0.png": 1, "dog/1.png": 1,
    }  # fmt: skip


def test_images_outside_class_folders_have_no_classes(tmp_path):
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.png")
    with pytest.raises(DataError, match="class folders"):
        classes_from_folders(load_dataset(DataConfig(source=str(tmp_path), image_size=8)))


def test_a_npy_label_array_is_taken_in_the_images_order(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    np.save(tmp_path / "y.npy", np.array([2, 0, 1]))
    data = load_dataset(DataConfig(source=str(tmp_path), image_size=8, labels=str(tmp_path / "y.npy")))
    assert data.labels.tolist() == [2, 0, 1]
    np.save(tmp_path / "y.npy", np.array([2, 0]))
    with pytest.raises(DataError, match=r"shape \(N,\) or \(N, K\) for the 3 images"):
        load_dataset(DataConfig(source=str(tmp_path), image_size=8, labels=str(tmp_path / "y.npy")))


def test_images_beside_the_class_folders_give_no_class_labels():
    from vaekit.data.labels import folder_classes

    assert folder_classes(["cat/1.png", "dog/2.png", "loose.png"]) is None  # one image lies at the top
    assert folder_classes(["cat/1.png", "cat/2.png"]) is None  # one class is not a labelling
    labels, names = folder_classes(["dog/a/1.png", "cat/2.png", "dog/3.png"])
    assert labels.tolist() == [1, 0, 1] and names == ["cat", "dog"]
