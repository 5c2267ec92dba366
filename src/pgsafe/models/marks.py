"""Named restore points as the repository records them (``marks/NAME.json``): written
by ``pgsafe mark`` (:mod:`pgsafe.physical.marks`), read back and checked by
:mod:`pgsafe.recovery.inventory` for ``recover --name`` and ``info``."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RestorePoint:
    """A restore point as the catalog records it (``marks/NAME.json``).  ``pgsafe mark``
    always records its timeline and segment; a record read without them (not needed to
    plan a recovery) has them None, and they stay absent from its JSON."""

    name: str
    lsn: str
    lsn_int: int
    time: str
    timeline: int | None
    segment: str | None

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class DamagedMark:
    """A restore point record that cannot be read, by name (or its escaped file stem)."""

    name: str
    damaged: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "damaged": self.damaged}
