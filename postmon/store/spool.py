"""A bounded, append-only, fsync'd disk queue (FIFO) of opaque records.

Used by the InfluxDB writer (while InfluxDB is unreachable) and by the MQTT
publisher (while the broker is): what was accepted survives an outage and a
restart, and is replayed oldest first.

Layout: ``<dir>/<12-digit number>.seg`` segment files, each a run of records

    b"PMSP" | u32 meta_len | u32 body_len | u32 points | u32 crc32 | meta | body

(little-endian; ``meta`` is UTF-8 JSON; the CRC covers meta and body), plus
``<dir>/cursor`` naming the first record not yet consumed. A record is
appended with one ``write`` and ``fsync``; consuming one rewrites the cursor
atomically (a crash between a send and the cursor update replays that record
once more: harmless, since InfluxDB writes and MQTT QoS 1 are idempotent).
A torn record at the end of a segment (a crash mid-append) is cut off on
open.

When appending would exceed ``max_bytes``, whole segments are dropped oldest
first; the loss is counted (``dropped_points``) and logged as an error
naming what was lost and how to avoid it. The disk filling up before that
bound (``ENOSPC``, a quota) follows the same policy: the partial record is
cut off, the oldest segment is dropped (counted, logged) and the append is
tried again; only when nothing is left to drop does ``append`` raise
``SpoolError``. Segments are small (at most 1 MiB, and at most a quarter of
the disk space free at open) so that dropping loses little at a time.
It never fails silently.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postmon.errors import PostmonError, Reason

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sIIII")
_MAGIC = b"PMSP"


class SpoolError(PostmonError):
    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, Reason.STORAGE_FULL, hint=hint)


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    meta: dict[str, Any]
    body: bytes
    points: int


@dataclass(slots=True)
class _Entry:
    segment: int
    offset: int
    size: int  # whole record incl. header
    points: int


class Spool:
    """FIFO of records on disk. Thread-safe; one process per directory.

    Parameters
    ----------
    directory:
        Created if missing. Must not be shared by two live processes.
    max_bytes:
        Bound on the total size of the segment files.
    segment_bytes:
        Segments roll at this size: the granularity of dropping when full.
    """

    def __init__(
        self, directory: Path, *, max_bytes: int, segment_bytes: int | None = None, name: str = ""
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes={max_bytes} must be > 0")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name or str(self.dir)
        self.max_bytes = max_bytes
        if segment_bytes is None:
            # 1/16 of the bound, <= 1 MiB: a full spool drops a small part at a time;
            # <= 1/4 of the free disk: a disk that fills up first does too
            free = shutil.disk_usage(self.dir).free
            segment_bytes = max(4096, min(1 << 20, max_bytes // 16, free // 4))
        self.segment_bytes = segment_bytes
        self._lock = threading.RLock()
        self._entries: deque[_Entry] = deque()
        self._seg_sizes: dict[int, int] = {}
        self._write_seg: int = 0
        self._fh: Any = None
        self.dropped_points = 0
        self.dropped_records = 0
        self.appended_points = 0
        self._open()

    # ------------------------------------------------------------- layout
    def _seg_path(self, seg: int) -> Path:
        return self.dir / f"{seg:012d}.seg"

    def _cursor(self) -> tuple[int, int]:
        try:
            seg, off = (self.dir / "cursor").read_text().split()
            return int(seg), int(off)
        except (OSError, ValueError):
            return (0, 0)

    def _save_cursor(self) -> None:
        if self._entries:
            seg, off = self._entries[0].segment, self._entries[0].offset
        else:
            seg, off = self._write_seg, self._seg_sizes.get(self._write_seg, 0)
        tmp = self.dir / "cursor.tmp"
        try:
            tmp.write_text(f"{seg} {off}\n")
            os.replace(tmp, self.dir / "cursor")
        except OSError as exc:
            # a stale cursor only replays consumed records once more after a
            # restart (idempotent downstream); never worth stopping the sender
            log.error("%s: cannot update %s/cursor: %s", self.name, self.dir, exc)

    def _open(self) -> None:
        cur_seg, cur_off = self._cursor()
        segs = sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())
        for seg in segs:
            path = self._seg_path(seg)
            if seg < cur_seg:
                path.unlink(missing_ok=True)
                continue
            start = cur_off if seg == cur_seg else 0
            size = self._scan(seg, start)
            self._seg_sizes[seg] = size
        self._write_seg = max(self._seg_sizes, default=cur_seg)
        if self._seg_sizes.get(self._write_seg, 0) >= self.segment_bytes:
            self._write_seg += 1
        if self._entries:
            log.warning(
                "%s: %d record(s), %d point(s) from an earlier run are waiting to be replayed",
                self.name,
                len(self._entries),
                self.points,
            )

    def _scan(self, seg: int, start: int) -> int:
        """Index the records of one segment from ``start``; cut a torn tail."""
        path = self._seg_path(seg)
        data = path.read_bytes()
        off = start
        while off < len(data):
            ok = off + _HEADER.size <= len(data)
            if ok:
                magic, mlen, blen, points, crc = _HEADER.unpack_from(data, off)
                end = off + _HEADER.size + mlen + blen
                ok = magic == _MAGIC and end <= len(data)
                ok = ok and zlib.crc32(data[off + _HEADER.size : end]) == crc
            if not ok:
                log.error(
                    "%s: %s is damaged at byte %d (an interrupted write?): cutting %d byte(s)",
                    self.name,
                    path.name,
                    off,
                    len(data) - off,
                )
                with path.open("r+b") as fh:
                    fh.truncate(off)
                    os.fsync(fh.fileno())
                return off
            self._entries.append(_Entry(seg, off, end - off, points))
            off = end
        return len(data)

    # -------------------------------------------------------------- public
    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(self._seg_sizes.values())

    @property
    def points(self) -> int:
        with self._lock:
            return sum(e.points for e in self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def append(self, meta: dict[str, Any], body: bytes, points: int) -> None:
        """Append one record and fsync it: it survives a crash from now on."""
        mbytes = json.dumps(meta, separators=(",", ":")).encode()
        payload = mbytes + body
        rec = _HEADER.pack(_MAGIC, len(mbytes), len(body), points, zlib.crc32(payload)) + payload
        with self._lock:
            if len(rec) > self.max_bytes:
                self._count_drop(points, 1, f"a single record of {len(rec)} bytes")
                return
            if self._seg_sizes.get(self._write_seg, 0) + len(rec) > self.segment_bytes and (
                self._seg_sizes.get(self._write_seg, 0) > 0
            ):
                self._roll()
            while self.size_bytes + len(rec) > self.max_bytes:
                self._drop_oldest_segment()
            while True:
                try:
                    off = self._write_record(rec)
                    break
                except OSError as exc:
                    self._cut_failed_write()
                    disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
                    if disk_full and self._entries:
                        # the disk filled up before max_bytes: same policy, oldest first
                        self._drop_oldest_segment(why=f"disk full ({exc.strerror})")
                        continue
                    raise SpoolError(
                        f"{self.name}: cannot write to the spool in {self.dir}: {exc}"
                        + (" (nothing older left to drop)" if disk_full else ""),
                        hint="free disk space or point spool_dir at a writable disk "
                        "with room for spool_max_mb",
                    ) from exc
            self._seg_sizes[self._write_seg] = off + len(rec)
            self._entries.append(_Entry(self._write_seg, off, len(rec), points))
            self.appended_points += points

    def peek(self) -> SpoolRecord | None:
        """The oldest record, or None. It stays until ``pop()``."""
        with self._lock:
            if not self._entries:
                return None
            e = self._entries[0]
            if self._fh is not None and e.segment == self._write_seg:
                self._fh.flush()
            with self._seg_path(e.segment).open("rb") as fh:
                fh.seek(e.offset)
                data = fh.read(e.size)
            _, mlen, _, points, _ = _HEADER.unpack_from(data, 0)
            meta = json.loads(data[_HEADER.size : _HEADER.size + mlen])
            return SpoolRecord(meta, data[_HEADER.size + mlen :], points)

    def pop(self) -> None:
        """Mark the oldest record consumed (persisted before returning)."""
        with self._lock:
            if not self._entries:
                return
            e = self._entries.popleft()
            if e.segment != self._write_seg and (
                not self._entries or self._entries[0].segment != e.segment
            ):
                self._seg_path(e.segment).unlink(missing_ok=True)
                self._seg_sizes.pop(e.segment, None)
            if not self._entries:
                # everything consumed: start afresh so the files do not grow forever
                self._reset()
            self._save_cursor()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    # ------------------------------------------------------------ internal
    def _write_record(self, rec: bytes) -> int:
        """Append ``rec`` to the write segment and fsync; its offset. Raises OSError."""
        if self._fh is None:
            # unbuffered: a failed write leaves nothing in a buffer to be retried on close
            self._fh = self._seg_path(self._write_seg).open("ab", buffering=0)
        off = self._seg_sizes.get(self._write_seg, 0)
        view = memoryview(rec)
        while view:
            n = self._fh.write(view)
            view = view[n:]
        os.fsync(self._fh.fileno())
        return off

    def _cut_failed_write(self) -> None:
        """After a failed append: close the segment and cut what part of the record landed."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        path = self._seg_path(self._write_seg)
        with contextlib.suppress(OSError):
            if path.exists():
                os.truncate(path, self._seg_sizes.get(self._write_seg, 0))

    def _reset(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        for seg in list(self._seg_sizes):
            self._seg_path(seg).unlink(missing_ok=True)
        self._seg_sizes.clear()
        self._write_seg += 1

    def _roll(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._write_seg += 1

    def _drop_oldest_segment(self, why: str = "") -> None:
        oldest = min(self._seg_sizes)
        if oldest == self._write_seg:
            self._roll()
        points = records = 0
        while self._entries and self._entries[0].segment == oldest:
            points += self._entries.popleft().points
            records += 1
        self._seg_path(oldest).unlink(missing_ok=True)
        self._seg_sizes.pop(oldest, None)
        self._save_cursor()
        self._count_drop(points, records, f"the oldest segment ({oldest:012d}.seg)", why)

    def _count_drop(self, points: int, records: int, what: str, why: str = "") -> None:
        self.dropped_points += points
        self.dropped_records += records
        log.error(
            "%s: SPOOL FULL (%s in %s): dropped %s = %d record(s), %d point(s); "
            "%d point(s) dropped so far. The destination has been unreachable too long: "
            "restore it, %s.",
            self.name,
            why or f"limit {self.max_bytes / 1e6:.1f} MB",
            self.dir,
            what,
            records,
            points,
            self.dropped_points,
            "or free disk space for the spool" if why else "or raise the spool limit",
        )
