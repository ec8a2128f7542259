import pytest
from PIL import Image

from vaekit.config import DataConfig
from vaekit.data import DataError, load_dataset
from vaekit.data.labels import read_label_table


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
