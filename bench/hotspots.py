"""Where the time went in `--profile` output: `python -m bench.hotspots FILE... [--within F]`.

Reads py-spy's collapsed stacks (`--format raw`, idle threads included) and prints the
share of samples by innermost frame and by function anywhere on the stack, counting only
stacks that pass through `--within` (e.g. `receive_order_event`, `drain`)."""

from __future__ import annotations

import argparse
import re
from collections import Counter

OURS = re.compile(r"\((bot|jobs)/|peewee|redis/|limits/|rq/|aiohttp|psycopg|sqlite|json/")


def load(paths: list[str], within: str) -> tuple[int, Counter, Counter]:
    total, leaf, anywhere = 0, Counter(), Counter()
    for path in paths:
        with open(path) as f:
            for line in f:
                stack, _, count = line.rstrip().rpartition(" ")
                if not stack or not count.isdigit() or (within and within not in stack):
                    continue
                frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
                total += int(count)
                leaf[frames[-1]] += int(count)
                for frame in set(frames):
                    anywhere[frame] += int(count)
    return total, leaf, anywhere


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--within", default="", help="only stacks through this function")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    total, leaf, anywhere = load(args.files, args.within)
    print(f"{total} samples{f' through {args.within}' if args.within else ''}")
    print("innermost frame:")
    for frame, n in leaf.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {frame}")
    print("anywhere on the stack (our code and its drivers):")
    shown = [(f, n) for f, n in anywhere.most_common() if OURS.search(f)][: args.top * 2]
    for frame, n in shown:
        print(f"  {100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
