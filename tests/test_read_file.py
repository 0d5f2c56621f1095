"""Files as people have them: delimiters, encodings, compression, numbers written as text."""

from __future__ import annotations

import bz2
import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperpilot.tools.data import load_table
from hyperpilot.tools.errors import DataError
from hyperpilot.tools.read_file import decode, parse_number_text, sniff_delimiter

ROWS = [("Zürich", "1,5", "12"), ("Genève", "2,25", "7"), ("Köln", "-0,5", "3")]


def _table(delimiter: str) -> str:
    lines = [delimiter.join(("city", "rate", "count"))]
    lines += [delimiter.join(row) for row in ROWS]
    return "\n".join(lines) + "\n"


def test_semicolons_and_decimal_commas_become_numbers(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text(_table(";") + "Wien;1.234,5;4\n", encoding="utf-8")
    frame = load_table(str(path))
    assert list(frame.columns) == ["city", "rate", "count"]
    assert frame["rate"].tolist() == [1.5, 2.25, -0.5, 1234.5]
    assert frame["city"].tolist()[:2] == ["Zürich", "Genève"]


def test_latin1_file_is_read_with_its_accents(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name,score\n" + "".join(
        f"{w},{i}\n" for i, w in enumerate(["café", "crème", "naïve", "façade"] * 5)
    ).encode("latin-1"))
    frame = load_table(str(path))
    assert frame["name"].tolist()[:4] == ["café", "crème", "naïve", "façade"]


def test_utf8_bom_does_not_end_up_in_the_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + b"id_col,value\n1,2\n3,4\n")
    assert list(load_table(str(path)).columns) == ["id_col", "value"]


@pytest.mark.parametrize("name", ["t.tsv", "t.txt", "t.csv"])
def test_tab_separated_files_are_split_on_tabs(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a\tb\tc\n1\t2\tx y\n3\t4\tz\n")
    frame = load_table(str(path))
    assert list(frame.columns) == ["a", "b", "c"] and frame["b"].tolist() == [2, 4]


@pytest.mark.parametrize("name, pack", [
    ("d.csv.gz", gzip.compress),
    ("d.csv.bz2", bz2.compress),
])
def test_compressed_csv_is_read(tmp_path: Path, name: str, pack) -> None:
    (tmp_path / name).write_bytes(pack(b"x,y\n1,a\n2,b\n"))
    assert load_table(str(tmp_path / name))["x"].tolist() == [1, 2]


def test_zip_with_one_table_is_read_and_with_two_refused(tmp_path: Path) -> None:
    one, two = tmp_path / "one.zip", tmp_path / "two.zip"
    with zipfile.ZipFile(one, "w") as archive:
        archive.writestr("inner/data.csv", "x;y\n1,5;a\n2,5;b\n")
    assert load_table(str(one))["x"].tolist() == [1.5, 2.5]
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    with pytest.raises(DataError, match="holds 2 files"):
        load_table(str(two))


def test_a_broken_gzip_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot decompress bad.csv.gz"):
        load_table(str(tmp_path / "bad.csv.gz"))


def test_infinite_values_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "inf.csv"
    path.write_text("x,y\n1.5,a\ninf,b\n-inf,a\n2.0,b\n")
    frame = load_table(str(path))
    assert frame["x"].isna().tolist() == [False, True, True, False]
    assert not np.isinf(frame["x"].to_numpy(dtype=float)).any()


def test_quoted_thousands_separators_become_numbers(tmp_path: Path) -> None:
    path = tmp_path / "money.csv"
    path.write_text('item,price\na,"1,234"\nb,"12,500.75"\nc,99\n')
    assert load_table(str(path))["price"].tolist() == [1234.0, 12500.75, 99.0]


def test_number_text_rules() -> None:
    assert parse_number_text(pd.Series(["1,234", "2,000"])).tolist() == [1234.0, 2000.0]
    assert parse_number_text(pd.Series(["1,234", "2,000"]), True).tolist() == [1.234, 2.0]
    assert parse_number_text(pd.Series(["3,14", None, "1 000,5"])).tolist()[::2] == [3.14, 1000.5]
    assert parse_number_text(pd.Series(["12", "abc"])) is None
    assert parse_number_text(pd.Series(["2021-01-03", "2021-01-04"])) is None


def test_delimiter_and_encoding_detection() -> None:
    assert sniff_delimiter(_table(";")) == ";"
    assert sniff_delimiter(_table("|")) == "|"
    assert sniff_delimiter('a,b\n"x;y",1\n"z;w",2\n') == ","
    assert sniff_delimiter("just one column\nvalue\n") == ","
    text, encoding = decode("prix,été\n".encode("cp1252"))
    assert text == "prix,été\n" and encoding != "utf-8"


def test_a_cyrillic_code_page_is_not_mistaken_for_a_western_one() -> None:
    raw = "имя,город\nПривет,Москва\nДобрый,Санкт-Петербург\n".encode("cp1251")
    assert decode(raw)[0].startswith("имя,город")
