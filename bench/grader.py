"""Grading latency: features + TFLite invoke + safety rules, vs a bare ``interpreter.invoke()``.

``python -m bench.grader [--quick]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from edge.features import features, vector
from edge.grader_data import dataset
from edge.tflite_grader import MODELS_DIR, TfliteGrader


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Time both paths on the same inputs, interleaved, and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 5_000 if args.quick else 50_000
    grader = TfliteGrader(MODELS_DIR / "grader-1.tflite")
    facts = [e.facts for e in dataset(11, 1000)]
    import numpy as np

    interpreter, inp, out = grader.interpreter  # the same loaded model, driven bare
    prepared = [np.array([vector(features(f))[0]], dtype=np.float32) for f in facts]
    grade_ms, invoke_ms = [], []
    rng = random.Random(3)
    for _ in range(n):
        k = rng.randrange(len(facts))
        start = time.perf_counter_ns()
        grader.grade(features(facts[k]))
        grade_ms.append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        interpreter.set_tensor(inp, prepared[k])
        interpreter.invoke()
        interpreter.get_tensor(out)
        invoke_ms.append((time.perf_counter_ns() - start) / 1e6)
    grade_p99, invoke_p99 = _percentile(grade_ms, 0.99), _percentile(invoke_ms, 0.99)
    result = {
        "mode": "quick" if args.quick else "full", "items": n, "model": grader.version,
        "grade_p50_ms": round(_percentile(grade_ms, 0.5), 4),
        "grade_p99_ms": round(grade_p99, 4),
        "invoke_p50_ms": round(_percentile(invoke_ms, 0.5), 4),
        "invoke_p99_ms": round(invoke_p99, 4),
        "grade_to_invoke_p99_ratio": round(round(grade_p99, 4) / round(invoke_p99, 4), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
