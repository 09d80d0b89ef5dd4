"""A stand-in for the pilot communities' vendor systems: HTTP APIs, file drops, faults, ground truth.

Python API (simulator/README.md): `World(seed)`, `world.generate(site, kind, day)`,
`world.truth(site, kind, start, end)`, `world.episodes(site, start, end)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.world import World

__all__ = ["World"]


def __getattr__(name: str) -> Any:
    if name == "World":
        from simulator.world import World

        return World
    raise AttributeError(name)
