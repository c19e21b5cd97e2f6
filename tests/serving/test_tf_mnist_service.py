"""The walkthrough's last step: the MNIST model trained by a real run, registered, deployed
locally, and scored over HTTP with the digits the model itself gives."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from modelyard import Experiment, ScriptRunConfig, Workspace
from modelyard.model import InferenceConfig, Model
from modelyard.webservice import LocalWebservice, Webservice
from tests.examples.test_tf_mnist_script import load_mnist_data
from tests.serving.conftest import port_free, processes_of_group

HERE = Path(__file__).parent / "keras_mnist"


def test_the_mnist_model_of_a_run_answers_its_own_digits(
    workspace: Workspace, tmp_path: Path
) -> None:
    pytest.importorskip("tensorflow")
    mnist = load_mnist_data().shared_mnist_dir()
    if mnist is None:
        pytest.skip("no MNIST sample beside the repository (shared/data/mnist)")
    run = Experiment(workspace, "tf-mnist").submit(
        ScriptRunConfig(
            source_directory=HERE,
            script="train.py",
            arguments=["--data-folder", str(mnist)],
            compute_target="local",
        )
    )
    run.wait_for_completion(show_output=False)
    assert run.get_status() == "Completed"
    model = run.register_model(model_name="tf-dnn-mnist", model_path="outputs/model")
    run.download_file("outputs/predictions.json", str(tmp_path / "predictions.json"))
    expected = json.loads((tmp_path / "predictions.json").read_text())

    service = Model.deploy(
        workspace,
        "tf-mnist-svc",
        [model],
        InferenceConfig(entry_script="score.py", source_directory=HERE),
        LocalWebservice.deploy_configuration(),
    )
    service.wait_for_deployment(show_output=True)
    data = gzip.decompress((mnist / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(data, np.uint8, offset=16)[: 10 * 784].reshape(10, 784) / 255.0
    digits = service.run(input_data=json.dumps({"data": images.tolist()}))
    assert digits == expected and len(digits) == 10
    assert Webservice(workspace, "tf-mnist-svc").models == ["tf-dnn-mnist:1"]

    group = json.loads((workspace.folder / "services" / "tf-mnist-svc.json").read_text())["pid"]
    service.delete()
    assert processes_of_group(group) == [] and port_free(service.port)
