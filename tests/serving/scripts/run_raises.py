import json


def init():
    pass


def run(raw_data):
    data = json.loads(raw_data)
    if "boom" in data:
        raise ValueError("cannot score a boom (a test)")
    return {"ok": True}
