"""Typed reads for reports and dashboards (InfluxQL over the v1 ``/query`` API).

Every method takes a wearer pseudonym and a half-open UTC time range
``[start_ns, end_ns)`` and returns typed results: numpy structured arrays for
bulk data (``EPOCH_DTYPE``), frozen dataclasses for records. Queries are
built from ``postmon.store.schema`` names only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.contracts import EPOCH_DTYPE, DailySummary, Event
from postmon.config import InfluxConfig
from postmon.store import schema
from postmon.store.http import Backend, make_backend
from postmon.store.records import DeviceStatus, NudgeRecord, PlanChange
from postmon.store.schema import Measurement, quote_ident


def quote_literal(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a query result: name, tags, column names, rows."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]


class Reader:
    """Read what the Writer stored.

    Parameters
    ----------
    cfg:
        ``[influxdb]`` settings (URL, database, credentials).
    backend:
        Transport (default from ``cfg``); anything with ``query``.
    """

    def __init__(self, cfg: InfluxConfig, *, backend: Backend | None = None) -> None:
        self.cfg = cfg
        self._backend = backend or make_backend(cfg)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- generic
    def query(self, q: str) -> list[Series]:
        """Run InfluxQL (times as integer ns); all series of all statements."""
        out: list[Series] = []
        params = {"chunked": "true", "chunk_size": "20000"}
        for res in self._backend.query(q, params=params):
            for s in res.get("series", []):
                out.append(Series(s["name"], s.get("tags", {}), s["columns"], s.get("values", [])))
        return out

    def _select(
        self,
        meas: Measurement,
        columns: Sequence[str],
        wearer: str,
        start_ns: int,
        end_ns: int,
        *,
        site: str | None = None,
        extra_where: str = "",
        group_tags: Sequence[str] = (),
    ) -> list[Series]:
        where = [f"{quote_ident('wearer')} = {quote_literal(wearer)}"]
        if site is not None:
            where.append(f"{quote_ident('site')} = {quote_literal(site)}")
        where.append(f"time >= {int(start_ns)} AND time < {int(end_ns)}")
        if extra_where:
            where.append(extra_where)
        cols = ", ".join(quote_ident(c) for c in columns)
        q = f"SELECT {cols} FROM {quote_ident(self.cfg.database)}.{meas.qualified()} "
        q += "WHERE " + " AND ".join(where)
        if group_tags:
            q += " GROUP BY " + ", ".join(quote_ident(t) for t in group_tags)
        return self.query(q)

    def _records(
        self,
        meas: Measurement,
        wearer: str,
        start_ns: int,
        end_ns: int,
        *,
        site: str | None = None,
        columns: Sequence[str] | None = None,
        extra_where: str = "",
        group_tags: Sequence[str] = (),
    ) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
        """Each stored row as ``(group tags, {column: value})``; all fields by default."""
        cols = list(meas.fields) if columns is None else list(columns)
        for s in self._select(
            meas,
            cols,
            wearer,
            start_ns,
            end_ns,
            site=site,
            extra_where=extra_where,
            group_tags=group_tags,
        ):
            for r in s.values:
                yield s.tags, dict(zip(s.columns, r, strict=True))

    # --------------------------------------------------------------- epochs
    def epochs(
        self,
        wearer: str,
        start_ns: int,
        end_ns: int,
        *,
        site: str | None = None,
        sensor: str | None = None,
    ) -> npt.NDArray[np.void]:
        """(N,) ``EPOCH_DTYPE`` array sorted by time; missing angles are NaN."""
        cols = [
            "activity_code",
            "inclination_deg",
            "flexion_deg",
            "lateral_deg",
            "static",
            "intensity_g",
        ]
        extra = f"{quote_ident('sensor')} = {quote_literal(sensor)}" if sensor is not None else ""
        rows: list[list[Any]] = []
        for s in self._select(
            schema.EPOCH, cols, wearer, start_ns, end_ns, site=site, extra_where=extra
        ):
            rows.extend(s.values)
        out = np.zeros(len(rows), dtype=EPOCH_DTYPE)
        if not rows:
            return out
        col = list(zip(*rows, strict=True))
        out["time_ns"] = np.asarray(col[0], dtype=np.int64)
        out["activity"] = np.asarray([-1 if v is None else v for v in col[1]], dtype=np.int8)
        for i, name in enumerate(("inclination_deg", "flexion_deg", "lateral_deg"), start=2):
            out[name] = np.asarray([np.nan if v is None else v for v in col[i]], dtype=np.float64)
        out["static"] = np.asarray([bool(v) for v in col[5]])
        out["intensity_g"] = np.asarray(
            [np.nan if v is None else v for v in col[6]], dtype=np.float64
        )
        return out[np.argsort(out["time_ns"], kind="stable")]

    def count_epochs(
        self, wearer: str, start_ns: int, end_ns: int, *, site: str | None = None
    ) -> int:
        """Number of stored epoch points (all sensors of the wearer)."""
        where = f"{quote_ident('wearer')} = {quote_literal(wearer)}"
        if site is not None:
            where += f" AND {quote_ident('site')} = {quote_literal(site)}"
        series = self.query(
            f"SELECT count({quote_ident('activity_code')}) FROM "
            f"{quote_ident(self.cfg.database)}.{schema.EPOCH.qualified()} "
            f"WHERE {where} AND time >= {int(start_ns)} AND time < {int(end_ns)}"
        )
        return int(sum(row[1] for s in series for row in s.values))

    def activity_minutes(
        self, wearer: str, start_ns: int, end_ns: int, *, every: str = "1h", site: str | None = None
    ) -> npt.NDArray[np.void]:
        """Roll-up rows (``activity_1m`` or ``activity_1h``): time_ns + each field (absent = 0)."""
        meas = {"1m": schema.ACTIVITY_1M, "1h": schema.ACTIVITY_1H}.get(every)
        if meas is None:
            raise ValueError(f"every={every!r}: expected '1m' or '1h'")
        names = list(meas.fields)
        dtype = np.dtype([("time_ns", np.int64)] + [(n, np.float64) for n in names])
        rows: dict[int, list[float]] = {}
        for s in self._select(meas, names, wearer, start_ns, end_ns, site=site):
            for r in s.values:
                acc = rows.setdefault(int(r[0]), [0.0] * len(names))
                for i, v in enumerate(r[1:]):
                    if v is not None:
                        acc[i] += float(v)
        out = np.zeros(len(rows), dtype=dtype)
        for k, t in enumerate(sorted(rows)):
            out[k] = (t, *rows[t])
        return out

    # -------------------------------------------------------------- records
    def events(
        self,
        wearer: str,
        start_ns: int,
        end_ns: int,
        *,
        site: str | None = None,
        kinds: Sequence[str] = (),
    ) -> list[Event]:
        """Events sorted by time; ``attrs`` holds the stored optional fields."""
        extra = ""
        if kinds:
            extra = (
                "("
                + " OR ".join(f"{quote_ident('kind')} = {quote_literal(k)}" for k in kinds)
                + ")"
            )
        out: list[Event] = []
        for tags, rec in self._records(
            schema.EVENT,
            wearer,
            start_ns,
            end_ns,
            site=site,
            extra_where=extra,
            group_tags=("kind",),
        ):
            attrs: dict[str, Any] = {}
            if rec.get("attrs_json"):
                attrs.update(json.loads(rec["attrs_json"]))
            for k in ("activity", "mean_flexion_deg", "value"):
                if rec.get(k) is not None:
                    attrs[k] = rec[k]
            out.append(
                Event(int(rec["time"]), tags["kind"], float(rec.get("duration_s") or 0.0), attrs)
            )
        out.sort(key=lambda e: (e.time_ns, e.kind))
        return out

    def nudges(
        self, wearer: str, start_ns: int, end_ns: int, *, site: str | None = None
    ) -> list[NudgeRecord]:
        out: list[NudgeRecord] = []
        for tags, rec in self._records(
            schema.NUDGE, wearer, start_ns, end_ns, site=site, group_tags=("reason", "channel")
        ):
            out.append(
                NudgeRecord(
                    time_ns=int(rec["time"]),
                    nudge_id=str(rec.get("nudge_id") or ""),
                    reason=tags.get("reason", ""),
                    channel=tags.get("channel", ""),
                    level=int(rec.get("level") or 0),
                    static_min=rec.get("static_min"),
                    delivered=rec.get("delivered"),
                    answered=rec.get("answered"),
                    response_delay_s=rec.get("response_delay_s"),
                    confirmed=rec.get("confirmed"),
                    confirm_offset_s=rec.get("confirm_offset_s"),
                )
            )
        out.sort(key=lambda n: n.time_ns)
        return out

    def status(
        self, wearer: str, start_ns: int, end_ns: int, *, site: str | None = None
    ) -> list[DeviceStatus]:
        out: list[DeviceStatus] = []
        for tags, rec in self._records(
            schema.DEVICE, wearer, start_ns, end_ns, site=site, group_tags=("sensor", "device_type")
        ):
            out.append(
                DeviceStatus(
                    time_ns=int(rec["time"]),
                    sensor=tags.get("sensor", ""),
                    device_type=tags.get("device_type", ""),
                    connected=bool(rec.get("connected")),
                    battery_pct=rec.get("battery_pct"),
                    rate_hz=rec.get("rate_hz"),
                    lost_samples=int(rec.get("lost_samples") or 0),
                    gaps=int(rec.get("gaps") or 0),
                    reconnects=int(rec.get("reconnects") or 0),
                )
            )
        out.sort(key=lambda d: d.time_ns)
        return out

    def plan_changes(
        self, wearer: str, start_ns: int, end_ns: int, *, site: str | None = None
    ) -> list[PlanChange]:
        out: list[PlanChange] = []
        for _tags, rec in self._records(schema.PLAN_CHANGE, wearer, start_ns, end_ns, site=site):
            out.append(
                PlanChange(
                    int(rec["time"]),
                    str(rec.get("title") or ""),
                    str(rec.get("text") or ""),
                    json.loads(rec.get("settings_json") or "{}"),
                )
            )
        out.sort(key=lambda c: c.time_ns)
        return out

    def daily(
        self, wearer: str, start_ns: int, end_ns: int, *, site: str | None = None
    ) -> list[DailySummary]:
        """Daily summaries whose local midnight falls in the range, by date."""
        out = [
            _daily_from_row(rec)
            for _tags, rec in self._records(schema.DAILY, wearer, start_ns, end_ns, site=site)
        ]
        out.sort(key=lambda d: d.date)
        return out


def _daily_from_row(rec: dict[str, Any]) -> DailySummary:
    kwargs: dict[str, Any] = {}
    types = schema.DAILY.field_types()
    for f in fields(DailySummary):
        if f.name == "eva_min":
            kwargs["eva_min"] = tuple(
                float(rec.get(schema.eva_field_name(i, j)) or 0.0)
                for i in range(schema.N_EVA_ANGLE)
                for j in range(schema.N_EVA_DURATION)
            )
        elif f.name == "settings":
            kwargs["settings"] = json.loads(rec.get("settings_json") or "{}")
        elif f.name == "date":
            kwargs["date"] = str(rec.get("date") or "")
        else:
            v = rec.get(f.name)
            if types[f.name] == "integer":
                kwargs[f.name] = int(v) if v is not None else 0
            else:
                kwargs[f.name] = float(v) if v is not None else float("nan")
    return DailySummary(**kwargs)


__all__ = ["Reader", "Series", "quote_literal"]
