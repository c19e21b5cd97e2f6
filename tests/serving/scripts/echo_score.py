import json
import os


def init():
    pass


def run(raw_data):
    return {"pid": os.getpid(), "length": len(raw_data), "echo": json.loads(raw_data)}
