"""The durable InfluxDB writer the rest of the service uses.

Producers call ``write_epochs`` / ``write_events`` / ``write_nudges`` /
``write_daily`` / ``write_status`` / ``write_raw``: the data is encoded at
once (pure encoder; bad input raises ``EncodeError`` in the caller, before
anything is accepted) and queued in memory. One sender thread sends batches
when ``batch_points`` are waiting OR the oldest has waited
``flush_interval_s`` (gzip bodies, one keep-alive connection).

Failures follow ``postmon.store.http.RETRY_POLICY``: bad data (4xx) is not
retried but logged, counted and kept in a dead-letter file; transient
failures (5xx, connection) are retried with exponential backoff and jitter.
If InfluxDB stays unreachable for ``spool_after_s`` (or memory reaches
``max_buffer_points``), the batch and everything queued behind it go to an
fsync'd disk spool, and so does every later batch until the spool has been
replayed, oldest first: data accepted later is never stored before data
accepted earlier, and nothing is lost across an outage or a restart (the
spool is replayed at start-up). Only a full spool drops data (oldest first,
counted, logged as an error).

Each write call may pass ``on_done``: it is called exactly once, from the
sender thread, with the ``Outcome`` once the data is durable (written or
spooled) or was rejected. The MQTT ingest worker acknowledges messages
there.

After epochs are stored the writer recomputes the activity roll-ups for the
hours they fall in (``schema.downsample_statements``).
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from analysis.contracts import DailySummary, Event, EventKind, SampleBatch
from postmon.config import InfluxConfig
from postmon.errors import PostmonError, Reason
from postmon.store import lineproto as lp
from postmon.store import schema
from postmon.store.http import Action, Backend, WriteResult, make_backend
from postmon.store.records import DeviceStatus, NudgeRecord, PlanChange
from postmon.store.spool import Spool, SpoolError

log = logging.getLogger(__name__)

_DEAD_LETTER_MAX_BYTES = 64 << 20  # rotated once beyond this: bad data must not fill the disk


class Outcome(Enum):
    WRITTEN = "written"  # stored in InfluxDB
    SPOOLED = "spooled"  # on disk, will be replayed
    REJECTED = "rejected"  # InfluxDB refused the data itself (see the dead-letter file)
    DROPPED = "dropped"  # could not be kept at all (spool unwritable)


Callback = Callable[[Outcome], None]


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """One batch stored in InfluxDB: acceptance sequence numbers (inclusive),
    points, and whether it came from the spool."""

    first_seq: int
    last_seq: int
    points: int
    replayed: bool


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since start (points unless stated)."""

    accepted: int
    written: int
    rejected: int
    skipped: int  # points with no writable field (never sent)
    spooled: int
    replayed: int
    dropped: int  # lost: spool full (oldest dropped first) or spool unwritable (logged)
    retries: int  # failed attempts that were retried (batches)
    pending: int  # in memory now
    spool_points: int  # on disk now
    spool_bytes: int
    spooling: bool


@dataclass(slots=True)
class _Chunk:
    enc: lp.Encoded
    seq: int
    accepted_at: float
    callbacks: list[Callback] = field(default_factory=list)


