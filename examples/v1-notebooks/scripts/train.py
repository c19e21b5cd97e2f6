"""Fits a ridge regression on generated data with numpy; logs its error, saves the weights."""

import json
import os

import numpy as np

from modelyard import Run

run = Run.get_context()
alpha = float(os.environ.get("ALPHA", "1.0"))
rng = np.random.default_rng(0)
features = rng.normal(size=(200, 3))
target = features @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=200)
weights = np.linalg.solve(features.T @ features + alpha * np.eye(3), features.T @ target)
mse = float(np.mean((features @ weights - target) ** 2))
run.log("alpha", alpha)
run.log("mse", mse)
print(f"alpha {alpha}: mse {mse:.4f}")
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.json", "w") as f:
    json.dump({"weights": weights.tolist()}, f)
