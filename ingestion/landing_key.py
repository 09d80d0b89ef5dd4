"""The landing zone remembers which pseudonym key wrote it, and refuses any other.

Pseudonyms are HMACs under the key: landing a day with a different key writes person,
household and plate keys that no longer join the days before. So the first landing records
the key's fingerprint (an HMAC of a fixed label under the key, never the key) in

    landing/_meta/pseudonym_key.json

and every later landing compares. Rotating the key therefore means a fresh landing zone:
land everything again with the new key into a new data directory (SMARTCOMM_DATA_DIR) and
rebuild the warehouse from it (docs/security.md). A landing zone written before fingerprints
existed is adopted in demo mode; outside it, `python -m ingestion pseudonym-key adopt` records
the current key once the operator has confirmed it is the one the data was landed with.
"""

from __future__ import annotations

import hmac
import json
import os
import uuid
from pathlib import Path

from core.demo import demo_mode
from ingestion.paths import DataPaths, make_private_dir, private_file
from ingestion.pii import PSEUDONYM_KEY_ENV, Pseudonymizer, PseudonymKeyMismatch
from ingestion.timeutil import utc_now

KEY_FILE = "pseudonym_key.json"


def key_file(paths: DataPaths) -> Path:
    return paths.meta / KEY_FILE


def recorded_fingerprint(paths: DataPaths) -> str | None:
    """The fingerprint the landing zone was written with, None before its first landing."""
    path = key_file(paths)
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["fingerprint"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise PseudonymKeyMismatch(f"{path} is unreadable ({exc}); restore it from a backup") from None


def has_landed_data(paths: DataPaths) -> bool:
    return any(paths.landing.glob("*/site=*/date=*/data.parquet")) if paths.landing.is_dir() else False


def record_fingerprint(paths: DataPaths, pseudonymizer: Pseudonymizer) -> str:
    """Write the key's fingerprint unless one exists (first writer wins); return the recorded one."""
    target = key_file(paths)
    make_private_dir(target.parent)
    body = {
        "version": 1,
        "algorithm": "HMAC-SHA256 of the label below under the pseudonym key",
        "label": "smartcomm:landing-zone-pseudonym-key-fingerprint:v1",
        "fingerprint": pseudonymizer.fingerprint(),
        "recorded_at_utc": utc_now().isoformat(),
    }
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    private_file(tmp)
    try:
        os.link(tmp, target)  # atomic and exclusive: two first landings cannot both win
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return recorded_fingerprint(paths) or body["fingerprint"]


def check_landing_key(paths: DataPaths, pseudonymizer: Pseudonymizer) -> None:
    """Refuse to land with a key other than the landing zone's (PseudonymKeyMismatch)."""
    recorded = recorded_fingerprint(paths)
    current = pseudonymizer.fingerprint()
    if recorded is None:
        if has_landed_data(paths) and not demo_mode():
            raise PseudonymKeyMismatch(
                f"the landing zone {paths.landing} holds data but no record of the pseudonym key it was "
                f"written with ({key_file(paths)}); if {PSEUDONYM_KEY_ENV} is that key, record it with "
                "`python -m ingestion pseudonym-key adopt`, otherwise land into a fresh data directory"
            )
        recorded = record_fingerprint(paths, pseudonymizer)
    if not hmac.compare_digest(recorded, current):
        raise PseudonymKeyMismatch(
            f"{PSEUDONYM_KEY_ENV} is not the key the landing zone {paths.landing} was written with "
            f"(fingerprint {current[:12]}…, the zone's {recorded[:12]}… in {key_file(paths)}): its pseudonyms "
            "would not join the data already landed. Use the zone's key, or rotate: land everything again "
            "with the new key into a fresh data directory (SMARTCOMM_DATA_DIR) and rebuild the warehouse "
            "from it (docs/security.md)"
        )
