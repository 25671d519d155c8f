"""The README's campaign table from kept `campaign.json` files (standard library only).

    python3 docs/reliability/table.py docs/reliability/infra-seed8 docs/reliability/infra-seed9

One row per nemesis over every cycle of the given campaigns: cycles, acknowledged writes lost,
confirmed messages lost, duplicated deliveries, split-brain samples, median and worst heal to
healthy, failed cycles. Then the totals.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def rows(folders: list[Path]) -> dict[str, list[dict[str, object]]]:
    by: dict[str, list[dict[str, object]]] = defaultdict(list)
    for folder in folders:
        for cycle in json.loads((folder / "campaign.json").read_text())["cycles"]:
            by[str(cycle["nemesis"])].append(cycle)
    return by


def num(cycle: dict[str, object], key: str) -> float:
    value = cycle["figures"].get(key)  # type: ignore[attr-defined]
    return float(value) if isinstance(value, int | float) else 0.0


def main(argv: list[str]) -> int:
    by = rows([Path(a) for a in argv])
    print("| nemesis | cycles | lost writes | lost messages | duplicates | split-brain samples | heal median (s) "
          "| heal worst (s) | failed |")
    print("|---|---|---|---|---|---|---|---|---|")
    total = defaultdict(float)
    for name in sorted(by):
        cs = by[name]
        heals = [float(h) for c in cs if isinstance(h := c["figures"].get("heal_to_healthy_s"), int | float)]  # type: ignore[attr-defined]
        lost_w = sum(num(c, "db_lost") for c in cs)
        lost_m = sum(num(c, "messages_lost") for c in cs)
        dup = sum(num(c, "messages_duplicated") for c in cs)
        split = sum(num(c, "split_brain_samples") for c in cs)
        failed = sum(1 for c in cs if not c["ok"])
        med = f"{statistics.median(heals):.1f}" if heals else "-"
        worst = f"{max(heals):.1f}" if heals else "-"
        print(f"| `{name}` | {len(cs)} | {lost_w:.0f} | {lost_m:.0f} | {dup:.0f} | {split:.0f} | {med} | {worst} "
              f"| {failed} |")
        for key, value in (("cycles", len(cs)), ("writes", sum(num(c, "db_acked") for c in cs)),
                           ("messages", sum(num(c, "messages_confirmed") for c in cs)), ("lost_writes", lost_w),
                           ("lost_messages", lost_m), ("duplicates", dup), ("split", split), ("failed", failed)):
            total[key] += value
    print()
    print(", ".join(f"{k} {v:.0f}" for k, v in total.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
