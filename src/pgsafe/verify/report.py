"""The result of a verification: named checks, each ✓ or ✗ with a detail."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pgsafe.models.backup import Fingerprints
from pgsafe.repo.catalog import fingerprints_doc


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class VerifyResult:
    id: str
    checks: list[Check] = field(default_factory=list)
    duration_s: float = 0.0
    fingerprint: Fingerprints = field(default_factory=dict)  # a drill's, per database

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> Check:
        c = Check(name, ok, detail)
        self.checks.append(c)
        return c

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "ok": self.ok,
            "duration_s": round(self.duration_s, 2),
            "checks": [asdict(c) for c in self.checks],
            **({"fingerprint": fingerprints_doc(self.fingerprint)} if self.fingerprint else {}),
        }

    def render(self, title: str) -> str:
        width = max((len(c.name) for c in self.checks), default=10)
        lines = [title, "=" * len(title)]
        for c in self.checks:
            mark = "✓" if c.ok else "✗"
            lines.append(f"  {mark} {c.name.ljust(width)}  {c.detail}")
        passed = sum(c.ok for c in self.checks)
        verdict = "PASSED" if self.ok else "FAILED"
        lines.append(f"{verdict}: {passed}/{len(self.checks)} checks ({self.duration_s:.1f} s)")
        return "\n".join(lines)
