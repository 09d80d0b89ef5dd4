"""The demo's ingest workers share one queue of sites (pipeline.dagruns.claim_next): processes
claiming at once each get different sites, every site is taken once, none is lost."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from pipeline.dagruns import queued_sites


def _claim_all(queue_file: Path, start: Any, out: Any) -> None:
    start.wait()  # all at once: the claims overlap
    out.put(list(queued_sites(queue_file)))


def test_processes_claiming_at_once_take_every_site_exactly_once(tmp_path: Path) -> None:
    queue_file = tmp_path / "queue.txt"
    sites = [f"site_{i:04d}" for i in range(2000)]
    queue_file.write_text("\n".join(sites), encoding="utf-8")
    context = multiprocessing.get_context("spawn")
    out, start = context.Queue(), context.Barrier(4)
    workers = [context.Process(target=_claim_all, args=(queue_file, start, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    claimed = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    taken = [site for share in claimed for site in share]
    assert sorted(taken) == sites  # each once: none twice, none lost
    assert all(share == sorted(share) for share in claimed)  # each took them in queue order
    assert queue_file.read_text(encoding="utf-8") == ""