class Backoff:
    """Exponential backoff with "equal jitter": half fixed, half random, so
    many writers recovering at once do not retry in lock-step."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.rng = rng or random.Random()
        self.n = 0

    def next(self) -> float:
        cap = min(self.max_s, self.initial_s * (2.0**self.n))
        self.n = min(self.n + 1, 30)
        return cap / 2 + self.rng.uniform(0, cap / 2)

    def reset(self) -> None:
        self.n = 0


class Writer:
    """Durable, batching InfluxDB writer (see the module docstring).

    Parameters
    ----------
    cfg:
        ``[influxdb]`` settings (URL, database, batching, spool, backoff).
    backend:
        Transport; default from ``cfg.backend`` (v1 HTTP or influxdb-client).
    on_batch:
        Optional observer called from the sender thread after each batch is
        stored (for monitoring and tests of ordering).
    """

    def __init__(
        self,
        cfg: InfluxConfig,
        *,
        backend: Backend | None = None,
        name: str = "influx",
        on_batch: Callable[[BatchInfo], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.name = name
        self._backend = backend or make_backend(cfg)
        self._on_batch = on_batch
        self._spool = Spool(
            Path(cfg.spool_dir), max_bytes=int(cfg.spool_max_mb * 1e6), name=f"{name} spool"
        )
        self._backoff = Backoff(cfg.retry_initial_s, cfg.retry_max_s, rng)
        self._cond = threading.Condition()
        self._queue: deque[_Chunk] = deque()
        self._pending = 0
        self._inflight = False
        self._flush_waiters = 0
        self._kicked = False
        self._closing = False
        self._stopped = False
        self._seq = 0
        self._next_replay = 0.0
        self._thread: threading.Thread | None = None
        self._dirty: list[tuple[int, int]] = []
        # roll-ups are recomputed every interval, not after every write (they cost queries)
        self._next_downsample = time.monotonic() + cfg.downsample_interval_s
        self._downsample_ok = cfg.backend == "v1"
        self._schema_ok = False
        self._unreachable_since: float | None = None
        # counters
        self._c = dict.fromkeys(
            (
                "accepted",
                "written",
                "rejected",
                "skipped",
                "spooled",
                "replayed",
                "retries",
                "lost",
            ),
            0,
        )
        self._spool_dropped_base = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Writer:
        """Create the database/retention policies (if configured) and start sending.

        An unreachable InfluxDB is not an error here: data is spooled and the
        schema is created once it answers.
        """
        if self._thread is not None:
            return self
        self._ensure_schema()
        self._thread = threading.Thread(
            target=self._run, name=f"postmon-{self.name}-writer", daemon=True
        )
        self._thread.start()
        if len(self._spool):
            log.info("%s: replaying %d spooled point(s) first", self.name, self._spool.points)
        return self

    def __enter__(self) -> Writer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush (write or spool everything accepted), stop the sender, close files.

        Data still spooled stays on disk and is replayed by the next start.
        """
        if self._stopped:
            return
        self.flush(timeout_s=timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._dirty and not len(self._spool):
            self.downsample_now()
        with self._cond:
            leftover = list(self._queue)
            self._queue.clear()
        if leftover:  # the sender did not finish in time: keep the data on disk
            self._spool_chunks(leftover)
        self._spool.close()
        self._backend.close()
        self._stopped = True
        s = self.stats()
        log.info(
            "%s: closed: written %d, rejected %d, spooled %d (still on disk %d), dropped %d",
            self.name,
            s.written,
            s.rejected,
            s.spooled,
            s.spool_points,
            s.dropped,
        )

    def flush(self, timeout_s: float | None = 30.0, *, include_spool: bool = False) -> bool:
        """Send now everything accepted so far; return when it is written or
        spooled (``include_spool``: also wait until the spool is replayed).

        Returns False if that did not happen within ``timeout_s``.
        """
        if self._thread is None:
            self.start()
        with self._cond:
            self._flush_waiters += 1
            self._cond.notify_all()
            try:

                def done() -> bool:
                    idle = not self._queue and not self._inflight
                    return idle and (not include_spool or not len(self._spool))

                if include_spool:
                    self._next_replay = 0.0  # try right away
                return self._cond.wait_for(done, timeout_s)
            finally:
                self._flush_waiters -= 1

    def kick(self) -> None:
        """Send what is queued now instead of waiting for the batch size or
        interval (without waiting for it, unlike ``flush``)."""
        with self._cond:
            self._kicked = True
            self._cond.notify_all()

    def stats(self) -> WriterStats:
        with self._cond:
            c = dict(self._c)
            pending = self._pending
        return WriterStats(
            accepted=c["accepted"],
            written=c["written"],
            rejected=c["rejected"],
            skipped=c["skipped"],
            spooled=c["spooled"],
            replayed=c["replayed"],
            dropped=self._spool.dropped_points + c["lost"],
            retries=c["retries"],
            pending=pending,
            spool_points=self._spool.points,
            spool_bytes=self._spool.size_bytes,
            spooling=bool(len(self._spool)),
        )

    # --------------------------------------------------------- write calls
    def write_epochs(
        self,
        site: str,
        wearer: str,
        sensor: str,
        epochs: npt.NDArray[Any],
        *,
        on_done: Callback | None = None,
    ) -> int:
        """Queue 1-s epochs (``EPOCH_DTYPE``); returns the number of points accepted."""
        return self.write_encoded([lp.encode_epochs(site, wearer, sensor, epochs)], on_done)

    def write_events(
        self, site: str, wearer: str, events: Sequence[Event], *, on_done: Callback | None = None
    ) -> int:
        """Queue events; events of kind ``nudge`` go to the ``nudge`` measurement."""
        nudges = [NudgeRecord.from_event(e) for e in events if e.kind == EventKind.NUDGE]
        others = [e for e in events if e.kind != EventKind.NUDGE]
        encs = [lp.encode_events(site, wearer, others)]
        if nudges:
            encs.append(lp.encode_nudges(site, wearer, nudges))
        return self.write_encoded(encs, on_done)

    def write_nudges(
        self,
        site: str,
        wearer: str,
        nudges: Sequence[NudgeRecord | Event],
        *,
        on_done: Callback | None = None,
    ) -> int:
        recs = [n if isinstance(n, NudgeRecord) else NudgeRecord.from_event(n) for n in nudges]
        return self.write_encoded([lp.encode_nudges(site, wearer, recs)], on_done)

    def write_daily(
        self,
        site: str,
        wearer: str,
        summaries: Sequence[DailySummary] | DailySummary,
        *,
        tz: str = "UTC",
        on_done: Callback | None = None,
    ) -> int:
        """Queue daily summaries; each is stamped at local midnight of its date in ``tz``."""
        items = [summaries] if isinstance(summaries, DailySummary) else list(summaries)
        return self.write_encoded([lp.encode_daily(site, wearer, items, tz=tz)], on_done)

    def write_status(
        self,
        site: str,
        wearer: str,
        statuses: Sequence[DeviceStatus] | DeviceStatus,
        *,
        on_done: Callback | None = None,
    ) -> int:
        items = [statuses] if isinstance(statuses, DeviceStatus) else list(statuses)
        return self.write_encoded([lp.encode_status(site, wearer, items)], on_done)

    def write_plan_changes(
        self,
        site: str,
        wearer: str,
        changes: Sequence[PlanChange] | PlanChange,
        *,
        on_done: Callback | None = None,
    ) -> int:
        items = [changes] if isinstance(changes, PlanChange) else list(changes)
        return self.write_encoded([lp.encode_plan_changes(site, wearer, items)], on_done)

    def write_raw(
        self, site: str, wearer: str, batch: SampleBatch, *, on_done: Callback | None = None
    ) -> int:
        return self.write_encoded([lp.encode_raw(site, wearer, batch)], on_done)

    def write_encoded(self, encs: Sequence[lp.Encoded], on_done: Callback | None = None) -> int:
        """Queue already-encoded bodies (all or nothing); ``on_done`` fires once
        for all of them, with the worst outcome."""
        encs = [e for e in encs if e.points or e.skipped]
        total = sum(e.points for e in encs)
        skipped = sum(e.skipped for e in encs)
        if self._thread is None:
            self.start()
        callback = _Joined(on_done, sum(1 for e in encs if e.points)) if on_done else None
        with self._cond:
            if self._closing:
                raise PostmonError(
                    f"{self.name}: write after close()",
                    Reason.SERVICE_UNAVAILABLE,
                    hint="create a new Writer",
                )
            warned = False
            while self._pending >= self.cfg.max_buffer_points and not self._closing:
                if not warned:
                    log.warning(
                        "%s: %d points waiting in memory (max_buffer_points): holding producers",
                        self.name,
                        self._pending,
                    )
                    warned = True
                self._cond.wait(1.0)
            self._c["skipped"] += skipped
            now = time.monotonic()
            for e in encs:
                if not e.points:
                    continue
                self._seq += 1
                chunk = _Chunk(e, self._seq, now)
                if callback:
                    chunk.callbacks.append(callback)
                self._queue.append(chunk)
                self._pending += e.points
                self._c["accepted"] += e.points
            self._cond.notify_all()
        if on_done and not total:
            on_done(Outcome.WRITTEN)  # nothing to store (only skipped points): done
        return total

    def downsample_now(self) -> bool:
        """Recompute the activity roll-ups for epochs written so far; True if done."""
        with self._cond:
            ranges = _merge_hours(self._dirty)
            self._dirty = []
        if not ranges or not self._downsample_ok:
            return True
        try:
            for lo, hi in ranges:
                self._backend.query(
                    "; ".join(schema.downsample_statements(self.cfg.database, lo, hi))
                )
        except PostmonError as exc:
            log.warning("%s: activity roll-up failed (%s); will retry", self.name, exc)
            with self._cond:
                self._dirty.extend(ranges)
            return False
        return True

    # --------------------------------------------------------- sender loop
    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # pragma: no cover - a bug; keep the data on disk
            log.exception("%s: sender thread failed; spooling what is queued", self.name)
            with self._cond:
                leftover = list(self._queue)
                self._queue.clear()
                self._pending = 0
            self._spool_chunks(leftover)
            raise

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    send_due = bool(self._queue) and (
                        self._pending >= self.cfg.batch_points
                        or now - self._queue[0].accepted_at >= self.cfg.flush_interval_s
                        or self._flush_waiters > 0
                        or self._kicked
                        or self._closing
                    )
                    replay_due = (
                        bool(len(self._spool)) and now >= self._next_replay and not self._closing
                    )
                    ds_due = (
                        bool(self._dirty) and now >= self._next_downsample and not len(self._spool)
                    )
                    if send_due or replay_due or ds_due:
                        break
                    if self._closing and not self._queue:
                        return
                    waits = [1.0]
                    if self._queue:
                        waits.append(self._queue[0].accepted_at + self.cfg.flush_interval_s - now)
                    if len(self._spool):
                        waits.append(self._next_replay - now)
                    if self._dirty:
                        waits.append(self._next_downsample - now)
                    self._cond.wait(max(0.001, min(waits)))
                spooling = bool(len(self._spool))
                batch = (
                    self._take_all()
                    if (send_due and spooling)
                    else self._take_batch()
                    if send_due
                    else []
                )
                if not self._queue:
                    self._kicked = False
                if batch:
                    self._inflight = True
            try:
                if batch and spooling:
                    self._spool_chunks(batch)
                elif batch:
                    self._send_direct(batch)
            finally:
                with self._cond:
                    self._inflight = False
                    self._cond.notify_all()
            if replay_due:
                self._replay_some()
            if ds_due:
                self._next_downsample = time.monotonic() + self.cfg.downsample_interval_s
                self.downsample_now()

    def _take_batch(self) -> list[_Chunk]:
        """Oldest chunks sharing one (rp, precision), exactly batch_points when
        enough are queued: the last chunk is split at a line boundary (InfluxDB
        pays per request, so full batches are cheaper than chunk-sized ones)."""
        first = self._queue[0]
        key = (first.enc.rp, first.enc.precision)
        out: list[_Chunk] = []
        points = 0
        limit = self.cfg.batch_points
        while self._queue and points < limit:
            c = self._queue[0]
            if (c.enc.rp, c.enc.precision) != key:
                break
            room = limit - points
            if c.enc.points > room:
                head, tail = _split_chunk(c, room)
                self._queue[0] = tail
                out.append(head)
                points += head.enc.points
                break
            out.append(self._queue.popleft())
            points += c.enc.points
        self._pending -= points
        return out

    def _take_all(self) -> list[_Chunk]:
        out = list(self._queue)
        self._queue.clear()
        self._pending = 0
        return out

    # ----------------------------------------------------------- direct path
    def _send_direct(self, batch: list[_Chunk]) -> None:
        started = time.monotonic()
        body = b"".join(c.enc.body for c in batch)
        points = sum(c.enc.points for c in batch)
        rp, precision = batch[0].enc.rp, batch[0].enc.precision
        while True:
            res = self._write(body, rp, precision, points)
            if res.action is Action.DONE:
                self._stored(batch, res, replayed=False)
                return
            if res.action is Action.REJECT:
                self._rejected_batch(batch, body, res)
                return
            if res.action is Action.SPLIT and len(batch) > 1:
                half = len(batch) // 2
                self._send_direct(batch[:half])
                self._send_direct(batch[half:])
                return
            if res.action is Action.SPLIT:
                self._send_lines_split(body, rp, precision, batch)
                return
            # transient failure
            self._note_unreachable(res)
            with self._cond:
                over = self._pending >= self.cfg.max_buffer_points // 2
                closing = self._closing or self._flush_waiters > 0
            waited = time.monotonic() - started
            if closing or over or waited >= self.cfg.spool_after_s:
                with self._cond:
                    behind = self._take_all()
                self._spool_chunks(batch + behind)
                self._next_replay = time.monotonic() + self._backoff.next()
                return
            delay = min(self._backoff.next(), max(0.0, self.cfg.spool_after_s - waited))
            with self._cond:
                self._cond.wait_for(lambda: self._closing or self._flush_waiters > 0, delay)

    def _send_lines_split(self, body: bytes, rp: str, precision: str, batch: list[_Chunk]) -> None:
        """One chunk too large for the server: send it line-halves at a time."""
        lines = body.splitlines(keepends=True)
        if len(lines) <= 1:
            self._rejected_batch(
                batch, body, WriteResult(Action.REJECT, 413, "a single point is too large")
            )
            return
        half = len(lines) // 2
        parts = [b"".join(lines[:half]), b"".join(lines[half:])]
        for part in parts:
            n = part.count(b"\n")
            while True:
                res = self._write(part, rp, precision, n)
                if res.action is not Action.RETRY:
                    break
                self._note_unreachable(res)
                time.sleep(self._backoff.next())
            if res.action is Action.SPLIT:
                fake = _Chunk(lp.Encoded("", rp, precision, part, n), batch[0].seq, 0.0)
                self._send_lines_split(part, rp, precision, [fake])
            elif res.action is Action.REJECT:
                self._dead_letter(part, res)
                with self._cond:
                    self._c["rejected"] += n
            else:
                with self._cond:
                    self._c["written"] += n - res.rejected
                    self._c["rejected"] += res.rejected
        for c in batch:
            for cb in c.callbacks:
                cb(Outcome.WRITTEN)

    # ------------------------------------------------------------ spool path
    def _spool_chunks(self, chunks: list[_Chunk]) -> None:
        """Append chunks to the spool in order, one record per run of equal (rp, precision)."""
        i = 0
        while i < len(chunks):
            j = i
            key = (chunks[i].enc.rp, chunks[i].enc.precision)
            while j < len(chunks) and (chunks[j].enc.rp, chunks[j].enc.precision) == key:
                j += 1
            run = chunks[i:j]
            points = sum(c.enc.points for c in run)
            epoch_ts = [
                (c.enc.t_min_ns, c.enc.t_max_ns) for c in run if c.enc.measurement == "epoch"
            ]
            meta = {
                "rp": key[0],
                "precision": key[1],
                "seq": [run[0].seq, run[-1].seq],
                "epochs": [min(t[0] for t in epoch_ts), max(t[1] for t in epoch_ts)]
                if epoch_ts
                else None,
                "gz": 1,
            }
            body = gzip.compress(b"".join(c.enc.body for c in run), compresslevel=1, mtime=0)
            try:
                self._spool.append(meta, body, points)
                outcome = Outcome.SPOOLED
                with self._cond:
                    self._c["spooled"] += points
            except SpoolError as exc:
                with self._cond:
                    self._c["lost"] += points
                log.error("%s: %s: %d point(s) lost", self.name, exc, points)
                outcome = Outcome.DROPPED
            for c in run:
                for cb in c.callbacks:
                    cb(outcome)
            i = j
        log.debug("%s: spooled %d chunk(s)", self.name, len(chunks))

    def _replay_some(self, max_records: int = 50) -> None:
        """Send the oldest spooled records while InfluxDB accepts them."""
        for _ in range(max_records):
            rec = self._spool.peek()
            if rec is None:
                break
            body = gzip.decompress(rec.body) if rec.meta.get("gz") else rec.body
            rp, precision = str(rec.meta["rp"]), str(rec.meta["precision"])
            res = self._write(body, rp, precision, rec.points)
            if res.action is Action.RETRY:
                self._note_unreachable(res)
                self._next_replay = time.monotonic() + self._backoff.next()
                return
            seq = rec.meta.get("seq") or [0, 0]
            if res.action is Action.SPLIT:
                fake = _Chunk(lp.Encoded("", rp, precision, body, rec.points), int(seq[0]), 0.0)
                self._send_lines_split(body, rp, precision, [fake])
            elif res.action is Action.REJECT:
                self._dead_letter(body, res)
                with self._cond:
                    self._c["rejected"] += rec.points
            else:
                self._note_reachable()
                stored = rec.points - res.rejected
                with self._cond:
                    self._c["written"] += stored
                    self._c["replayed"] += stored
                    self._c["rejected"] += res.rejected
                    if rec.meta.get("epochs"):
                        lo, hi = rec.meta["epochs"]
                        self._dirty.append((int(lo), int(hi)))
                if self._on_batch:
                    self._on_batch(BatchInfo(int(seq[0]), int(seq[1]), stored, replayed=True))
            self._spool.pop()
        if not len(self._spool):
            log.info("%s: spool replayed; writing directly again", self.name)
            with self._cond:
                self._cond.notify_all()

    # -------------------------------------------------------------- helpers
    def _write(self, body: bytes, rp: str, precision: str, points: int) -> WriteResult:
        res = self._backend.write(body, rp=rp, precision=precision, points=points)
        if res.action is Action.RETRY:
            with self._cond:
                self._c["retries"] += 1
            if res.status == 404:
                self._ensure_schema()
        elif not self._schema_ok and res.action is Action.DONE:
            self._ensure_schema()
        return res

    def _stored(self, batch: list[_Chunk], res: WriteResult, *, replayed: bool) -> None:
        self._note_reachable()
        points = sum(c.enc.points for c in batch)
        with self._cond:
            self._c["written"] += points - res.rejected
            self._c["rejected"] += res.rejected
            for c in batch:
                if c.enc.measurement == "epoch":
                    self._dirty.append((c.enc.t_min_ns, c.enc.t_max_ns))
        if res.rejected:
            log.error(
                "%s: InfluxDB refused %d of %d point(s): %s",
                self.name,
                res.rejected,
                points,
                res.message,
            )
            self._dead_letter(b"".join(c.enc.body for c in batch), res)
        if self._on_batch:
            self._on_batch(BatchInfo(batch[0].seq, batch[-1].seq, points - res.rejected, replayed))
        # a partial write does not say which lines were refused: the whole
        # body went to the dead-letter file above, and only an all-refused
        # batch reports REJECTED
        outcome = Outcome.REJECTED if res.rejected >= points else Outcome.WRITTEN
        for c in batch:
            for cb in c.callbacks:
                cb(outcome)

    def _rejected_batch(self, batch: list[_Chunk], body: bytes, res: WriteResult) -> None:
        points = sum(c.enc.points for c in batch)
        with self._cond:
            self._c["rejected"] += points
        log.error(
            "%s: InfluxDB rejected %d point(s) (HTTP %s: %s); not retried, kept in %s",
            self.name,
            points,
            res.status,
            res.message[:300],
            self._dead_letter_path(),
        )
        self._dead_letter(body, res)
        for c in batch:
            for cb in c.callbacks:
                cb(Outcome.REJECTED)

    def _dead_letter_path(self) -> Path:
        return Path(self.cfg.spool_dir) / "rejected" / "rejected.lp"

    def _dead_letter(self, body: bytes, res: WriteResult) -> None:
        path = self._dead_letter_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size > _DEAD_LETTER_MAX_BYTES:
                path.replace(path.with_suffix(".lp.1"))
            with path.open("ab") as fh:
                note = res.message.replace("\n", " ")[:500]
                fh.write(f"# HTTP {res.status}: {note}\n".encode())
                fh.write(body if body.endswith(b"\n") else body + b"\n")
        except OSError as exc:
            log.error("%s: cannot write the dead-letter file %s: %s", self.name, path, exc)

    def _note_unreachable(self, res: WriteResult) -> None:
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            if res.status in (401, 403):
                # a configuration problem, not an outage: say which one and how to fix it
                from postmon.security.influx import explain_http_error

                err = explain_http_error(
                    res.status,
                    res.message,
                    url=self.cfg.url,
                    username=self.cfg.username,
                    action="writes",
                )
                log.error(
                    "%s: HTTP %d: %s; data is kept (retried with backoff, spooled to %s "
                    "after %.0f s)",
                    self.name,
                    res.status,
                    err,
                    self.cfg.spool_dir,
                    self.cfg.spool_after_s,
                )
                return
            log.warning(
                "%s: InfluxDB at %s not accepting writes (HTTP %s: %s); retrying with backoff, "
                "spooling to %s after %.0f s",
                self.name,
                self.cfg.url,
                res.status,
                res.message[:200],
                self.cfg.spool_dir,
                self.cfg.spool_after_s,
            )

    def _note_reachable(self) -> None:
        if self._unreachable_since is not None:
            log.info(
                "%s: InfluxDB accepting writes again after %.1f s",
                self.name,
                time.monotonic() - self._unreachable_since,
            )
            self._unreachable_since = None
        self._backoff.reset()

    def _ensure_schema(self) -> None:
        if not self.cfg.create_schema:
            self._schema_ok = True
            return
        try:
            self._backend.ensure_database()
            self._schema_ok = True
        except PostmonError as exc:
            log.warning("%s: cannot create database/retention policies yet: %s", self.name, exc)


class _Joined:
    """Calls the user's callback once after ``n`` parts finished, with the worst outcome."""

    _RANK: ClassVar[dict[Outcome, int]] = {
        Outcome.WRITTEN: 0,
        Outcome.SPOOLED: 1,
        Outcome.REJECTED: 2,
        Outcome.DROPPED: 3,
    }

    def __init__(self, cb: Callback, n: int) -> None:
        self.cb = cb
        self.n = n
        self.worst = Outcome.WRITTEN
        self.lock = threading.Lock()

    def __call__(self, outcome: Outcome) -> None:
        with self.lock:
            if self._RANK[outcome] > self._RANK[self.worst]:
                self.worst = outcome
            self.n -= 1
            fire = self.n == 0
        if fire:
            self.cb(self.worst)


def _split_chunk(c: _Chunk, n_lines: int) -> tuple[_Chunk, _Chunk]:
    """The first ``n_lines`` points of a chunk and the rest; its callbacks
    fire once both parts are done."""
    nl = np.flatnonzero(np.frombuffer(c.enc.body, dtype=np.uint8) == 0x0A)
    cut = int(nl[n_lines - 1]) + 1
    e = c.enc
    head = dataclasses.replace(e, body=e.body[:cut], points=n_lines, skipped=0)
    tail = dataclasses.replace(e, body=e.body[cut:], points=e.points - n_lines)
    callbacks: list[Callback] = [_Joined(cb, 2) for cb in c.callbacks]
    return (
        _Chunk(head, c.seq, c.accepted_at, list(callbacks)),
        _Chunk(tail, c.seq, c.accepted_at, list(callbacks)),
    )


def _merge_hours(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    hour = 3_600 * 1_000_000_000
    spans = sorted(((lo // hour) * hour, (hi // hour + 1) * hour) for lo, hi in ranges)
    out: list[tuple[int, int]] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
