"""Apply docs/protocol.md's pilot rules to a finished pilot sweep (``experiment=budget_curve``).

    python scripts/protocol_pilot.py outputs/sweeps/budget_curve/<date> [--json pilot.json]
    python scripts/protocol_pilot.py outputs/sweeps/pairs_pilot/<date> --headroom   # amendment 7's criterion

The rules (the budget rule, the seed rule, the headroom criterion) are ``experiments.analysis.pilot``'s.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from experiments.analysis.pilot import protocol_pilot
from experiments.errors import StarbenchError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="the pilot's sweep dir (experiment=budget_curve)")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    parser.add_argument("--headroom", action="store_true", help="amendment 7's headroom criterion (a pilot of one "
                        "budget, e.g. experiment=pairs_pilot) instead of the budget rule")
    args = parser.parse_args()
    try:
        print(protocol_pilot(args.sweep_dir, args.headroom, args.json))
    except StarbenchError as e:
        parser.error(str(e))


if __name__ == "__main__":
    main()
