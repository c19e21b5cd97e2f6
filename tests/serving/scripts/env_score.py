import os
import sys


def init():
    pass


def run(raw_data):
    return {
        "greeting": os.environ.get("GREETING"),
        "python": sys.executable,
        "secret": os.environ.get("MY_API_TOKEN"),
    }
