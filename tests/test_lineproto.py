"""Line-protocol encoder: exact strings, escaping, NaN handling, vector == scalar."""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.contracts import EPOCH_DTYPE, Activity, DailySummary, Event, SampleBatch
from postmon.store import lineproto as lp
from postmon.store import schema
from postmon.store.records import DeviceStatus, NudgeRecord

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


def _epochs(rows: list[tuple[int, int, float, float, float, bool, float]]) -> np.ndarray:
    a = np.zeros(len(rows), dtype=EPOCH_DTYPE)
    for i, r in enumerate(rows):
        a[i] = r
    return a


# ----------------------------------------------------------------- escaping


def test_escaping_of_every_element() -> None:
    assert lp.escape_measurement("a b,c=d") == r"a\ b\,c=d"
    assert lp.escape_key("a b,c=d") == r"a\ b\,c\=d"
    assert lp.escape_tag_value("Zürich ward 3,=") == r"Zürich\ ward\ 3\,\="
    assert lp.escape_string('say "hi" \\ bye') == r'"say \"hi\" \\ bye"'
    assert lp.escape_string("ünï €😀 , =") == '"ünï €😀 , ="'
    # a backslash inside a name is kept as is (InfluxDB 1.x stores it literally)
    assert lp.escape_tag_value(r"a\b") == r"a\b"


@pytest.mark.parametrize(
    "fn", [lp.escape_measurement, lp.escape_key, lp.escape_tag_value, lp.escape_string]
)
def test_line_breaks_are_refused(fn) -> None:
    with pytest.raises(lp.EncodeError, match="line break"):
        fn("a\nb")
    with pytest.raises(lp.EncodeError, match="line break"):
        fn("a\rb")


def test_trailing_backslash_and_empty_names_are_refused() -> None:
    with pytest.raises(lp.EncodeError, match="backslash"):
        lp.escape_tag_value("ward\\")
    with pytest.raises(lp.EncodeError, match="empty"):
        lp.escape_key("")


def test_point_with_special_characters_exact() -> None:
    line = lp.encode_point(
        schema.EVENT,
        {"site": "Clinic A, Zürich", "wearer": "p=17", "kind": "bout"},
        {"duration_s": 12.5, "activity": "sitting", "attrs_json": '{"note":"a \\"b\\""}'},
        T0 + 123_456_789,
    )
    assert line == (
        r"event,kind=bout,site=Clinic\ A\,\ Zürich,wearer=p\=17 "
        r'duration_s=12.5,activity="sitting",attrs_json="{\"note\":\"a \\\"b\\\"\"}" '
        "1700000000123"
    )


def test_empty_tags_are_omitted_and_unknown_tags_or_fields_refused() -> None:
    line = lp.encode_point(
        schema.EPOCH, {"site": "s", "wearer": "w", "sensor": ""}, {"static": True}, T0
    )
    assert line == "epoch,site=s,wearer=w static=true 1700000000"
    with pytest.raises(lp.EncodeError, match="unknown tag"):
        lp.encode_point(schema.EPOCH, {"name": "Alice"}, {"static": True}, T0)
    with pytest.raises(lp.EncodeError, match="unknown field"):
        lp.encode_point(schema.EPOCH, {"site": "s"}, {"heart_rate": 1.0}, T0)


# ------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("x", "decimals", "text"),
    [
        (12.5, 2, "12.5"),
        (12.0, 2, "12"),
        (-0.004, 2, "0"),
        (-0.006, 2, "-0.01"),
        (0.125, 2, "0.12"),  # half to even
        (0.375, 2, "0.38"),
        (2.5, 0, "2"),
        (3.5, 0, "4"),
        (-273.15, 2, "-273.15"),
        (1e20, 2, "1e+20"),  # beyond exact fixed point: repr
        (float("nan"), 2, None),
        (float("inf"), 2, None),
        (float("-inf"), 3, None),
    ],
)
def test_format_float(x: float, decimals: int, text: str | None) -> None:
    assert lp.format_float(x, decimals) == text


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), st.integers(0, 5))
def test_format_float_is_the_rounded_decimal(x: float, decimals: int) -> None:
    got = lp.format_float(x, decimals)
    assert got is not None
    # independent truth: Decimal arithmetic on the float64 product, half-even
    scaled = Decimal(x * 10.0**decimals).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    assert Decimal(got) == scaled / Decimal(10) ** decimals
    assert not got.endswith(".")
    assert "." not in got or not got.endswith("0")


