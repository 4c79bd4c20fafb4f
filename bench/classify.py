"""Triage benchmark: batch classification throughput and single-text triage latency.

``python -m bench.classify [--quick]``; one core (BLAS/OpenMP threads set to 1 before numpy
loads). Texts are the repository's evaluation texts (Chinese reviews and English complaints)
cycled to the wanted count. The baseline, measured in the same run on the same texts, is
jieba segmentation alone (the unavoidable first step for Chinese); ``ratio`` is
classify texts/s over segmentation texts/s. Progress lines first; the last line is one JSON
object.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

from bench.edge import percentile_ms, rate, say  # noqa: E402


def main() -> None:
    """Warm up, time batch classification, segmentation and single-text latency."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_batch, n_single = (20_000, 2_000) if args.quick else (100_000, 10_000)
    from hub.triage import data
    from hub.triage.classifier import classify, classify_one
    from hub.triage.model import load
    from hub.triage.tokens import segmenter

    pool = [r.text for r in data.zh_eval()] + [r.text for r in data.en_eval()]
    texts = [pool[k % len(pool)] for k in range(n_batch)]
    say(f"{len(pool)} distinct texts, {n_batch} per batch run, {n_single} single calls")
    load()
    classify(pool[:50])  # model and jieba dictionary loaded, caches warm
    cut = segmenter().lcut
    start = time.perf_counter()
    for text in texts:
        cut(text, HMM=False)
    seg_s = time.perf_counter() - start
    say(f"baseline jieba segmentation: {rate(n_batch, seg_s)} texts/s")
    start = time.perf_counter()
    for k in range(0, n_batch, 1000):
        classify(texts[k:k + 1000])
    cls_s = time.perf_counter() - start
    say(f"classify (batches of 1000): {rate(n_batch, cls_s)} texts/s")
    rng = random.Random(5)
    samples = []
    for _ in range(n_single):
        text = pool[rng.randrange(len(pool))]
        t0 = time.perf_counter_ns()
        classify_one(text)
        samples.append(time.perf_counter_ns() - t0)
    say(f"single-text triage p99: {percentile_ms(samples, 99)} ms")
    result = {
        "mode": "quick" if args.quick else "full",
        "texts": n_batch,
        "texts_per_s": rate(n_batch, cls_s),
        "triage_p50_ms": percentile_ms(samples, 50),
        "triage_p99_ms": percentile_ms(samples, 99),
        "baseline": "jieba segmentation alone, same texts",
        "baseline_texts_per_s": rate(n_batch, seg_s),
        "ratio": round(seg_s / cls_s, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
