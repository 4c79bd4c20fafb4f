"""Train the grader and export it as a quantized ``.tflite`` with its model card.

Needs TensorFlow (``pip install 'coldloop[train]'``); the gateway and its tests only need the
exported file and a TFLite interpreter. Run: ``coldloop edge train-grader --out edge/models``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edge.features import FEATURE_VERSION, NAMES, RANGES, features, vector
from edge.grader_data import CLASSES, LABEL_NOISE, Example, dataset

SCRAP_RECALL_TARGET = 0.98


def _arrays(examples: list[Example], truth: bool = False) -> tuple[Any, Any]:
    import numpy as np

    x = np.array([vector(features(e.facts))[0] for e in examples], dtype=np.float32)
    y = np.array([CLASSES.index(e.truth if truth else e.grade) for e in examples],
                 dtype=np.int64)
    return x, y


def train(out_dir: Path, version: str = "grader-1", seed: int = 7,
          size: int = 40_000) -> dict[str, Any]:
    """Train, pick the scrap threshold for the recall target, export model + card; return card."""
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    examples = dataset(seed, size)
    split = int(size * 0.7), int(size * 0.85)
    x_train, y_train = _arrays(examples[:split[0]])
    # Labels carry noise; the threshold and the reported metrics use the true grades.
    x_val, y_val = _arrays(examples[split[0]:split[1]], truth=True)
    x_test, y_test = _arrays(examples[split[1]:], truth=True)

    norm = tf.keras.layers.Normalization()
    norm.adapt(x_train)
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(len(NAMES),), name="features"),
        norm,
        tf.keras.layers.Dense(32, activation="relu"),
        tf.keras.layers.Dense(16, activation="relu"),
        tf.keras.layers.Dense(len(CLASSES), activation="softmax", name="scores"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Missing a spoiled item costs more than a false alarm: weigh scrap up.
    model.fit(x_train, y_train, epochs=25, batch_size=256, verbose=0,
              class_weight={0: 1.0, 1: 1.5, 2: 4.0}, validation_data=(x_val, y_val))

    threshold = _scrap_threshold(model.predict(x_val, verbose=0), y_val)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic-range quantized weights
    blob = converter.convert()

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{version}.tflite"
    model_path.write_bytes(blob)
    scores = _tflite_scores(blob, x_test)
    predicted = np.array([decide(row, threshold) for row in scores])
    card = _card(version, seed, size, threshold, predicted, y_test, blob, tf.__version__)
    (out_dir / f"{version}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def decide(scores: Any, scrap_threshold: float) -> int:
    """Class index from scores: scrap once its score reaches the threshold, else the argmax."""
    if scores[2] >= scrap_threshold:
        return 2
    return int(max(range(2), key=lambda k: scores[k]))


def _scrap_threshold(scores: Any, y: Any) -> float:
    """The highest threshold whose scrap recall on validation data meets the target."""
    scrap = sorted(float(s[2]) for s, label in zip(scores, y, strict=True) if label == 2)
    index = int((1 - SCRAP_RECALL_TARGET) * len(scrap))
    return max(0.01, min(0.5, scrap[index] - 1e-6))


def _tflite_scores(blob: bytes, x: Any) -> Any:
    import numpy as np
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=blob)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for row in x:
        interpreter.set_tensor(inp["index"], row.reshape(1, -1))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.array(rows)


def _card(version: str, seed: int, size: int, threshold: float, predicted: Any, y: Any,
          blob: bytes, tf_version: str) -> dict[str, Any]:
    labels = [c.value for c in CLASSES]
    confusion = [[int(((y == t) & (predicted == p)).sum()) for p in range(3)] for t in range(3)]
    recall = {labels[t]: round(confusion[t][t] / max(1, sum(confusion[t])), 4) for t in range(3)}
    return {
        "version": version,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "feature_version": FEATURE_VERSION,
        "inputs": {"names": list(NAMES), "ranges": RANGES, "dtype": "float32",
                   "shape": [1, len(NAMES)]},
        "outputs": {"classes": labels, "scrap_threshold": round(threshold, 6)},
        "training_data": {
            "generator": "edge.grader_data.dataset (shelf-life model, protocols/coldchain.py)",
            "seed": seed, "size": size, "split": "70/15/15 train/validation/held-out test",
            "label_noise": LABEL_NOISE, "metrics_against": "true grades (noise-free)",
            "class_weights": {"resell": 1.0, "discount": 1.5,
                                                         "scrap": 4.0}},
        "metrics_held_out": {
            "accuracy": round(float((predicted == y).mean()), 4), "recall": recall,
            "confusion_matrix": {"rows_true_cols_predicted": labels, "counts": confusion},
            "scrap_recall_target": SCRAP_RECALL_TARGET},
        "limits": [
            "trained on generated data, not on recorded gradings: check against real returns",
            "cold-chain summaries come from the hub's manifest; without one the safety rules "
            "send high-risk items to a check by hand",
            "the scrap threshold trades discount/resell precision for scrap recall",
        ],
        "tensorflow": tf_version,
    }
