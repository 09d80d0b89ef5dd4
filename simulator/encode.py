"""Vendor encodings of canonical records: ISC camelCase and codes, token-REST snake_case and
epoch milliseconds, JSON-lines alarm pushes, government export and manual spreadsheet columns.

Code vocabularies and field renames are data (simulator/vendor_spec.yml). Malformed rows
(from the data faults) are broken here, in the vendor's own format, so each shape shows the
defect the way a real vendor would.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

from simulator.world import Batch, batch_len, id_check_digit

SPEC_FILE = Path(__file__).resolve().parent / "vendor_spec.yml"
BAD_ISO = "0000-00-00T00:00:00+08:00"
BAD_LOCAL = "0000-00-00 00:00:00"
BAD_DATE = "0000-00-00"
UTC_OFFSET_S = 8 * 3600


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))


# ---- time formats (arrays of naive local datetime64[s]; NaT -> None) --------------------
def iso(values: np.ndarray) -> list[str | None]:
    text = np.datetime_as_string(values.astype("datetime64[s]"), unit="s")
    return [None if t == "NaT" else t + "+08:00" for t in text.tolist()]


def local(values: np.ndarray) -> list[str | None]:
    text = np.datetime_as_string(values.astype("datetime64[s]"), unit="s")
    return [None if t == "NaT" else t.replace("T", " ") for t in text.tolist()]


def dates(values: np.ndarray) -> list[str | None]:
    text = np.datetime_as_string(values.astype("datetime64[D]"), unit="D")
    return [None if t == "NaT" else t for t in text.tolist()]


def epoch_ms(values: np.ndarray) -> list[int | None]:
    raw = values.astype("datetime64[s]")
    nat = np.isnat(raw)
    ms = (raw.astype("int64") - UTC_OFFSET_S) * 1000
    return [None if n else int(v) for v, n in zip(ms.tolist(), nat.tolist(), strict=True)]


def floats(values: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]


def _map(values: np.ndarray, mapping: dict[str, Any]) -> list[Any]:
    return [mapping.get(v) if v is not None else None for v in values.tolist()]


Fields = dict[str, list[Any]]  # vendor field name -> one value per row, in wire order


def _rows(fields: Fields) -> list[dict[str, Any]]:
    names = list(fields)
    return [dict(zip(names, values)) for values in zip(*fields.values())]  # noqa: B905 - equal lengths by construction


def broken_id_card(number: str) -> str:
    """The same number with a wrong GB 11643 check digit."""
    right = id_check_digit(number[:17])
    wrong = "0" if right != "0" else "1"
    return number[:17] + wrong


# ---- ISC OpenAPI ------------------------------------------------------------------------
def isc_fields(kind: str, b: Batch, names: dict[str, dict[str, str]]) -> Fields:
    s = spec()["isc_openapi"]
    if kind == "passages":
        codes = s["passage_event_types"]
        temp = b["temperature_c"]
        status = np.where(np.isnan(temp), 0, np.where(temp >= 37.3, 2, 1)).tolist()
        gate_names = names["gates"]
        return {
            "eventId": b["event_id"].tolist(),
            "eventType": [codes[m][0] for m in b["method"].tolist()],
            "eventTypeName": [codes[m][1] for m in b["method"].tolist()],
            "eventTime": iso(b["event_time"]),
            "doorIndexCode": b["gate_id"].tolist(),
            "doorName": [gate_names[g] for g in b["gate_id"].tolist()],
            "inAndOutType": _map(b["direction"], s["in_and_out_type"]),
            "personType": _map(b["person_type"], s["person_type"]),
            "personId": b["person_id"].tolist(),
            "personName": b["person_name"].tolist(),
            "certNo": b["id_card"].tolist(),
            "picUri": b["face_url"].tolist(),
            "appointmentId": b["appointment_id"].tolist(),
            "temperatureData": floats(temp),
            "temperatureStatus": status,
            "tailgateFlag": b["tailgating"].astype(int).tolist(),
        }
    if kind == "visitors":
        arrived = ~np.isnat(b["arrival_time"])
        return {
            "appointRecordId": b["appointment_id"].tolist(),
            "createTime": iso(b["created_time"]),
            "visitStartTime": iso(b["expected_time"]),
            "arriveTime": iso(b["arrival_time"]),
            "doorIndexCode": [g if a else None for g, a in zip(b["gate_id"].tolist(), arrived.tolist(), strict=True)],
            "visitorName": b["visitor_name"].tolist(),
            "phoneNo": b["visitor_phone"].tolist(),
            "certificateNo": b["visitor_id_card"].tolist(),
            "receptionistId": b["host_household_id"].tolist(),
            "visitorStatus": np.where(arrived, 1, 2).tolist(),
        }
    if kind == "vehicles":
        gate_names = names["vehicle_gates"]
        return {
            "crossRecordSyscode": b["event_id"].tolist(),
            "crossTime": iso(b["event_time"]),
            "entranceSyscode": b["gate_id"].tolist(),
            "entranceName": [gate_names[g] for g in b["gate_id"].tolist()],
            "vehicleOut": _map(b["direction"], s["vehicle_out"]),
            "plateNo": b["plate_no"].tolist(),
            "carCategory": _map(b["vehicle_class"], s["car_category"]),
        }
    if kind == "alerts":
        codes = s["alert_event_types"]
        return {
            "eventId": b["alert_id"].tolist(),
            "eventType": [codes[t][0] for t in b["alert_type"].tolist()],
            "eventTypeName": [codes[t][1] for t in b["alert_type"].tolist()],
            "srcIndex": b["device_id"].tolist(),
            "happenTime": iso(b["raised_time"]),
            "ackTime": iso(b["acknowledged_time"]),
            "closeTime": iso(b["closed_time"]),
            "status": _status(b, numeric=True),
        }
    if kind == "device_status":
        return {
            "indexCode": b["device_id"].tolist(),
            "resourceType": _map(b["device_type"], s["resource_type"]),
            "regionIndexCode": b["key_point_id"].tolist(),
            "collectTime": iso(b["hour_start"]),
            "online": b["online"].astype(int).tolist(),
        }
    raise KeyError(f"isc_openapi cannot deliver {kind}")


def _status(b: Batch, numeric: bool) -> list[Any]:
    closed = ~np.isnat(b["closed_time"])
    acked = ~np.isnat(b["acknowledged_time"])
    code = np.where(closed, 2, np.where(acked, 1, 0))
    if numeric:
        return code.tolist()
    words = np.array(["open", "acknowledged", "closed"], dtype=object)
    return words[code].tolist()


ISC_FIELDS = {
    "passages": {"time": "eventTime", "gate": ["doorIndexCode", "doorName"], "temp": "temperatureData"},
    "visitors": {"time": "visitStartTime"},
    "vehicles": {"time": "crossTime", "gate": ["entranceSyscode", "entranceName"]},
    "alerts": {"time": "happenTime", "ack": "ackTime", "closed": "closeTime"},
    "device_status": {"time": "collectTime"},
}


# ---- token REST ---------------------------------------------------------------------------
def rest_fields(kind: str, b: Batch) -> Fields:
    s = spec()["token_rest"]
    if kind == "passages":
        return {
            "id": b["event_id"].tolist(),
            "occurred_at": epoch_ms(b["event_time"]),
            "gate_code": b["gate_id"].tolist(),
            "direction": _map(b["direction"], s["direction"]),
            "auth_method": _map(b["method"], s["auth_method"]),
            "person_category": _map(b["person_type"], s["person_category"]),
            "person_id": b["person_id"].tolist(),
            "person_name": b["person_name"].tolist(),
            "id_number": b["id_card"].tolist(),
            "face_image_url": b["face_url"].tolist(),
            "appointment_no": b["appointment_id"].tolist(),
            "body_temp": floats(b["temperature_c"]),
            "tailgating": b["tailgating"].tolist(),
        }
    if kind == "visitors":
        arrived = ~np.isnat(b["arrival_time"])
        return {
            "appointment_no": b["appointment_id"].tolist(),
            "created_at": epoch_ms(b["created_time"]),
            "expected_at": epoch_ms(b["expected_time"]),
            "arrived_at": epoch_ms(b["arrival_time"]),
            "gate_code": [g if a else None for g, a in zip(b["gate_id"].tolist(), arrived.tolist(), strict=True)],
            "visitor_name": b["visitor_name"].tolist(),
            "visitor_phone": b["visitor_phone"].tolist(),
            "visitor_id_number": b["visitor_id_card"].tolist(),
            "host_household_id": b["host_household_id"].tolist(),
            "status": np.where(arrived, "arrived", "expired").tolist(),
        }
    if kind == "vehicles":
        return {
            "id": b["event_id"].tolist(),
            "passed_at": epoch_ms(b["event_time"]),
            "gate_code": b["gate_id"].tolist(),
            "direction": _map(b["direction"], s["direction"]),
            "plate_number": b["plate_no"].tolist(),
            "vehicle_category": _map(b["vehicle_class"], s["vehicle_category"]),
        }
    if kind == "alerts":
        return {
            "id": b["alert_id"].tolist(),
            "alert_type": _map(b["alert_type"], s["alert_type"]),
            "device_code": b["device_id"].tolist(),
            "raised_at": epoch_ms(b["raised_time"]),
            "acknowledged_at": epoch_ms(b["acknowledged_time"]),
            "closed_at": epoch_ms(b["closed_time"]),
            "status": _status(b, numeric=False),
        }
    if kind == "fire_alarms":
        return {
            "id": b["alarm_id"].tolist(),
            "sensor_code": b["sensor_id"].tolist(),
            "alarm_type": _map(b["alarm_type"], s["fire_alarm_type"]),
            "raised_at": epoch_ms(b["raised_time"]),
            "acknowledged_at": epoch_ms(b["acknowledged_time"]),
            "closed_at": epoch_ms(b["closed_time"]),
            "false_alarm": b["is_false_alarm"].tolist(),
        }
    if kind == "device_status":
        return {
            "device_code": b["device_id"].tolist(),
            "device_type": _map(b["device_type"], s["device_type"]),
            "key_point_code": b["key_point_id"].tolist(),
            "hour_start": epoch_ms(b["hour_start"]),
            "online": b["online"].tolist(),
        }
    if kind == "register":
        return {
            "resident_id": b["person_id"].tolist(),
            "snapshot_date": dates(b["snapshot_date"]),
            "id_number": b["id_card"].tolist(),
            "name": b["name"].tolist(),
            "phone": b["phone"].tolist(),
            "household_id": b["household_id"].tolist(),
            "building": b["building"].tolist(),
            "unit": b["unit"].tolist(),
            "room": b["room"].tolist(),
            "birth_date": dates(b["birth_date"]),
            "lives_alone": b["lives_alone"].tolist(),
            "last_verified_date": dates(b["last_verified_date"]),
        }
    if kind == "activities":
        return {
            "id": b["activity_id"].tolist(),
            "start_at": epoch_ms(b["start_time"]),
            "title": b["title"].tolist(),
            "category": b["category"].tolist(),
            "participants": b["participants"].tolist(),
        }
    if kind == "disclosures":
        return {
            "id": b["disclosure_id"].tolist(),
            "category": _map(b["category"], s["disclosure_category"]),
            "due_date": dates(b["due_date"]),
            "published_date": dates(b["published_date"]),
        }
    if kind == "surveys":
        return {
            "response_id": b["response_id"].tolist(),
            "question_id": b["question_id"].tolist(),
            "answered_date": dates(b["answered_date"]),
            "score": b["score"].tolist(),
            "respondent_phone": b["respondent_phone"].tolist(),
        }
    raise KeyError(f"token_rest cannot deliver {kind}")


REST_FIELDS = {
    "passages": {"time": "occurred_at", "gate": ["gate_code"], "temp": "body_temp"},
    "visitors": {"time": "expected_at"},
    "vehicles": {"time": "passed_at", "gate": ["gate_code"]},
    "alerts": {"time": "raised_at", "ack": "acknowledged_at", "closed": "closed_at"},
    "fire_alarms": {"time": "raised_at", "ack": "acknowledged_at", "closed": "closed_at"},
    "device_status": {"time": "hour_start"},
    "register": {"time": "birth_date", "id_card": "id_number"},
    "activities": {"time": "start_at"},
    "disclosures": {"time": "due_date"},
    "surveys": {"time": "answered_date"},
}


# ---- alarm JSON lines -----------------------------------------------------------------------
def jsonl_fields(kind: str, b: Batch) -> Fields:
    vocab = spec()["alarm_jsonl"]["alarm_type"][kind]
    if kind == "alerts":
        ids, types, device, false = b["alert_id"], b["alert_type"], b["device_id"], None
    elif kind == "fire_alarms":
        ids, types, device, false = b["alarm_id"], b["alarm_type"], b["sensor_id"], b["is_false_alarm"].tolist()
    else:
        raise KeyError(f"alarm_jsonl cannot deliver {kind}")
    fields = {
        "msgId": ids.tolist(),
        "alarmType": _map(types, vocab),
        "deviceSn": device.tolist(),
        "alarmTime": local(b["raised_time"]),
        "confirmTime": local(b["acknowledged_time"]),
        "recoverTime": local(b["closed_time"]),
    }
    if false is not None:
        fields["falseAlarm"] = false
    return fields


JSONL_FIELDS = {"time": "alarmTime", "ack": "confirmTime", "closed": "recoverTime"}


# ---- corruption and drift -------------------------------------------------------------------
def _shift(value: Any, seconds: int, fmt: str) -> Any:
    """A time value of the given wire format moved by `seconds` (for negative durations)."""
    from datetime import datetime, timedelta

    if value is None:
        return None
    if fmt == "ms":
        return int(value) + seconds * 1000
    if fmt == "iso":
        return (datetime.fromisoformat(value) + timedelta(seconds=seconds)).isoformat()
    return (datetime.fromisoformat(value) + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def corrupt(fields: Fields, malformed: np.ndarray, names: dict[str, Any], fmt: str) -> None:
    """Break the rows flagged malformed, in place, as the vendor would send them."""
    bad_time = {"iso": BAD_ISO, "ms": BAD_LOCAL, "local": BAD_LOCAL}[fmt]
    for i in np.flatnonzero(malformed != None).tolist():  # noqa: E711 - numpy elementwise
        reason = malformed[i]
        if reason == "bad_timestamp":
            key = names["time"]
            fields[key][i] = BAD_DATE if key.endswith("date") else bad_time
        elif reason == "missing_gate":
            for key in names["gate"]:
                fields[key][i] = ""
        elif reason == "zero_temperature":
            fields[names["temp"]][i] = 0.0
        elif reason == "negative_duration":
            raised = fields[names["time"]][i]
            fields[names["ack"]][i] = _shift(raised, -300, fmt)
            if fields[names["closed"]][i] is not None:
                fields[names["closed"]][i] = _shift(raised, -120, fmt)
        elif reason == "invalid_id_checksum":
            key = names.get("id_card", "id_card")
            fields[key][i] = broken_id_card(fields[key][i])


def drift(fields: Fields, shape: str, kind: str, variant: str | None) -> Fields:
    """The schema_drift fault applied to the columns (a new dict when a field is renamed)."""
    if not variant or not fields:
        return fields
    s = spec()
    n = len(next(iter(fields.values())))
    if variant == "new_field":
        fields["ext_flag" if shape == "token_rest" else "extFlag"] = [1] * n
    elif variant == "renamed_field":
        pair = s["alarm_jsonl"]["renamed_field"] if shape == "alarm_jsonl" else s[shape]["renamed_field"].get(kind)
        if pair:
            old, new = pair
            fields = {(new if k == old else k): v for k, v in fields.items()}
    elif variant == "number_as_string":
        if shape == "isc_openapi":
            keys = s["isc_openapi"]["number_fields"].get(kind, [])
        elif shape == "token_rest":
            keys = [k for k in fields if k.endswith("_at") or k == "hour_start"]
        else:
            keys = []
        for key in keys:
            fields[key] = [None if v is None else str(v) for v in fields[key]]
    return fields


def encode_fields(
    shape: str, kind: str, b: Batch, names: dict[str, dict[str, str]], variant: str | None = None
) -> Fields:
    """Columns of a batch in a vendor shape, malformed rows broken, schema drift applied."""
    if not batch_len(b):
        return {}
    if shape == "isc_openapi":
        fields, spots, fmt = isc_fields(kind, b, names), ISC_FIELDS[kind], "iso"
    elif shape == "token_rest":
        fields, spots, fmt = rest_fields(kind, b), REST_FIELDS[kind], "ms"
    elif shape == "alarm_jsonl":
        fields, spots, fmt = jsonl_fields(kind, b), JSONL_FIELDS, "local"
    else:
        raise KeyError(f"no row encoder for shape {shape}")
    if "_malformed" in b:
        corrupt(fields, b["_malformed"], spots, fmt)
    return drift(fields, shape, kind, variant)


def encode(
    shape: str, kind: str, b: Batch, names: dict[str, dict[str, str]], variant: str | None = None
) -> list[dict[str, Any]]:
    """Rows of a batch in a vendor shape as dicts (see encode_fields)."""
    return _rows(encode_fields(shape, kind, b, names, variant))


def _fragments(column: list[Any]) -> list[bytes]:
    """Each value as JSON: one orjson call for the column, split at the commas between
    values (a value holding a comma is detected by the count and falls back)."""
    parts = orjson.dumps(column)[1:-1].split(b",") if column else []
    if len(parts) == len(column):
        return parts
    return [orjson.dumps(v) for v in column]


def json_rows(fields: Fields) -> list[bytes]:
    """One JSON object per row, byte-identical to orjson.dumps of the row dict, without
    building the dicts (about twice as fast)."""
    if not fields:
        return []
    template = b"{" + b",".join(orjson.dumps(k) + b":%b" for k in fields) + b"}"
    columns = [_fragments(c) for c in fields.values()]
    return [template % values for values in zip(*columns)]  # noqa: B905 - equal lengths by construction
