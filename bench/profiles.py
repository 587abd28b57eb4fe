"""Summarize py-spy collapsed stacks: where a profiled process spent its time.

``python -m bench.profiles FILE...`` prints the functions with the largest
inclusive and self shares of the samples (idle event-loop waits included, so
"share" reads as a share of wall time on the sampled thread).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def load(paths: list[Path]) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks.append((stack.split(";"), int(count)))
    return stacks


def summarize(stacks: list[tuple[list[str], int]], top: int) -> str:
    total = sum(n for _, n in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, n in stacks:
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    lines = [f"{total} samples", "", "self %  function (file:line)"]
    lines += [f"{100 * n / total:6.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "incl %  function (file:line)"]
    lines += [f"{100 * n / total:6.1f}  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profiles", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    a = parser.parse_args()
    print(summarize(load(a.files), a.top))


if __name__ == "__main__":
    main()
