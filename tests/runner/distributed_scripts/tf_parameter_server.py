"""TensorFlow 2 ParameterServerStrategy: the chief coordinates a few steps on 2 workers with 1
parameter server; workers and the parameter server only serve (they never return)."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

tf_config = json.loads(os.environ["TF_CONFIG"])
task, cluster = tf_config["task"], tf_config["cluster"]
os.makedirs("pids", exist_ok=True)
with open(f"pids/{task['type']}_{task['index']}.pid", "w") as f:
    f.write(str(os.getpid()))
resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
if task["type"] in ("worker", "ps"):
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=task["type"],
        task_index=task["index"],
        protocol="grpc",
        start=True,
    )
    print(f"{task['type']} {task['index']} serving", flush=True)
    server.join()

strategy = tf.distribute.ParameterServerStrategy(resolver)
coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
with strategy.scope():
    counter = tf.Variable(0.0)


@tf.function
def step() -> tf.Tensor:
    counter.assign_add(1.0)
    return counter.read_value()


for _ in range(6):
    coordinator.schedule(step)
coordinator.join()
os.makedirs("outputs", exist_ok=True)
with open("outputs/chief.txt", "w") as f:
    f.write(f"{counter.numpy()} {len(cluster['ps'])} {len(cluster['worker'])}")
print(f"chief: counter {counter.numpy()} after 6 steps", flush=True)
