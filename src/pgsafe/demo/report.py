"""The demo's report: steps narrated as they run, checks collected for the summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pgsafe.verify.report import Check


@dataclass
class DemoReport:
    say: Callable[[str], None]
    sections: list[tuple[str, list[Check]]] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.sections.append((title, []))
        self.say("")
        self.say(f"== {title}")

    def step(self, text: str) -> None:
        self.say(f"   {text}")

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if not self.sections:
            self.section("checks")
        self.sections[-1][1].append(Check(name, ok, detail))
        self.say(f"   {'✓' if ok else '✗'} {name}" + (f" — {detail}" if detail else ""))
        return ok

    @property
    def checks(self) -> list[Check]:
        return [c for _, cs in self.sections for c in cs]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def summary(self) -> str:
        lines = ["", "VERIFICATION REPORT", "==================="]
        for title, checks in self.sections:
            if not checks:
                continue
            lines.append(title)
            lines += [
                f"  {'✓' if c.ok else '✗'} {c.name}" + (f": {c.detail}" if c.detail else "")
                for c in checks
            ]
        passed = sum(c.ok for c in self.checks)
        verdict = "ALL CHECKS PASSED" if self.ok else "SOME CHECKS FAILED"
        lines.append(f"{verdict} ({passed}/{len(self.checks)})")
        return "\n".join(lines)
