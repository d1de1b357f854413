"""The hook every benchmark script uses to hand its figures to `bench/all`.

`bench/all` runs each script with KILN_BENCH_RECORD naming a file; `record()` appends one JSON
line per figure to it (and does nothing when the variable is unset, so the scripts still run
on their own). A figure is a kiln measurement and, when there is one, the baseline measured in
the same run; `bench/all` prints them as one table with the ratio kiln / baseline.

    import record
    record.record("no-op `kiln build`", kiln_ms, "ms",
                  baseline="no-op `cargo build --target wasm32-wasip2`", baseline_value=cargo_ms,
                  goal="≤ 1.1×")

`higher_is_better=True` for throughputs (requests/s): the ratio is still kiln / baseline and
the goal reads accordingly.
"""

import json
import os


def record(figure, value, unit, baseline=None, baseline_value=None, goal=None, higher_is_better=False):
    path = os.environ.get("KILN_BENCH_RECORD")
    if not path:
        return
    row = {
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "goal": goal,
        "higher_is_better": higher_is_better,
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
