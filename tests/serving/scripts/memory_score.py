"""Holds as many megabytes as each request asks for, touched so that they are resident."""

import json

held = []


def init():
    pass


def run(raw_data):
    megabytes = json.loads(raw_data)["megabytes"]
    held.append(bytearray(b"\1" * (megabytes << 20)))
    return {"held_mb": sum(len(block) for block in held) >> 20}
