"""The walkthrough's scoring script: the Keras MNIST model answers digits for images."""

import json
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

model = None


def init():
    global model
    # As v1's notebook: the registered folder 'model' under AZUREML_MODEL_DIR.
    model = tf.keras.models.load_model(
        os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "mnist.keras")
    )


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"], dtype=np.float32)
    return model.predict(data, verbose=0).argmax(axis=1).tolist()
