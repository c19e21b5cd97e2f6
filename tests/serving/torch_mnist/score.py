"""The PyTorch MNIST model answers digits for images."""

import json
import os

import torch
from net import network

model = None


def init():
    global model
    model = network()
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "mnist.pt")
    model.load_state_dict(torch.load(path, weights_only=True))
    model.eval()


def run(raw_data):
    data = torch.tensor(json.loads(raw_data)["data"], dtype=torch.float32)
    with torch.no_grad():
        return model(data).argmax(dim=1).tolist()