def test_field_types_follow_the_schema() -> None:
    spec_f = schema.EPOCH.spec("flexion_deg")
    spec_i = schema.EPOCH.spec("activity_code")
    spec_b = schema.EPOCH.spec("static")
    assert lp.format_field(3, spec_f) == "3"  # an integer value is still a float field
    assert lp.format_field(3, spec_i) == "3i"
    assert lp.format_field(np.int8(4), spec_i) == "4i"
    assert lp.format_field(2.0, spec_i) == "2i"
    assert lp.format_field(np.bool_(False), spec_b) == "false"
    with pytest.raises(lp.EncodeError, match="whole number"):
        lp.format_field(2.5, spec_i)
    with pytest.raises(lp.EncodeError, match="not a valid float"):
        lp.format_field("abc", spec_f)
    with pytest.raises(lp.EncodeError, match="not a valid float"):
        lp.format_field(True, spec_f)


# ------------------------------------------------------------------- epochs


def test_epochs_exact_lines_with_nan_omitted() -> None:
    ep = _epochs(
        [
            (T0, int(Activity.SITTING), 12.5, 11.25, -2.1, True, 0.0123),
            (T0 + 1_000_000_000, int(Activity.WALKING), 3.0, float("nan"), 0.004, False, 0.25),
            (
                T0 + 2_400_000_000,
                int(Activity.NONWEAR),
                float("nan"),
                float("nan"),
                float("nan"),
                True,
                0.0,
            ),
        ]
    )
    enc = lp.encode_epochs("clinic-a", "p017", "C4:4F:33:12:34:56", ep)
    prefix = "epoch,sensor=C4:4F:33:12:34:56,site=clinic-a,wearer=p017 "
    assert enc.body.decode() == (
        prefix + 'activity="sitting",activity_code=1i,static=true,inclination_deg=12.5,'
        "flexion_deg=11.25,lateral_deg=-2.1,intensity_g=0.0123 1700000000\n"
        + prefix
        + 'activity="walking",activity_code=3i,static=false,inclination_deg=3,'
        "lateral_deg=0,intensity_g=0.25 1700000001\n"
        + prefix
        + 'activity="nonwear",activity_code=5i,static=true,intensity_g=0 1700000002\n'
    )
    assert (enc.points, enc.skipped) == (3, 0)
    assert (enc.rp, enc.precision, enc.measurement) == ("epochs_2y", "s", "epoch")
    assert (enc.t_min_ns, enc.t_max_ns) == (T0, T0 + 2_400_000_000)


def test_epochs_refuse_bad_dtype_and_codes() -> None:
    with pytest.raises(lp.EncodeError, match="EPOCH_DTYPE"):
        lp.encode_epochs("s", "w", "x", np.zeros(3))
    ep = _epochs([(T0, 9, 0, 0, 0, False, 0)])
    with pytest.raises(lp.EncodeError, match="activity code 9"):
        lp.encode_epochs("s", "w", "x", ep)


def test_empty_batch_encodes_to_nothing() -> None:
    enc = lp.encode_epochs("s", "w", "x", np.zeros(0, EPOCH_DTYPE))
    assert (enc.body, enc.points, enc.skipped) == (b"", 0, 0)


