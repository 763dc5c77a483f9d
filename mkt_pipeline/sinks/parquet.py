"""The embedded Parquet dataset (docs/data-model.md#parquet-dataset): one folder per table and hour, parts published
atomically."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mkt_pipeline.core.tables import TIMESTAMP_NS, TableBatch, TableSchema
from mkt_pipeline.core.timeline import NS_PER_US, SECONDS_PER_HOUR, US_PER_S, Window, us_to_datetime
from mkt_pipeline.sinks.base import Sink, TableNaming, WindowWriter, WriteStats
from mkt_pipeline.sinks.ledger import LEDGER_BASE, ChunkKey, LedgerEntry, Manifest

_HOUR_US = SECONDS_PER_HOUR * US_PER_S

_PART_RE = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
# temporary files of a writer: a pending part, or a trimmed part about to replace its original
_TMP_RE = re.compile(r"^\.(pending-[0-9a-f]+|part-\d+-\d+\.parquet\.[0-9a-f]+)\.tmp$")


# a full disk or quota: the run stops with one line naming the path and table (anything else stays as raised)
_FULL = (errno.ENOSPC, errno.EDQUOT)


class ParquetSinkError(RuntimeError):
    """A write to the dataset failed (a full disk): one line naming the path, the table and the cause."""


@contextmanager
def _disk_full_errors(root: Path, where: Callable[[], tuple[str, Path | None]]):
    """``OSError`` ENOSPC/EDQUOT as a ``ParquetSinkError`` naming ``where()``: (table, path being written)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        table, path = where()
        cause = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        raise ParquetSinkError(
            f"Parquet dataset at {root} (table {table}, writing {path or root}): {cause}; "
            "the unfinished chunk was discarded: free space or give another --parquet_dir / MKT_PARQUET_DIR, "
            "then re-run the same command"
        ) from None


def hour_dir_name(hour_start_us: int) -> str:
    return "hour=" + us_to_datetime(hour_start_us).strftime("%Y-%m-%dT%H")


def _row_us(schema: TableSchema, timestamps: np.ndarray) -> np.ndarray:
    return timestamps // NS_PER_US if schema.timestamp_kind == TIMESTAMP_NS else timestamps


NAME_MAX = 255  # bytes of one file or folder name on Linux file systems
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")


def dataset_root_problem(root: str | os.PathLike | None) -> str | None:
    """Why ``root`` cannot hold the dataset (None when it can), checked without creating anything."""
    if root is None or not str(root).strip():
        return "must not be empty (the dataset's folder, e.g. ./data)"
    path = Path(root).expanduser()
    too_long = next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX), None)
    if too_long is not None:
        return f"has a name longer than {NAME_MAX} bytes ({too_long[:20]}...)"
    pseudo = next(
        (fs for fs in PSEUDO_FILESYSTEMS if path.absolute() == Path(fs) or Path(fs) in path.absolute().parents), None
    )
    if pseudo is not None:
        return f"{root} lies in {pseudo}, a kernel file system that cannot hold files"
    if path.exists():
        if not path.is_dir():
            return f"{root} exists and is not a folder"
        return None if os.access(path, os.W_OK | os.X_OK) else f"{root} is not writable"
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {root}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {root}: {parent} is not writable"
    return None


