"""The columnar readers (pandas) against the streaming parser: same logs, same line-numbered errors.

Two routes to one log: ``engine="pandas"`` (columnar, falls back on the streaming parser for any row
it is not sure about) and ``engine="python"`` (the streaming parser alone) must agree on every
field, token and physical line number, on random files of every format, plain and gzip.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_equiv.recsys.columnar import ColumnLayout, read_columns
from gan_equiv.recsys.logs import InteractionLog
from gan_equiv.recsys.readers import InteractionFormatError, load_interactions, read_csv
from gan_equiv.recsys.textfiles import read_bytes

ENGINES = ("pandas", "python")
HEADERS = {
    "recbole": "user_id:token\titem_id:token\trating:float\ttimestamp:float",
    "movielens": None,
    "csv": "user_id,item_id,rating,timestamp",
}
SEPARATORS = {"recbole": "\t", "movielens": "\t", "csv": ","}
RECBOLE_HEAD = HEADERS["recbole"] + "\n"


def assert_same(a: InteractionLog, b: InteractionLog) -> None:
    """Every array, token table and the source agree exactly."""
    for name in ("user", "item", "timestamp", "line"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.rating is None) == (b.rating is None)
    if a.rating is not None:
        np.testing.assert_array_equal(a.rating, b.rating)
    assert a.user_tokens == b.user_tokens and a.item_tokens == b.item_tokens and a.source == b.source


def read(path: Path, fmt: str, engine: str, **options) -> InteractionLog:
    rating = {"rating_col": "rating"} if fmt == "csv" else {}
    return load_interactions(path, fmt=fmt, engine=engine, **rating, **options)  # type: ignore[arg-type]


# --- random files: both engines, and the rows that were written ------------------------------

TOKENS = st.sampled_from(["7", "007", "+7", "-0", "0", "12", " 12", "12 ", "u1", "x y", "ü", "-3"])
PLAIN = st.integers(0, 50).map(str)
NUMBERS = st.one_of(
    st.integers(0, 2 * 10**9).map(str),
    st.floats(0, 1e10, allow_nan=False).map(repr),
    st.floats(-5, 5, allow_nan=False).map(lambda x: f"{x:.17g}"),
    st.sampled_from(["3.5", "1e3", " 4", "5 ", ".5"]),
)


@st.composite
def interaction_files(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, str, float, float]]]:
    """(format, file text, [(user, item, rating, timestamp)] as the readers must return them)."""
    fmt = draw(st.sampled_from(sorted(HEADERS)))
    ids = draw(st.sampled_from([PLAIN, TOKENS]))  # integer ids (the numeric path) or any tokens
    rows = draw(st.lists(st.tuples(ids, ids, NUMBERS, NUMBERS), min_size=1, max_size=25))
    blanks = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    sep = SEPARATORS[fmt]
    lines = [HEADERS[fmt]] if HEADERS[fmt] else []
    for (u, i, r, t), blank in zip(rows, blanks, strict=True):
        lines += [""] * blank + [sep.join((u, i, r, t))]
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + draw(st.sampled_from(["", ending, ending * 2]))
    expected = [(u.strip(), i.strip(), float(r), float(t)) for u, i, r, t in rows]
    return fmt, text, expected


@settings(max_examples=60)
@given(interaction_files())
def test_both_engines_return_the_written_rows(tmp_path_factory: pytest.TempPathFactory, case) -> None:
    fmt, text, expected = case
    path = tmp_path_factory.mktemp("random") / f"log.{fmt}"
    path.write_bytes(text.encode("utf-8"))
    logs = [read(path, fmt, engine) for engine in ENGINES]
    assert_same(*logs)
    log = logs[0]
    got = [
        (log.user_tokens[u], log.item_tokens[i], r, t)
        for u, i, r, t in zip(log.user, log.item, log.rating, log.timestamp, strict=True)
    ]
    assert got == expected
    assert log.line.size == len(expected) and (np.diff(log.line) >= 1).all()


def test_the_columnar_path_reads_clean_files_and_declines_bad_ones(tmp_path: Path) -> None:
    """A valid file never pays for the streaming pass; a file with one bad row is declined."""
    good = RECBOLE_HEAD + "".join(f"{u % 7}\t{u % 11}\t{u % 5 + 1}\t{1000 + u}\n" for u in range(200))
    layout = ColumnLayout(n_fields=4, sep="\t", user=0, item=1, rating=2, time=3)
    data = good.encode()
    log = read_columns(data, start=len(RECBOLE_HEAD), first_line=2, layout=layout, source="x")
    assert log is not None and len(log) == 200 and log.line.tolist() == list(range(2, 202))
    for bad in ("1\t2\t3\n", "1\t2\t3\tsoon\n", "1\t\t3\t4\n", "1\t2\t3\tinf\n", "1\t2\t3\t4\t5\n"):
        data = (good + bad + good[len(RECBOLE_HEAD) :]).encode()
        assert read_columns(data, start=len(RECBOLE_HEAD), first_line=2, layout=layout, source="x") is None


def test_integer_looking_ids_keep_their_text(tmp_path: Path) -> None:
    """Ids are tokens: '007', '7', '+7', '-0' and '0' are five users, read by the columnar path
    (numbers first, then reread as text) and by ML-1M's '::' separator alike."""
    users = ["007", "7", "+7", "-0", "0", "7"]
    data = "".join(f"{u}::{k}::3::{100 + k}\n" for k, u in enumerate(users)).encode()
    layout = ColumnLayout(n_fields=4, sep="::", user=0, item=1, rating=2, time=3)
    log = read_columns(data, start=0, first_line=1, layout=layout, source="x")
    assert log is not None and log.user_tokens == ("007", "7", "+7", "-0", "0")
    assert log.user.tolist() == [0, 1, 2, 3, 4, 1] and log.item_tokens == tuple("012345")
    path = tmp_path / "ratings.dat"
    path.write_bytes(data)
    assert_same(*(load_interactions(path, fmt="movielens", delimiter="::", engine=e) for e in ENGINES))


