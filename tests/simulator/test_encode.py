"""The fast JSON path is byte-identical to serialising each row dict with orjson."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from simulator.encode import _rows, encode_fields, json_rows
from simulator.listing import Lister
from simulator.world import World

DAY = date(2026, 3, 1)  # a register snapshot day and a disclosure-free day
CASES = [
    ("isc_openapi", "lt_harbour", ["passages", "visitors", "vehicles", "alerts", "device_status"]),
    (
        "token_rest",
        "xihoulou",
        ["passages", "visitors", "vehicles", "alerts", "device_status", "register", "activities"],
    ),
    ("alarm_jsonl", "lt_xincun", ["alerts", "fire_alarms"]),
]


@pytest.mark.parametrize("variant", [None, "new_field", "renamed_field", "number_as_string"])
def test_json_rows_equal_orjson_of_the_row_dicts(variant):
    world = World(
        seed=13,
        faults=[
            {"fault": "malformed_rows", "params": {"rate": 0.05}},
            {"fault": "invalid_id_checksum", "params": {"rate": 0.01}},
        ],
    )
    lister = Lister(world)
    checked = 0
    for shape, site, kinds in CASES:
        for kind in kinds:
            batch = world.with_faults(site, kind, DAY)
            fields = encode_fields(shape, kind, batch, lister.names(site), variant)
            fast = json_rows(fields)
            assert fast == [orjson.dumps(row) for row in _rows(fields)], (shape, kind, variant)
            checked += len(fast)
    assert checked > 10_000
