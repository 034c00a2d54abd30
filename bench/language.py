"""Accuracy and cost of ``detect_language`` on the written samples (tests/fixtures/language_samples.yaml).

Usage: python bench/language.py [--rev GIT_REV]
With ``--rev`` the function is taken from that revision's pipelines/extract.py (e.g. the
script-letter guess before issue 14) and scored on today's samples. The timing is per call
on the samples and on a 3,000-character article body (what extraction passes at most).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = yaml.safe_load((ROOT / "tests" / "fixtures" / "language_samples.yaml").read_text("utf-8"))["samples"]


def detector(rev: str | None) -> Callable[[str], str | None]:
    if rev is None:
        from pipelines.extract import detect_language

        return detect_language
    source = subprocess.run(["git", "show", f"{rev}:pipelines/extract.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("extract_at_rev")
    exec(compile(source, f"{rev}:pipelines/extract.py", "exec"), module.__dict__)  # noqa: S102
    return module.detect_language


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rev")
    args = parser.parse_args()
    detect = detector(args.rev)
    detect("warm up: the model loads once per process")
    right = 0
    for sample in SAMPLES:
        got = detect(sample["text"])
        right += got == sample["lang"]
        if got != sample["lang"]:
            print(f"  wrong: want {sample['lang']} got {got}: {sample['why']}")
    print(f"accuracy: {right}/{len(SAMPLES)} = {right / len(SAMPLES):.2f}")
    body = " ".join(s["text"] for s in SAMPLES if s["lang"] == "ru") * 20
    for label, texts in (("samples", [s["text"] for s in SAMPLES]), ("3,000-char body", [body[:3000]])):
        rounds = 200
        start = time.perf_counter()
        for _ in range(rounds):
            for text in texts:
                detect(text)
        per = (time.perf_counter() - start) / (rounds * len(texts))
        print(f"time per call ({label}): {per * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
