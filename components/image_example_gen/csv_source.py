"""FER2013's CSV form as a data source: `emotion,pixels,Usage` rows -> the examples that image
folders of the same images give.

Each data row is one 48x48 gray face: `emotion` an id (FER2013_EMOTIONS: 0 angry ...
6 neutral), `pixels` 2304 space-separated values 0-255, `Usage` the split, named as the split
folders are (`Training` -> train, `PublicTest` -> eval; `PrivateTest` -> test only when asked
for). A row becomes the example a class folder would give for the file `<class>/<row>.png`:
the pixels as a lossless PNG, the same label ids, and the same split rule, the validation share
hashed on that name (tf_examples.split_of). Its `source_path` is `<csv>:<row>`, the row being
the line number in the file (the header is row 1); a row is one line.

Every data row becomes an example or one skip with its row and reason, like a file in a class
folder: bad rows (BAD_ROW_REASONS) under the on_bad_image policy, rows of a class or split left
out always skipped and listed. The rows are counted by a scan of the file before Beam reads it,
apart from what becomes of each row, so the ingest report's `files seen = examples + skipped`
check covers rows too.

Memory stays bounded whatever the file holds: the file is read in blocks, in chunks of whole
lines that Beam spreads over workers, and a line longer than MAX_LINE_BYTES is skipped without
being held (which also keeps every field under the csv module's field_size_limit).
"""
from __future__ import annotations

import csv
import dataclasses
import posixpath
import re
import struct
import zlib
from typing import BinaryIO, Iterator, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components import contract
from components.image_example_gen import image_checks, ingest_report
from components.image_example_gen import layout as layout_lib
from components.image_example_gen.tf_examples import make_example, split_of

# Exec properties of ImageFolderExampleGen that choose this source.
DATA_CSV_KEY = "data_csv"                  # the CSV's path relative to the data root or span
INCLUDE_TEST_KEY = "csv_private_test"      # 1: ingest the test split's rows (PrivateTest)

# fer2013.csv labels rows by id: emotion id -> class name (contract.FER2013_CLASSES).
FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EMOTION_COLUMN = "emotion"
PIXELS_COLUMN = "pixels"
USAGE_COLUMN = "Usage"
REQUIRED_COLUMNS = (EMOTION_COLUMN, PIXELS_COLUMN, USAGE_COLUMN)
IMAGE_SIZE = 48                            # FER2013's faces: 48x48, one channel
PIXEL_COUNT = IMAGE_SIZE * IMAGE_SIZE
IMAGE_FORMAT = "PNG"
# A row of 2304 three-digit values is under 10 KB: a line 6x that is no FER2013 row.
MAX_LINE_BYTES = 64 * 1024
# Beam reads the file in chunks of whole lines of about this size (one element each).
CHUNK_BYTES = 4 * 1024 * 1024
_READ_BYTES = 1024 * 1024
HEADER_ROW = 1

# Rows that cannot be used: subject to the on_bad_image policy.
REASON_LINE_TOO_LONG = "line_too_long"
REASON_NOT_UTF8 = "not_utf8"
REASON_MALFORMED_ROW = "malformed_row"
REASON_WRONG_COLUMN_COUNT = "wrong_column_count"
REASON_UNKNOWN_USAGE = "unknown_usage"
REASON_UNKNOWN_EMOTION = "unknown_emotion"
REASON_NON_NUMERIC = "non_numeric_pixels"
REASON_WRONG_PIXEL_COUNT = "wrong_pixel_count"
REASON_PIXEL_OUT_OF_RANGE = "pixel_out_of_range"
BAD_ROW_REASONS = frozenset({
    REASON_LINE_TOO_LONG, REASON_NOT_UTF8, REASON_MALFORMED_ROW, REASON_WRONG_COLUMN_COUNT,
    REASON_UNKNOWN_USAGE, REASON_UNKNOWN_EMOTION, REASON_NON_NUMERIC, REASON_WRONG_PIXEL_COUNT,
    REASON_PIXEL_OUT_OF_RANGE})
# Rows left out on purpose, always skipped and listed (a class left out: image_checks').
REASON_SPLIT_NOT_INCLUDED = "split_not_included"
REASON_BLANK_LINE = "blank_line"

_PIXEL_TEXT = re.compile(r"[0-9 \t]*")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class CsvSourceError(layout_lib.LayoutError):
    """The CSV cannot be read as a data source at all (missing, no header, missing columns)."""


