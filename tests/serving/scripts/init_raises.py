def init():
    raise RuntimeError("the model file is corrupt (a test)")


def run(raw_data):
    return raw_data
