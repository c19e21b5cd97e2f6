"""Writes a lot of output fast, on both streams."""

import sys

for i in range(200_000):
    print(f"line {i:06d} " + "x" * 40)
    if i % 1000 == 0:
        print(f"err {i}", file=sys.stderr)
print("flood done")
