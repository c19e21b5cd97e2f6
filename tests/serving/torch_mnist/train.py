"""Train a small PyTorch network on 1,000 MNIST images; save its weights under ./outputs/model
and its own digits for the first 10 test images in ./outputs/predictions.json."""

import argparse
import gzip
import json
import os
from pathlib import Path

import numpy as np
import torch
from net import network


def images(path: Path, count: int) -> torch.Tensor:
    data = gzip.decompress(path.read_bytes())
    pixels = np.frombuffer(data, np.uint8, offset=16)[: count * 784].reshape(count, 784)
    return torch.tensor(pixels / 255.0, dtype=torch.float32)


parser = argparse.ArgumentParser()
parser.add_argument("--data-folder", type=Path, required=True)
args = parser.parse_args()
x = images(args.data_folder / "train-images-idx3-ubyte.gz", 1000)
raw = gzip.decompress((args.data_folder / "train-labels-idx1-ubyte.gz").read_bytes())
y = torch.tensor(np.frombuffer(raw, np.uint8, offset=8)[:1000].astype(np.int64))
torch.manual_seed(0)
model = network()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for _ in range(5):
    for start in range(0, 1000, 50):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            model(x[start : start + 50]), y[start : start + 50]
        )
        loss.backward()
        optimizer.step()
os.makedirs("outputs/model", exist_ok=True)
torch.save(model.state_dict(), "outputs/model/mnist.pt")
model.eval()
with torch.no_grad():
    test = images(args.data_folder / "t10k-images-idx3-ubyte.gz", 10)
    digits = model(test).argmax(dim=1).tolist()
Path("outputs/predictions.json").write_text(json.dumps(digits))
