"""Reading delimited files as people have them: any common delimiter and encoding, a BOM,
decimal commas, thousands separators, gzip/bz2/xz/zip compression. No LLM here.

The encoding is UTF-8 when the bytes decode as UTF-8 (a BOM is dropped), else the one
charset-normalizer finds most likely, else Latin-1 (which decodes any byte). The
delimiter is the one of ``, ; TAB |`` that splits the first lines into the most equal,
widest rows. Text columns whose every value is a number written with thousands
separators or a decimal comma become numbers.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from charset_normalizer import from_bytes

from hyperpilot.tools.errors import DataError

COMPRESSED = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
DELIMITED = (".csv", ".tsv", ".txt", ".tab", ".dat")
DELIMITERS = (",", ";", "\t", "|")
_SNIFF_LINES = 50
# Dot decimal with comma thousands ("1,234.5"), and comma decimal with dot or space
# thousands ("1.234,5", "1 234,5").
_DOT_DECIMAL = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[+-]?\.\d+$")
_COMMA_DECIMAL = re.compile(r"^[+-]?(\d{1,3}([. ]\d{3})+|\d+)(,\d+)?$")
_NUMBER_SPACES = str.maketrans("", "", "\u00a0\u202f")
_FEW_ACCENTS = 20
_LATIN_SCRIPT = {"latin_1", "cp1252", "cp1250", "cp1257", "iso8859_15", "iso8859_2",
                 "iso8859_4", "iso8859_10", "iso8859_13", "iso8859_16", "cp775", "cp850"}
_EAST_ASIAN = {"big5", "big5hkscs", "cp950", "gb2312", "gbk", "gb18030", "hz", "shift_jis",
               "cp932", "shift_jis_2004", "shift_jisx0213", "euc_jp", "euc_jis_2004",
               "euc_jisx0213", "euc_kr", "cp949", "johab"}
# Letters of Western European languages and the symbols their files commonly hold.
_WESTERN = set("ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿœŒ"
               "€£¥°±²³µ«»‘’“”–—…·§©®ºª¿¡\u00a0")


def inner_suffix(path: Path) -> str:
    """The suffix of the table inside ``path``: ``.csv`` for ``x.csv.gz`` or ``x.csv``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and (suffixes[-1] in COMPRESSED or suffixes[-1] == ".zip"):
        return suffixes[-2] if len(suffixes) > 1 else ".csv"
    return suffixes[-1] if suffixes else ""


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its name ends in .gz, .bz2, .xz or .zip.

    Args:
        path: the file; a .zip must hold exactly one file (folders aside).
    """
    suffix = path.suffix.lower()
    try:
        if suffix in COMPRESSED:
            return COMPRESSED[suffix](path.read_bytes())
        if suffix == ".zip":
            return _single_member(path)
        return path.read_bytes()
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot decompress {path.name}: {err}") from None


def _single_member(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")
                 and not n.startswith("__MACOSX/")]
        if len(names) != 1:
            raise DataError(f"{path.name} holds {len(names)} files; zip exactly one table")
        return archive.read(names[0])


def decode(raw: bytes) -> tuple[str, str]:
    """``raw`` as text and the name of the encoding used (a UTF-8 BOM is dropped).

    Args:
        raw: the file's bytes.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(raw[:200_000]).best()
    guess = best.encoding if best is not None and best.encoding else "latin_1"
    western = _as_western(raw)
    few = western is not None and sum(ord(c) > 127 for c in western) < _FEW_ACCENTS
    # Accented Western text also decodes as a double-byte East Asian code page, which the
    # detector sometimes prefers on short repetitive files; the Western reading wins then.
    east_asian = guess in _EAST_ASIAN or guess.startswith("iso2022")
    if western is not None and (few or east_asian or guess in _LATIN_SCRIPT
                                or guess.startswith("mac")):
        # Western files score alike in every Latin code page, and a handful of accented
        # bytes is too little to tell scripts apart; the Windows Western code page is by far
        # the most common, so it wins whenever it reads the bytes as Western letters.
        return western, "cp1252"
    try:
        return raw.decode(guess), guess
    except (UnicodeDecodeError, LookupError):
        return raw.decode("latin-1"), "latin-1"


def _as_western(raw: bytes) -> str | None:
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        return None
    odd = {c for c in set(text) if ord(c) > 127} - _WESTERN
    return None if odd else text


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into equal rows of the most fields.

    Quoted fields are respected; a single-column file gets ``,``.

    Args:
        text: the file's text.
    """
    head = "\n".join(text.splitlines()[:_SNIFF_LINES])
    best, best_key = ",", (0.0, 1)
    for delimiter in DELIMITERS:
        widths = [len(row) for row in csv.reader(io.StringIO(head), delimiter=delimiter) if row]
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        key = (count / len(widths), width)
        if width > 1 and (key[0] > best_key[0] + 1e-9
                          or (abs(key[0] - best_key[0]) < 1e-9 and width > best_key[1])):
            best, best_key = delimiter, key
    return best


def read_delimited(path: Path) -> pd.DataFrame:
    """Read a (possibly compressed) delimited text table, numbers written as text parsed.

    Args:
        path: a .csv/.tsv/.txt file, optionally ending in .gz, .bz2, .xz or .zip.
    """
    text, _ = decode(read_bytes(path))
    if not text.strip():
        raise DataError(f"{path} is empty")
    delimiter = sniff_delimiter(text)
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, low_memory=False,
                        skipinitialspace=True)
    comma_first = delimiter != ","
    for name in frame.columns:
        if frame[name].dtype == object or pd.api.types.is_string_dtype(frame[name]):
            parsed = parse_number_text(frame[name], comma_first)
            if parsed is not None:
                frame[name] = parsed
    return frame


def parse_number_text(series: pd.Series, comma_decimal_first: bool = False) -> pd.Series | None:
    """``series`` as floats when every present value is a number written as text, else None.

    Takes "1,234.5" (comma thousands) and "1.234,5" / "3,14" (decimal comma). A value that
    reads both ways ("1,234") is read as a decimal comma when ``comma_decimal_first``
    (files split by ``;`` or tabs), as thousands otherwise.

    Args:
        series: a text column.
        comma_decimal_first: prefer the decimal-comma reading when both fit.
    """
    values = series.dropna().astype(str).str.strip().str.translate(_NUMBER_SPACES)
    values = values[values != ""]
    if values.empty or not values.str.contains(r"\d", regex=True).all():
        return None
    dot = bool(values.str.match(_DOT_DECIMAL).all())
    comma = bool(values.str.match(_COMMA_DECIMAL).all())
    if not (dot or comma):
        return None
    use_comma = comma and (comma_decimal_first or not dot)

    def plain(value: object) -> object:
        if not isinstance(value, str):
            return np.nan
        text = value.strip().translate(_NUMBER_SPACES)
        if use_comma:
            return text.replace(".", "").replace(" ", "").replace(",", ".") or np.nan
        return text.replace(",", "") or np.nan

    cleaned = series.astype(object).where(series.notna(), np.nan).map(plain)
    return pd.to_numeric(cleaned, errors="coerce").astype(float)