class ParquetSink(Sink):
    """``{root}/{table}/hour=YYYY-MM-DDTHH/part-{start_us}-{end_us}.parquet``.

    Each part file is named by the slice of time it covers. Writing a window replaces whatever the
    dataset held for that time (parts inside it are removed, parts straddling it are trimmed), so
    re-writing is idempotent and windows that meet simply add up.
    """

    commits_are_files = True

    @property
    def location(self) -> str:
        return f"parquet {self.root.absolute()}"

    def __init__(self, root: str | os.PathLike, naming: TableNaming | None = None, compression: str = "zstd"):
        if not str(root).strip():  # Path("") is the working directory: never write there by accident
            raise ValueError("the Parquet dataset root must not be empty")
        self.root = Path(root).expanduser()
        self.naming = naming or TableNaming()
        self.compression = compression
        self.stats = WriteStats()

    def table_dir(self, schema: TableSchema) -> Path:
        return self.root / self.naming.name(schema)

    @property
    def manifest(self) -> Manifest:
        """The ledger beside the dataset (``_`` first, so dataset readers skip it as they skip ``.lock``)."""
        return Manifest(self.root / f"_{self.naming.name(LEDGER_BASE)}.jsonl")

    def prepare(self, schemas: Sequence[TableSchema]) -> None:
        for schema in schemas:
            with _disk_full_errors(self.root, lambda schema=schema: (self.naming.name(schema), self.table_dir(schema))):
                self.table_dir(schema).mkdir(parents=True, exist_ok=True)
        self.remove_stale_temp_files(schemas)

    def remove_stale_temp_files(self, schemas: Sequence[TableSchema]) -> int:
        """Delete temporary files no live writer holds (left by a crash or a failed publish).

        Every writer keeps an exclusive lock on its temporary file until it is published or
        removed, so a file whose lock can be taken belongs to nobody, while the files of
        concurrent writers (other workers, other runs) are left alone.
        """
        removed = 0
        for schema in schemas:
            base = self.table_dir(schema)
            if not base.exists():
                continue
            for hour in base.iterdir():
                if not (hour.is_dir() and hour.name.startswith("hour=")):
                    continue
                for f in hour.iterdir():
                    if _TMP_RE.match(f.name) and _unlink_if_unlocked(f):
                        removed += 1
        return removed

    def ledger_entries(self, key: ChunkKey, window: Window | None = None) -> list[LedgerEntry]:
        return self.manifest.entries(key, window)

    def record(self, key: ChunkKey, entry: LedgerEntry) -> None:
        manifest = self.manifest
        with _disk_full_errors(self.root, lambda: (self.naming.name(LEDGER_BASE), manifest.path)):
            manifest.append(key, entry)

    @contextmanager
    def window(self, window: Window) -> Iterator[_ParquetWindowWriter]:
        writer = _ParquetWindowWriter(self, window)
        try:
            with _disk_full_errors(self.root, lambda: writer.current):
                yield writer
                writer.commit()
        except BaseException:
            # a failure while publishing leaves no temporary file; the parts already published are
            # replaced when the unrecorded chunk is written again
            writer.abort()
            raise
        self.stats.add(writer.stats)

    def parts(self, schema: TableSchema) -> list[tuple[int, int, Path]]:
        """Every part of a table as (start_us, end_us, path), in time order."""
        out = []
        base = self.table_dir(schema)
        if base.exists():
            for hour in base.iterdir():
                if hour.is_dir() and hour.name.startswith("hour="):
                    for f in hour.iterdir():
                        m = _PART_RE.match(f.name)
                        if m:
                            out.append((int(m.group(1)), int(m.group(2)), f))
        return sorted(out)

    def read(self, schema: TableSchema, window: Window | None = None) -> pa.Table:
        """All stored rows of a table (optionally only those in ``window``), in time order."""
        tables = []
        for a, b, path in self.parts(schema):
            if window is None or (a < window.end_us and b > window.start_us):
                tables.append(pq.read_table(path, schema=schema.arrow_schema()))
        if not tables:
            return schema.arrow_schema().empty_table()
        table = pa.concat_tables(tables)
        if window is not None:
            ts = _row_us(schema, table.column(schema.timestamp).cast(pa.int64()).to_numpy())
            table = table.filter(pa.array((ts >= window.start_us) & (ts < window.end_us)))
        return table

    def latest_timestamp_us(self, schema: TableSchema) -> int | None:
        for _a, _b, path in reversed(self.parts(schema)):
            col = pq.read_table(path, columns=[schema.timestamp]).column(0).cast(pa.int64()).to_numpy()
            if len(col):
                return int(_row_us(schema, col).max())
        return None

    def resume_after_us(self, schema: TableSchema) -> int | None:
        """End of the latest window written for a table (even if it held no rows)."""
        parts = self.parts(schema)
        return max(b for _, b, _ in parts) if parts else None

    # -- replacement of what a new part covers --------------------------------------------
    def _clear(self, schema: TableSchema, hour_dir: Path, a: int, b: int) -> None:
        if not hour_dir.exists():
            return
        for f in list(hour_dir.iterdir()):
            m = _PART_RE.match(f.name)
            if not m:
                continue
            pa_, pb = int(m.group(1)), int(m.group(2))
            if pb <= a or pa_ >= b:
                continue
            if a <= pa_ and pb <= b:
                f.unlink()
                continue
            # straddling part: keep only its rows outside [a, b), under the names of what remains
            table = pq.read_table(f, schema=schema.arrow_schema())
            ts = _row_us(schema, table.column(schema.timestamp).cast(pa.int64()).to_numpy())
            for lo, hi in ((pa_, a), (b, pb)):
                if lo < hi:
                    keep = table.filter(pa.array((ts >= lo) & (ts < hi)))
                    _write_atomic(keep, hour_dir / f"part-{lo}-{hi}.parquet", self.compression)
            f.unlink()