# --- malformed input: every case names the file and the line, on both engines -----------------

MALFORMED = [
    ("recbole", "user_id\titem_id:token\ttimestamp:float\n1\t2\t3\n", 1, "not 'name:type'"),
    ("recbole", "user_id:token\titem_id:tok\ttimestamp:float\n", 1, "unknown type"),
    ("recbole", "user_id:token\tuser_id:token\ttimestamp:float\n", 1, "appears twice"),
    ("recbole", "user_id:token\titem_id:token\trating:float\n1\t2\t3\n", 1, "'timestamp' is missing"),
    ("recbole", RECBOLE_HEAD + "1\t2\t3\t4\n1\t2\t3\n", 3, "expected 4 tab-separated fields"),
    ("recbole", RECBOLE_HEAD + "1\t2\t3\tsoon\n", 2, "timestamp 'soon' is not a number"),
    ("recbole", RECBOLE_HEAD + "1\t2\tgood\t4\n", 2, "rating 'good' is not a number"),
    ("recbole", RECBOLE_HEAD + "\n\n \t2\t3\t4\n", 4, "empty user id"),
    ("recbole", RECBOLE_HEAD + "1\t\t3\t4\n", 2, "empty item id"),
    ("recbole", RECBOLE_HEAD + "1\t2\t3\tinf\n", 2, "not finite"),
    ("recbole", "", 1, "empty file"),
    ("recbole", RECBOLE_HEAD, 2, "no interactions"),
    ("movielens", "1\t2\t3\t4\n1\t2\t3\n", 2, "expected 4 fields"),
    ("movielens", "1\t2\t3\t4\n\n1\t2\t3\tx\n", 3, "timestamp 'x' is not a number"),
    ("movielens", "1\t2\tnan?\t4\n", 1, "rating 'nan?' is not a number"),
    ("movielens", "1\t\t3\t4\n", 1, "empty item id"),
    ("movielens", "\t2\t3\t4\n", 1, "empty user id"),
    ("csv", "user,item,timestamp\n1,2,3\n", 1, "'user_id' is missing"),
    ("csv", "user_id,item_id,timestamp\n1,2,3\n1,2\n", 3, "expected 3 fields"),
    ("csv", "user_id,item_id,timestamp\n1,2,yesterday\n", 2, "timestamp 'yesterday' is not a number"),
    ("csv", "user_id,item_id,timestamp\n,2,3\n", 2, "empty user id"),
    ("csv", "", 1, "empty file"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("fmt", "text", "line", "message"), MALFORMED)
def test_malformed_rows_name_file_and_line(
    tmp_path: Path, fmt: str, text: str, line: int, message: str, engine: str
) -> None:
    path = tmp_path / f"bad.{fmt}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InteractionFormatError) as info:
        load_interactions(path, fmt=fmt, engine=engine)  # type: ignore[arg-type]
    assert info.value.line == line
    assert f"{path}, line {line}:" in str(info.value)
    assert message in str(info.value)


def test_csv_bad_rating_and_bad_iso(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,timestamp,r\n1,2,3,4\n1,2,3,five\n")
    with pytest.raises(InteractionFormatError, match=r"line 3: rating 'five' is not a number"):
        read_csv(path, rating_col="r")
    path.write_text("user_id,item_id,timestamp\n1,2,2020-13-01\n")
    with pytest.raises(InteractionFormatError, match=r"line 2: ISO 8601 timestamp"):
        read_csv(path, time_format="iso")


BAD_ROWS = {
    "extra field": (b"5\t6\t3\t100\t9\n", "expected 4 tab-separated fields (header), got 5"),
    "missing field": (b"5\t6\t100\n", "expected 4 tab-separated fields (header), got 3"),
    "bad number": (b"5\t6\t3\t12:00\n", "timestamp '12:00' is not a number"),
    "empty id": (b"5\t \t3\t100\n", "empty item id"),
    "infinite": (b"5\t6\tinf\t100\n", "rating 'inf' is not finite"),
    "not UTF-8": (b"5\t6\xff\t3\t100\n", "is not UTF-8 text (byte 0xff at column 4)"),
    "NUL byte": (b"5\t6\x00\t3\t100\n", "contains a NUL byte: this is a binary file"),
}


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_a_bad_row_in_the_middle_is_named_by_its_line(tmp_path: Path, kind: str, compress: bool) -> None:
    """3000 good rows (blank lines among them), one bad row at a seeded position: its physical
    line is named, by both engines, for the plain file and its gzip."""
    rng = np.random.default_rng(11)
    rows = [f"{u}\t{i}\t{r}\t{t}\n".encode() for u, i, r, t in rng.integers(1, 900, size=(3000, 4))]
    for at in rng.choice(3000, size=40, replace=False):
        rows[at] = b"\n"  # blank lines shift the physical line numbers
    bad_at = int(rng.integers(1000, 2000))
    bad, message = BAD_ROWS[kind]
    rows[bad_at] = bad
    data = RECBOLE_HEAD.encode() + b"".join(rows)
    path = tmp_path / ("log.inter.gz" if compress else "log.inter")
    path.write_bytes(gzip.compress(data) if compress else data)
    for engine in ENGINES:
        with pytest.raises(InteractionFormatError) as info:
            load_interactions(path, fmt="recbole", engine=engine)  # type: ignore[arg-type]
        assert info.value.line == bad_at + 2, engine  # header on line 1, rows from line 2
        assert message in str(info.value)


# --- gzip and files that are not interaction logs --------------------------------------------


@pytest.mark.parametrize("fmt", sorted(HEADERS))
def test_gzip_reads_the_same_as_the_plain_file(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(5)
    sep = SEPARATORS[fmt]
    body = "".join(
        f"u{u}{sep}{i:03d}{sep}{r}{sep}{t}\n" for u, i, r, t in rng.integers(0, 500, size=(400, 4))
    )
    text = (HEADERS[fmt] + "\n" if HEADERS[fmt] else "") + body
    plain, packed = tmp_path / "log.txt", tmp_path / "log.txt.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    renamed = tmp_path / "log_without_suffix"  # gzip is recognized by its bytes, not its name
    renamed.write_bytes(packed.read_bytes())
    a = read(plain, fmt, "pandas")
    for path in (packed, renamed):
        b = read(path, fmt, "pandas")
        assert_same(a, InteractionLog(**{**b.__dict__, "source": a.source}))
    assert len(a) == 400 and a.item_tokens[0] == f"{int(body.split(sep)[1]):03d}"  # leading zeros kept


def test_iso_timestamps_agree_to_the_microsecond(tmp_path: Path) -> None:
    stamps = [
        "2020-01-01T00:00:10",
        "2020-01-01 00:00:10.123456",
        "1969-12-31T23:59:59.5+02:00",
        "2021-06-01",
    ]
    path = tmp_path / "iso.csv"
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"u,{k},{s}\n" for k, s in enumerate(stamps)))
    fast, slow = (read_csv(path, time_format="iso", engine=e) for e in ENGINES)  # type: ignore[arg-type]
    assert_same(fast, slow)
    assert fast.timestamp[0] == 1577836810.0 and fast.timestamp[1] == 1577836810.123456


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\x02binary", "line 1: contains a NUL byte"),
        (b"BZh91AY&SY", "is bzip2-compressed; decompress it"),
        (b"\x1f\x8b\x08\x00broken", "is not a valid gzip file"),
        (b"user_id:token\titem_id:token\ttimestamp:float\n\xc3\x28\t1\t2\n", "line 2: is not UTF-8 text"),
    ],
)
def test_files_that_are_not_text_logs_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "data.inter"
    path.write_bytes(content)
    with pytest.raises(InteractionFormatError, match=message):
        load_interactions(path, fmt="recbole")
    with pytest.raises(InteractionFormatError, match="is a directory"):
        read_bytes(tmp_path)
    with pytest.raises(InteractionFormatError, match="does not exist; check the path"):
        read_bytes(tmp_path / "missing.inter")