_tag_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\\"),
    min_size=1,
    max_size=8,
)
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(min_value=-1e6, max_value=1e6, width=32),
    st.sampled_from([0.0, -0.0, 0.005, -0.005, 0.125, 1e30]),
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-(2**40), 2**40),
            st.integers(0, 5),
            _floats,
            _floats,
            _floats,
            st.booleans(),
            _floats,
        ),
        min_size=1,
        max_size=30,
    ),
    site=_tag_text,
    wearer=_tag_text,
)
def test_vectorised_epochs_equal_the_scalar_encoder(rows, site, wearer) -> None:
    ep = np.zeros(len(rows), dtype=EPOCH_DTYPE)
    for i, (t, code, a, b, c, s, g) in enumerate(rows):
        ep[i] = (T0 + t * 1_000_000, code, a, b, c, s, g)
    enc = lp.encode_epochs(site, wearer, "sensor 1", ep)
    tags = {"site": site, "wearer": wearer, "sensor": "sensor 1"}
    expected = [
        lp.encode_point(schema.EPOCH, tags, lp.epoch_values(r), int(r["time_ns"])) for r in ep
    ]
    assert enc.body.decode() == "".join(line + "\n" for line in expected if line)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10**12), _floats, _floats, _floats), min_size=1, max_size=20),
    st.booleans(),
)
def test_vectorised_raw_equals_scalar_and_counts_empty_points(rows, with_gyro) -> None:
    t = np.array([T0 + r[0] for r in rows], dtype=np.int64)
    acc = np.array([r[1:] for r in rows], dtype=np.float64)
    gyro = acc[:, ::-1] * 10 if with_gyro else None
    batch = SampleBatch("s1", "w1", 50.0, t, acc, gyro)
    enc = lp.encode_raw("site", "w1", batch)
    keys = ("ax_g", "ay_g", "az_g", "gx_dps", "gy_dps", "gz_dps")
    expected = []
    for i in range(len(rows)):
        values = dict(zip(keys[:3], acc[i].tolist(), strict=True))
        if gyro is not None:
            values |= dict(zip(keys[3:], gyro[i].tolist(), strict=True))
        expected.append(
            lp.encode_point(
                schema.IMU_RAW, {"site": "site", "wearer": "w1", "sensor": "s1"}, values, int(t[i])
            )
        )
    assert enc.body.decode() == "".join(line + "\n" for line in expected if line)
    n_empty = sum(1 for line in expected if line is None)
    assert (enc.points, enc.skipped) == (len(rows) - n_empty, n_empty)


def test_point_with_no_field_is_skipped_and_counted() -> None:
    batch = SampleBatch(
        "s1",
        "w1",
        50.0,
        np.array([T0, T0 + 20_000_000], dtype=np.int64),
        np.array([[np.nan, np.nan, np.nan], [0.5, np.nan, -1.0]]),
    )
    enc = lp.encode_raw("site", "w1", batch)
    assert (
        enc.body == b"imu_raw,sensor=s1,site=site,wearer=w1 ax_g=0.5,az_g=-1 1700000000020000000\n"
    )
    assert (enc.points, enc.skipped) == (1, 1)


# ------------------------------------------------- events, nudges, status


def test_events_known_attrs_become_fields_and_others_json() -> None:
    events = [
        Event(T0, "bout", 125.0, {"activity": int(Activity.STANDING), "n_epochs": 125}),
        Event(
            T0 + 5, "sustained_flexion", 90.0, {"mean_flexion_deg": 31.234, "value": float("nan")}
        ),
        Event(T0 + 7, "sit_to_stand"),
    ]
    enc = lp.encode_events("a", "w", events)
    assert enc.body.decode().splitlines() == [
        'event,kind=bout,site=a,wearer=w duration_s=125,activity="standing",'
        'attrs_json="{\\"n_epochs\\":125}" 1700000000000',
        "event,kind=sustained_flexion,site=a,wearer=w duration_s=90,mean_flexion_deg=31.23"
        " 1700000000000",
        "event,kind=sit_to_stand,site=a,wearer=w duration_s=0 1700000000000",
    ]
    with pytest.raises(lp.EncodeError, match="unknown activity"):
        lp.encode_events("a", "w", [Event(T0, "bout", 1.0, {"activity": "dancing"})])


