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


def phases(stacks: list[tuple[list[str], int]], markers: list[str]) -> str:
    """Share of samples per marker: a stack counts for the first marker (in the given
    order) that one of its frames contains."""
    total = sum(n for _, n in stacks) or 1
    counts: Counter[str] = Counter()
    for frames, n in stacks:
        hit = next((m for m in markers if any(m in f for f in frames)), "(other)")
        counts[hit] += n
    return "\n".join(f"{100 * n / total:6.1f}  {m}" for m, n in counts.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profiles", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--phases", default="", help="comma-separated frame markers to group samples by"
    )
    a = parser.parse_args()
    stacks = load(a.files)
    if a.phases:
        print(phases(stacks, a.phases.split(",")))
    else:
        print(summarize(stacks, a.top))


if __name__ == "__main__":
    main()