@contextmanager
def _hour_lock(hour_dir: Path) -> Iterator[None]:
    """An exclusive advisory lock on one hour directory (processes and threads alike)."""
    with open(hour_dir / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _TempFile:
    """A temporary file held under an exclusive lock until it is published or removed."""

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def publish(self, final: Path) -> None:
        os.replace(self.path, final)
        self.release()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _pending(hour_dir: Path) -> _TempFile:
    return _TempFile(hour_dir / f".pending-{uuid.uuid4().hex}.tmp")


def _unlink_if_unlocked(path: Path) -> bool:
    """Remove ``path`` unless a writer holds its lock; True when removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True


def _write_atomic(table: pa.Table, path: Path, compression: str) -> None:
    tmp = _TempFile(path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp"))
    try:
        pq.write_table(table, tmp.path, compression=compression)
        tmp.publish(path)
    except BaseException:
        tmp.discard()
        raise


class _ParquetWindowWriter(WindowWriter):
    """Streams batches into one temporary file per (table, hour); publishes them on commit."""

    def __init__(self, sink: ParquetSink, window: Window):
        self.sink = sink
        self.window = window
        self.stats = WriteStats()
        self._open: dict[tuple[str, int], tuple[pq.ParquetWriter, _TempFile, TableSchema]] = {}
        self._schemas: dict[str, TableSchema] = {}
        self.current: tuple[str, Path | None] = ("-", None)  # (table, file) being written, for errors

    def write(self, batch: TableBatch) -> None:
        schema = batch.schema
        name = self.sink.naming.name(schema)
        self._schemas[name] = schema
        if not len(batch):
            return
        ts = _row_us(schema, batch.timestamps)
        if ts.min() < self.window.start_us or ts.max() >= self.window.end_us:
            raise ValueError(f"{name}: batch rows fall outside the window {self.window}")
        hours = ts // _HOUR_US
        cuts = np.flatnonzero(np.diff(hours)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ts)]):
            part = batch if (lo == 0 and hi == len(ts)) else batch.take(np.arange(lo, hi))
            table = part.to_arrow()
            key = (name, int(hours[lo]))
            hour_dir = self.sink.table_dir(schema) / hour_dir_name(key[1] * _HOUR_US)
            self.current = (name, hour_dir)
            if key not in self._open:
                hour_dir.mkdir(parents=True, exist_ok=True)
                tmp = _pending(hour_dir)
                self._open[key] = (
                    pq.ParquetWriter(tmp.path, schema.arrow_schema(), compression=self.sink.compression),
                    tmp,
                    schema,
                )
            self._open[key][0].write_table(table)
            self.stats.rows[name] += table.num_rows
            self.stats.bytes[name] += table.nbytes

    def commit(self) -> None:
        for name, schema in self._schemas.items():
            for hour_window in self.window.hours():
                hour = hour_window.start_us // _HOUR_US
                hour_dir = self.sink.table_dir(schema) / hour_dir_name(hour * _HOUR_US)
                final = hour_dir / f"part-{hour_window.start_us}-{hour_window.end_us}.parquet"
                self.current = (name, hour_dir)
                opened = self._open.get((name, hour))
                if opened is None:
                    # no rows for this hour: an empty part still records that the time was written
                    hour_dir.mkdir(parents=True, exist_ok=True)
                    tmp = _pending(hour_dir)
                    self._open[(name, hour)] = (None, tmp, schema)  # so a failure below removes it
                    pq.write_table(schema.arrow_schema().empty_table(), tmp.path, compression=self.sink.compression)
                else:
                    opened[0].close()
                    tmp = opened[1]
                    self._open[(name, hour)] = (None, tmp, schema)
                # writers of other windows may trim the same old parts: one publisher per hour at a time
                with _hour_lock(hour_dir):
                    self.sink._clear(schema, hour_dir, hour_window.start_us, hour_window.end_us)
                    tmp.publish(final)
                del self._open[(name, hour)]

    def abort(self) -> None:
        for writer, tmp, _ in self._open.values():
            try:
                if writer is not None:
                    writer.close()
            except Exception:  # the temporary file goes regardless
                pass
            finally:
                tmp.discard()
        self._open.clear()