def test_nudges_from_events_and_unknowns_omitted() -> None:
    ev = Event(
        T0,
        "nudge",
        0.0,
        {
            "nudge_id": "n-1",
            "reason": "static",
            "channel": "haptic",
            "level": 2,
            "static_min": 30.0,
        },
    )
    rec = NudgeRecord.from_event(ev)
    assert rec == NudgeRecord(T0, "n-1", "static", "haptic", 2, 30.0, None, None, None)
    later = NudgeRecord(T0, "n-1", "static", "haptic", 2, 30.0, True, True, 95.5)
    enc = lp.encode_nudges("a", "w", [rec, later])
    assert enc.body.decode().splitlines() == [
        'nudge,channel=haptic,reason=static,site=a,wearer=w nudge_id="n-1",level=2i,static_min=30'
        " 1700000000000",
        'nudge,channel=haptic,reason=static,site=a,wearer=w nudge_id="n-1",level=2i,static_min=30,'
        "delivered=true,answered=true,response_delay_s=95.5 1700000000000",
    ]
    with pytest.raises(ValueError, match="not 'nudge'"):
        NudgeRecord.from_event(Event(T0, "bout"))


def test_status_line() -> None:
    s = DeviceStatus(T0 + 999_999_999, "AA:BB", "metamotion", True, None, 49.876, 12, 3, 1)
    enc = lp.encode_status("a", "w", [s])
    assert enc.body == (
        b"device,device_type=metamotion,sensor=AA:BB,site=a,wearer=w "
        b"connected=true,rate_hz=49.876,lost_samples=12i,gaps=3i,reconnects=1i 1700000000\n"
    )


# -------------------------------------------------------------------- daily


def make_summary(date: str = "2024-03-31", **over) -> DailySummary:
    values: dict = {}
    hints = dict(DailySummary.__annotations__)
    for i, name in enumerate(hints):
        if name == "date":
            values[name] = date
        elif name == "eva_min":
            values[name] = tuple(float(k) / 4 for k in range(24))
        elif name == "settings":
            values[name] = {"min_bout_s": 10, "static_nudge_min": 30.0, "label": 'a "b"'}
        elif hints[name] == "int":
            values[name] = i
        else:
            values[name] = i + 0.5
    values.update(over)
    return DailySummary(**values)


def test_daily_flattens_eva_and_settings_at_local_midnight() -> None:
    s = make_summary()
    enc = lp.encode_daily("a", "w", [s], tz="Europe/Paris")
    line = enc.body.decode().rstrip("\n")
    # 2024-03-31 is the DST switch day in Paris; midnight is still +01:00
    assert line.endswith(" 1711839600")
    fields = dict(
        kv.split("=", 1) for kv in line.split(" ")[1].split(",") if "=" in kv and "{" not in kv
    )
    assert fields["eva_a0_d0_min"] == "0"
    assert fields["eva_a3_d5_min"] == "5.75"  # last cell, row-major: 23 / 4
    assert fields["sitting_bouts"].endswith("i")
    assert fields["wear_min"] == "1.5"
    settings_text = line.split('settings_json="', 1)[1].rsplit('"', 1)[0]
    assert json.loads(settings_text.replace('\\"', '"').replace("\\\\", "\\")) == s.settings
    n_fields = len(schema.DAILY.fields)
    assert n_fields == len(DailySummary.__annotations__) - 2 + 24 + 1
    with pytest.raises(lp.EncodeError, match="eva_min has 3"):
        lp.encode_daily("a", "w", [make_summary(eva_min=(1.0, 2.0, 3.0))])
    with pytest.raises(lp.EncodeError, match="time zone"):
        lp.encode_daily("a", "w", [s], tz="Mars/Olympus")


def test_schema_doc_tables_are_generated_from_schema() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "SCHEMA.md").read_text(encoding="utf-8")
    between = doc.split(schema.DOC_BEGIN, 1)[1].split(schema.DOC_END, 1)[0]
    assert between.strip() == schema.render_markdown().strip(), (
        "docs/SCHEMA.md is out of date: run `python -m postmon.store.schema`"
    )


def test_downsample_statements_cover_whole_hours() -> None:
    hour = 3_600_000_000_000
    stmts = schema.downsample_statements("db", 5 * hour + 7, 6 * hour + 1)
    assert all(f"time >= {5 * hour} AND time < {7 * hour}" in s for s in stmts)
    assert sum("activity_1m" in s.split("FROM")[0] for s in stmts) == 8
    assert math.isclose(len(stmts), 9)
