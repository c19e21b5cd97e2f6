"""Prints the TF_CONFIG a TensorFlow process sees and keeps it in outputs/; no TensorFlow needed.

Workers wait until every parameter server has written its own (a poll with a deadline), so the
run's outputs hold all of them; parameter servers then serve until the run stops them."""

import json
import os
import sys
import time

tf_config = json.loads(os.environ["TF_CONFIG"])
task = tf_config["task"]
print(f"TF_CONFIG of {task['type']} {task['index']}: {json.dumps(tf_config)}", flush=True)
os.makedirs("outputs", exist_ok=True)
index = os.environ["MODELYARD_PROCESS_INDEX"]
with open(f"outputs/tf_config_{index}.json.tmp", "w") as f:
    json.dump(tf_config, f)
os.replace(f"outputs/tf_config_{index}.json.tmp", f"outputs/tf_config_{index}.json")
if task["type"] == "ps":
    while True:  # a server: stopped when the workers have finished
        time.sleep(1)
total = int(os.environ["MODELYARD_PROCESS_COUNT"])
deadline = time.monotonic() + 120
while len([n for n in os.listdir("outputs") if n.endswith(".json")]) < total:
    if time.monotonic() > deadline:
        sys.exit("the other processes did not start within 120 s")
    time.sleep(0.05)
