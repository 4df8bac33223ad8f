"""The columnar CSV path (file_source.read_columns + columnar.ColumnEncoder) stages exactly what
the row reader stages (file_source.read_items + rows.row_builder + staging.encode_line): the same
COPY bytes, so the same rows, row ids and checksum, on hand-made and on random hostile files.
Where the columnar path declines (NotColumnar) the row reader is the definition; the tests
check that it declines only then, and that it takes the files it is for."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import time

import pytest

from ioc_pipeline.declaration.catalog import Field, get
from ioc_pipeline.errors import NotColumnar
from ioc_pipeline.extract import file_source
from ioc_pipeline.extract.file_source import FileUnreadable
from ioc_pipeline.ingest import columnar, rows, staging

VISITS = get("health_visits")
KEY = b"k" * 32
HEADER = "visit_id,facility_code,commune_code,visit_at,patient_cccd,bhyt_card_no,identification"
NAME = "health/bhyt_visits_48001_20261119.csv"


def deliver(root, data: bytes):
    path = root / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - 600
    os.utime(path, (past, past))
    (delivery,) = file_source.discover(root, VISITS.files, dt.date(2026, 11, 19))
    return delivery


def by_rows(root, delivery, source=VISITS) -> tuple[bytes, set[str]]:
    build = rows.row_builder(source, KEY, "2026-11-19", "48")
    items = list(file_source.read_items(root, source, delivery))
    text = "".join(staging.encode_line(build(i, item)) for i, item in enumerate(items, 1))
    return text.encode(), {k for item in items for k in item if k not in source.field_names and k != rows.CELL_ERRORS}


def by_columns(root, delivery, source=VISITS) -> tuple[bytes, set[str]]:
    read = file_source.read_columns(root, source, delivery)
    encoder = columnar.ColumnEncoder(source, KEY, "2026-11-19", "48")
    data = b"".join(encoder.encode(batch, read.columns) for batch in read.batches)
    extra = {h for h in read.header if h and h not in source.field_names} if data else set()
    return data, extra


def outcome(read, root, delivery, source):
    try:
        return read(root, delivery, source)
    except FileUnreadable as exc:
        return f"unreadable: {exc}"


def same_or_declined(root, data: bytes, source=VISITS) -> bool:
    """True when the columnar path took the file (and staged what the rows path stages)."""
    delivery = deliver(root, data)
    expected = outcome(by_rows, root, delivery, source)
    try:
        got = outcome(by_columns, root, delivery, source)
    except NotColumnar:
        return False
    assert got == expected, data
    return True


VALID = "V1,48001,20194,2026-11-19 08:30:00,048095000123,DN4480123456789,chip_cccd"

TAKEN = {
    "plain": f"{HEADER}\n{VALID}\n",
    "crlf, bom, no final newline": f"\ufeff{HEADER}\r\n{VALID}\r\n{VALID.replace('V1', 'V2')}",
    "blank lines and blank rows": f"{HEADER}\n\n{VALID}\n,,,,,,\n   \n \u3000\t, ,\n\r\n{VALID}\n",
    "whitespace cells are nulls": f"{HEADER}\nV1, ,\t,\u00a0,\u3000 ,\u2028,\n",
    "copy escapes in values": f"{HEADER}\nV\\1,a\tb,\\N,2026-11-19\\t,04\t8095000123,D\\N,x\\\n",
    "non-ascii values and ids": f"{HEADER}\nVe\u0301,Cafe\u0301,\u1ea0,x,\uff10\uff14\uff18095000123,DN\u00e94480123456789,p\n"
                                f"V2,a,b,c,048095000123 ,  DN4480123456789,chip_cccd\n",
    "malformed ids": f"{HEADER}\nV1,a,b,c,04809500012,dn4480123456789,x\nV2,a,b,c,0480950001234,DN44801234567890,x\n"
                     f"V3,a,b,c,999195000001,AB1,x\nV4,a,b,c,12,D,x\nV5,a,b,c,{'9' * 60},{'Z' * 60},x\n",
    "extra, unnamed and trailing empty header columns": f"{HEADER},note,,x,,\nV1,a,b,c,,,p,n,u,y,,\n",
    "header only": f"{HEADER}\n",
}
DECLINED = {
    "a quote": f'{HEADER}\n"V1",a,b,c,,,p\n',
    "a ragged row": f"{HEADER}\n{VALID}\nV2,48001\n",
    "a lone carriage return": f"{HEADER}\nV1,a\rb,c,d,,,p\n",
    "a NUL": f"{HEADER}\nV1,a\x00,c,d,,,p\n",
}


@pytest.mark.parametrize("case", TAKEN)
def test_the_columnar_path_stages_exactly_what_the_row_reader_stages(tmp_path, case):
    assert same_or_declined(tmp_path, TAKEN[case].encode())


@pytest.mark.parametrize("case", DECLINED)
def test_the_columnar_path_declines_what_only_the_row_reader_reads(tmp_path, case):
    assert not same_or_declined(tmp_path, DECLINED[case].encode())


def test_unreadable_files_fail_the_same_way_on_both_paths(tmp_path):
    for data in (b"", HEADER.replace(",identification", "").encode() + b"\nV1,a,b,c,d,e\n",
                 f"{HEADER},visit_id\nV1,a,b,c,,,p,V1\n".encode()):
        delivery = deliver(tmp_path, data)
        with pytest.raises(FileUnreadable) as by_row_reader:
            by_rows(tmp_path, delivery)
        with pytest.raises(FileUnreadable) as by_columnar:
            by_columns(tmp_path, delivery)
        assert str(by_columnar.value) == str(by_row_reader.value)
    # bytes that are not UTF-8: the row reader names the line
    assert not same_or_declined(tmp_path, HEADER.encode() + b"\nV1,\xff\xfe,c,d,,,p\n")


def test_row_ids_follow_on_across_record_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(file_source, "COLUMNAR_BLOCK_BYTES", 1024)
    body = "".join(f"V{i},48001,20194,2026-11-19 08:30:00,0480950{i:05d},DN4480123456789,chip_cccd\n"
                   for i in range(300))
    delivery = deliver(tmp_path, f"{HEADER}\n{body}".encode())
    assert len(list(file_source.read_columns(tmp_path, VISITS, delivery).batches)) > 5
    assert same_or_declined(tmp_path, f"{HEADER}\n{body}".encode())


def test_a_name_field_is_staged_as_its_presence_marker_on_both_paths(tmp_path):
    # no CSV source of the catalog declares a name; one that does is read the same way
    named = dataclasses.replace(VISITS, fields=(*VISITS.fields[:-1], Field("identification", pii="name")))
    data = f"{HEADER}\nV1,a,b,c,,,Nguyen Van A\nV2,a,b,c,,, \nV3,a,b,c,,,\nV4,a,b,c,,,Nguy\u1ec5n\n"
    assert same_or_declined(tmp_path, data.encode(), named)
    staged = by_columns(tmp_path, deliver(tmp_path, data.encode()), named)[0].decode()
    assert [line.rsplit("\t", 1)[1] for line in staged.splitlines()] == [rows.REDACTED, "\\N", "\\N", rows.REDACTED]
    assert "Nguy" not in staged


PIECES = ["V1", "48001", "20194", "2026-11-19 08:30:00", "048095000123", "049195000001", "001089012345",
          "DN4480123456789", "chip_cccd", "paper", " ", "  ", "\t", "\\", "\\N", "x", "", "\u3000", "\u00a0",
          "e\u0301", "\u1ea0", "\uff10", "\x1c", "\x85", ";", "=1+1"]
RARE = ['"', "\r", "\x00"]


def random_file(rng: random.Random) -> bytes:
    lines = [HEADER + rng.choice(["", ",extra", ",", ",,note"])]
    width = HEADER.count(",") + 1 + (lines[0].count(",") - HEADER.count(","))
    for _ in range(rng.randint(0, 12)):
        n = width if rng.random() < 0.96 else rng.randint(1, width + 2)
        cells = ["".join(rng.choice(PIECES) for _ in range(rng.choice([1, 1, 1, 2, 3]))) for _ in range(n)]
        if rng.random() < 0.03:
            cells[0] += rng.choice(RARE)
        lines.append(",".join(cells))
        if rng.random() < 0.1:
            lines.append(rng.choice(["", " ", ",,,,,,", "\t"]))
    data = rng.choice(["\n", "\r\n"]).join(lines) + rng.choice(["", "\n"])
    raw = (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + data.encode()
    if rng.random() < 0.03:
        raw += b"\xff"
    return raw


def test_random_hostile_files_stage_the_same_on_both_paths(tmp_path):
    rng = random.Random(20261119)
    taken = sum(same_or_declined(tmp_path, random_file(rng)) for _ in range(300))
    assert taken >= 150   # most files are plain: the comparison is not vacuous


def test_the_plain_file_scan_decides_the_same_whatever_its_chunk_size(tmp_path, monkeypatch):
    # line ends and multi-byte characters cut by a chunk boundary must not change the verdict
    samples = [b"a,b\r\nc,d\r\n", b"a,b\r\nc,d\r", b"a,b\rc\n", b"a\r\r\nb\n", b"\xef\xbb\xbfa,\xe1\xba\xa0\r\nb\n",
               b"a,\xe1\xba", b"a,\xe1\xba\xa0\xff\n", b'a,"b"\n', b"a,\x00\n", b"plain,file\nno,trouble\n"]
    rng = random.Random(7)
    samples += [random_file(rng) for _ in range(40)]
    path = tmp_path / "f.csv"
    for data in samples:
        path.write_bytes(data)
        verdicts = set()
        for size in (1, 2, 3, 5, 8 << 20):
            monkeypatch.setattr(file_source, "_SCAN_BYTES", size)
            verdicts.add(file_source.plain_csv(path))
        assert len(verdicts) == 1, (data, verdicts)
    monkeypatch.setattr(file_source, "_SCAN_BYTES", 2)
    for data, why in [(b"a,b\r\nc,d\r\n", None), (b"a,b\r\nc,d\r", "a carriage return that does not end a line"),
                      (b"x,\xe1\xba\xa0\n", None), (b"x,\xe1\xba", "bytes that are not UTF-8"), (b'a,"b"\n', "a quote")]:
        path.write_bytes(data)
        assert file_source.plain_csv(path) == why
