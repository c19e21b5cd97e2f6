"""Writes the environment the run's process got to outputs/env.json."""

import json
import os

os.makedirs("outputs", exist_ok=True)
with open("outputs/env.json", "w") as f:
    json.dump(dict(os.environ), f)