@dataclasses.dataclass(frozen=True)
class CsvChunk:
    """Whole lines at bytes [start, end) of the file; `first_row` is the first one's row."""

    start: int
    end: int
    first_row: int


@dataclasses.dataclass(frozen=True)
class CsvSource:
    """A CSV resolved for reading: where its columns are, its rows' splits, and its chunks."""

    path: str                          # the file, as tf.io.gfile opens it
    rel_path: str                      # relative to the data root (or span): in source paths
    layout: layout_lib.DatasetLayout   # classes, label ids, output splits
    column_count: int
    emotion_column: int
    pixels_column: int
    usage_column: int
    usage_splits: Mapping[str, str]    # Usage value -> output split (the split folder names)
    left_out_splits: Tuple[str, ...]   # splits whose rows are listed as skipped
    rows: int                          # data rows, counted by the scan
    chunks: Tuple[CsvChunk, ...]


def data_csv_problem(data_csv: str, split_ratios: Optional[Mapping[str, float]]) -> Optional[str]:
    """What is wrong with `data_csv` as a CSV option, or None."""
    if posixpath.isabs(data_csv) or "://" in data_csv or ".." in data_csv.split("/"):
        return (f"data_csv {data_csv!r} must be a path relative to the data root (or to each "
                "span-<N> folder), without '..'")
    if split_ratios:
        return "split_ratios does not apply to data_csv: the Usage column gives the splits"
    return None


def _open(path: str) -> BinaryIO:
    local = image_checks.local_path(path)
    return open(local, "rb") if local is not None else tf.io.gfile.GFile(path, "rb")


def read_header(path: str) -> Tuple[int, Sequence[str]]:
    """(bytes up to the first data row, column names) of the CSV at `path`.

    Raises:
      CsvSourceError: no header line, one longer than MAX_LINE_BYTES, or not UTF-8 CSV.
    """
    with _open(path) as f:
        head = f.read(MAX_LINE_BYTES + 1)
    end = head.find(b"\n")
    if end < 0 and len(head) > MAX_LINE_BYTES:
        raise CsvSourceError(f"{path}: no header line in its first {MAX_LINE_BYTES} bytes")
    line = head if end < 0 else head[:end]
    try:
        names = next(csv.reader([line.decode("utf-8-sig").rstrip("\r")], strict=True), [])
    except (UnicodeDecodeError, csv.Error) as e:
        raise CsvSourceError(f"{path}: the header is not a UTF-8 CSV line: {e}") from None
    return (len(head) if end < 0 else end + 1), [n.strip() for n in names]


def scan(path: str, data_start: int, chunk_bytes: int = CHUNK_BYTES
         ) -> Tuple[int, Tuple[CsvChunk, ...]]:
    """(data rows, chunks of whole lines) of the file from byte `data_start` on, in one pass
    over blocks of the file: a line is counted, never held."""
    boundaries = [(data_start, 0)]     # (line start, lines before it)
    newlines = 0
    pos = data_start
    target = data_start + chunk_bytes  # the next chunk starts at the first line from here
    last = b""
    with _open(path) as f:
        f.seek(data_start)
        while True:
            block = f.read(_READ_BYTES)
            if not block:
                break
            while target < pos + len(block):
                i = block.find(b"\n", max(target - pos, 0))
                if i < 0:
                    target = pos + len(block)
                    break
                boundaries.append((pos + i + 1, newlines + block.count(b"\n", 0, i + 1)))
                target = pos + i + 1 + chunk_bytes
            newlines += block.count(b"\n")
            last = block[-1:]
            pos += len(block)
    rows = newlines + (1 if pos > data_start and last != b"\n" else 0)
    boundaries = [b for b in boundaries if b[0] < pos]
    if not boundaries:
        return rows, ()
    ends = [b[0] for b in boundaries[1:]] + [pos]
    chunks = tuple(CsvChunk(start, end, HEADER_ROW + 1 + before)
                   for (start, before), end in zip(boundaries, ends, strict=True))
    return rows, chunks


