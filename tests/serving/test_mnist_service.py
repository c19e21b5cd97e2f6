"""The walkthrough's last step: an MNIST model trained by a real run (Keras, then PyTorch),
registered, deployed locally, and scored over HTTP with the digits the model itself gives."""

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

# The framework, its scripts' folder and the name its model is registered by.
FOLDERS = {"tensorflow": ("keras_mnist", "tf-dnn-mnist"), "torch": ("torch_mnist", "torch-mnist")}


@pytest.mark.parametrize("framework", sorted(FOLDERS))
def test_the_mnist_model_of_a_run_answers_its_own_digits(
    workspace: Workspace, tmp_path: Path, framework: str
) -> None:
    pytest.importorskip(framework)
    folder, model_name = FOLDERS[framework]
    here = Path(__file__).parent / folder
    mnist = load_mnist_data().shared_mnist_dir()
    if mnist is None:
        pytest.skip("no MNIST sample beside the repository (shared/data/mnist)")
    run = Experiment(workspace, "tf-mnist").submit(
        ScriptRunConfig(
            source_directory=here,
            script="train.py",
            arguments=["--data-folder", str(mnist)],
            compute_target="local",
        )
    )
    run.wait_for_completion(show_output=False)
    assert run.get_status() == "Completed"
    model = run.register_model(model_name=model_name, model_path="outputs/model")
    run.download_file("outputs/predictions.json", str(tmp_path / "predictions.json"))
    expected = json.loads((tmp_path / "predictions.json").read_text())

    service = Model.deploy(
        workspace,
        f"{framework}-mnist-svc",
        [model],
        InferenceConfig(entry_script="score.py", source_directory=here),
        LocalWebservice.deploy_configuration(),
    )
    service.wait_for_deployment(show_output=True)
    data = gzip.decompress((mnist / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(data, np.uint8, offset=16)[: 10 * 784].reshape(10, 784) / 255.0
    digits = service.run(input_data=json.dumps({"data": images.tolist()}))
    assert digits == expected and len(digits) == 10
    assert Webservice(workspace, f"{framework}-mnist-svc").models == [f"{model_name}:1"]

    record = workspace.folder / "services" / f"{framework}-mnist-svc.json"
    group = json.loads(record.read_text())["pid"]
    service.delete()
    assert processes_of_group(group) == [] and port_free(service.port)
