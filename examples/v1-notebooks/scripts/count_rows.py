"""Counts the data rows of the CSV files in the folder given as --data; logs the count."""

import argparse
import glob
import os

from modelyard import Run

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
args = parser.parse_args()
run = Run.get_context()
rows = 0
for path in glob.glob(os.path.join(args.data, "**", "*.csv"), recursive=True):
    with open(path) as f:
        rows += sum(1 for _ in f) - 1  # the header
print(f"{rows} rows in {args.data}")
run.log("rows", rows)