def resolve_source(root: str, data_csv: str,
                   split_folders: Mapping[str, str] = contract.DEFAULT_SPLIT_FOLDERS,
                   classes: Optional[Sequence[str]] = contract.DEFAULT_CLASSES,
                   exclude_classes: Sequence[str] = (),
                   split_ratios: Optional[Mapping[str, float]] = None,
                   validation_fraction: float = 0.0, include_test: bool = False,
                   chunk_bytes: int = CHUNK_BYTES) -> CsvSource:
    """Checks the CSV `root/data_csv` and its options and scans it into chunks.

    Usage values map to splits through `split_folders`, as split folder names do; rows of the
    test split (FER2013's PrivateTest) are listed as skipped unless `include_test`.

    Raises:
      CsvSourceError (a layout.LayoutError): with a message saying what is wrong.
    """
    problem = data_csv_problem(data_csv, split_ratios)
    if problem:
        raise CsvSourceError(problem)
    path = posixpath.join(root, data_csv)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise CsvSourceError(f"CSV {path!r} not found: --data-csv names a file in the data root "
                             "(or in each span-<N> folder)")
    data_start, names = read_header(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    repeated = sorted({c for c in REQUIRED_COLUMNS if names.count(c) > 1})
    if missing or repeated:
        raise CsvSourceError(
            f"{path}: the header must name the columns {', '.join(REQUIRED_COLUMNS)} once each "
            f"(FER2013's fer2013.csv); {'missing ' + str(missing) if missing else ''}"
            f"{' repeated ' + str(repeated) if repeated else ''}; found {names}")

    wanted = list(FER2013_EMOTIONS if classes is None else dict.fromkeys(classes))
    unknown = [c for c in wanted if c not in FER2013_EMOTIONS]
    if unknown:
        raise CsvSourceError(f"class(es) {unknown} requested, but the CSV's emotion ids name "
                             f"only {list(FER2013_EMOTIONS)}")
    class_names = contract.label_names(wanted, exclude_classes)
    if not class_names:
        raise CsvSourceError(f"no classes left to ingest from {path}: requested {classes}, "
                             f"excluded {sorted(exclude_classes)}")
    usage_splits = dict(split_folders)
    missing_splits = [s for s in contract.REQUIRED_SPLITS if s not in usage_splits.values()]
    if missing_splits:
        raise CsvSourceError(f"no Usage value maps to the split(s) {missing_splits} in "
                             f"split_folders {usage_splits}")
    layout_lib.check_validation_fraction(validation_fraction, usage_splits.values())
    left_out = () if include_test else (contract.TEST_SPLIT,)
    splits = [s for s in usage_splits.values() if s not in left_out]
    rows, chunks = scan(path, data_start, chunk_bytes)
    layout = layout_lib.DatasetLayout(
        root=root, class_names=class_names,
        splits=layout_lib.ordered_splits(
            splits + ([contract.VALID_SPLIT] if validation_fraction else [])),
        class_folders=(), stray_entries=(), validation_fraction=validation_fraction)
    return CsvSource(path=path, rel_path=data_csv, layout=layout, column_count=len(names),
                     emotion_column=names.index(EMOTION_COLUMN),
                     pixels_column=names.index(PIXELS_COLUMN),
                     usage_column=names.index(USAGE_COLUMN), usage_splits=usage_splits,
                     left_out_splits=left_out, rows=rows, chunks=chunks)


def read_lines(f: BinaryIO, start: int, end: int, max_line_bytes: int = MAX_LINE_BYTES
               ) -> Iterator[Tuple[Optional[bytes], int]]:
    """(line without its newline, length) for each line of `f` that starts in [start, end);
    (None, length) for a line longer than `max_line_bytes`, whose bytes are dropped as they are
    read. `start` must be a line start."""
    f.seek(start)
    line_start = start
    held = bytearray()       # bytes from line_start on (or the tail of a line being dropped)
    dropped = 0              # bytes of the current line dropped so far (too long)
    at_end = False
    while line_start < end:
        i = held.find(b"\n")
        if i >= 0:
            length = dropped + i
            yield (None if length > max_line_bytes else bytes(held[:i])), length
            line_start += length + 1
            del held[:i + 1]
            dropped = 0
            continue
        if at_end:
            if held or dropped:       # a last line without its newline
                length = dropped + len(held)
                yield (None if length > max_line_bytes else bytes(held)), length
            return
        if len(held) > max_line_bytes:
            dropped += len(held)
            held.clear()
        block = f.read(_READ_BYTES)
        if block:
            held += block
        else:
            at_end = True


def encode_png(pixels: bytes, width: int = IMAGE_SIZE) -> bytes:
    """8-bit gray pixels (row by row) as a PNG: lossless, the same bytes for the same pixels."""
    height = len(pixels) // width
    raw = b"".join(b"\x00" + pixels[r * width:(r + 1) * width] for r in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data)))

    return (_PNG_SIGNATURE
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _first(tokens: Sequence[str], bad) -> str:
    """Where the first bad value is, for a skip's detail."""
    i = next((i for i, t in enumerate(tokens) if bad(t)), None)
    return "a character other than digits and spaces" if i is None else \
        f"value {i + 1}: {tokens[i][:20]!r}"


def row_record(line: Optional[bytes], length: int, row: int, source: CsvSource):
    """One line of the CSV -> an ingest_report.example_record or skipped_record."""
    ref = f"{source.rel_path}:{row}"

    def skip(reason: str, detail: str = "", split: Optional[str] = None,
             class_name: Optional[str] = None):
        return ingest_report.skipped_record(ref, split, class_name, reason, detail)

    if line is None:
        return skip(REASON_LINE_TOO_LONG, f"{length} bytes; a row has at most "
                                          f"{MAX_LINE_BYTES}")
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.strip():
        return skip(REASON_BLANK_LINE)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return skip(REASON_NOT_UTF8, image_checks.error_detail(e))
    try:
        fields = next(csv.reader([text], strict=True))
    except csv.Error as e:
        return skip(REASON_MALFORMED_ROW, image_checks.error_detail(e))
    if len(fields) != source.column_count:
        return skip(REASON_WRONG_COLUMN_COUNT,
                    f"{len(fields)} fields; the header has {source.column_count}")
    usage = fields[source.usage_column].strip()
    split = source.usage_splits.get(usage)
    if split is None:
        return skip(REASON_UNKNOWN_USAGE, f"{usage[:40]!r}; known: "
                                          f"{', '.join(sorted(source.usage_splits))}")
    emotion = fields[source.emotion_column].strip()
    if not (emotion.isascii() and emotion.isdigit() and len(emotion) < 4
            and int(emotion) < len(FER2013_EMOTIONS)):
        return skip(REASON_UNKNOWN_EMOTION, f"{emotion[:20]!r}; ids are 0-"
                                            f"{len(FER2013_EMOTIONS) - 1}", split)
    class_name = FER2013_EMOTIONS[int(emotion)]
    # The name this image would have in a class folder: the same split either way.
    split = split_of(f"{class_name}/{row}.png", split, None,
                     source.layout.validation_fraction)
    if split in source.left_out_splits:
        return skip(REASON_SPLIT_NOT_INCLUDED, f"Usage {usage}", split, class_name)
    label = source.layout.label_map.get(class_name)
    if label is None:
        return skip(image_checks.REASON_CLASS_NOT_INCLUDED, "", split, class_name)
    pixel_text = fields[source.pixels_column]
    if not _PIXEL_TEXT.fullmatch(pixel_text):
        return skip(REASON_NON_NUMERIC,
                    _first(pixel_text.split(), lambda t: not (t.isascii() and t.isdigit())),
                    split, class_name)
    # Digits and blanks only: numpy parses them 5x faster than int() per value; a value past
    # int64 saturates (a test holds it to that), so it is out of range, never wrapped into it.
    values = np.fromstring(pixel_text, dtype=np.int64, sep=" ")
    if values.size != PIXEL_COUNT:
        return skip(REASON_WRONG_PIXEL_COUNT, f"{values.size} values; a 48x48 face has "
                                              f"{PIXEL_COUNT}", split, class_name)
    if values.max() > 255:
        out_of_range = _first(pixel_text.split(), lambda t: len(t) > 3 or int(t) > 255)
        return skip(REASON_PIXEL_OUT_OF_RANGE, f"{out_of_range} (0-255)", split, class_name)
    pixels = values.astype(np.uint8).tobytes()
    example = make_example(encode_png(pixels), label, class_name, ref, IMAGE_FORMAT, IMAGE_SIZE,
                           IMAGE_SIZE, 1)
    return ingest_report.example_record(split, class_name, example.SerializeToString())


def chunk_records(chunk: CsvChunk, source: CsvSource) -> Iterator:
    """The records of the rows of `chunk`, read as a stream."""
    with _open(source.path) as f:
        for row, (line, length) in enumerate(read_lines(f, chunk.start, chunk.end),
                                             start=chunk.first_row):
            yield row_record(line, length, row, source)
