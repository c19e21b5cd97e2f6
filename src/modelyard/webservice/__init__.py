"""Deployed models as scoring web services (v1's ``azureml.core.webservice``).

``Model.deploy`` copies the models' files (through the workspace's backend) and the entry
script into a private folder of the service under the workspace folder
(``services/<name>/``), resolves its environment as a run's is resolved (modelyard's own
Python, or a built one from the environment cache when the Environment asks for packages it
lacks), and starts the scoring process (:mod:`modelyard.serving`). The service is recorded
in ``services/<name>.json`` (0600, written atomically): its models, settings, port and
process, so ``Webservice(ws, name)`` finds it, a dead process shows as Unhealthy, and
``start()`` (``modelyard service start NAME``) starts it again after a reboot.

``AciWebservice.deploy_configuration`` maps onto the same local service, its ``cpu_cores`` and
``memory_gb`` kept as limits by the service's process (:mod:`modelyard.serving.limits`); so
does ``AksWebservice``'s without a compute target (a worker per replica). Services belong to
embedded workspaces; a server's workspace is refused.

With ``compute_target=`` (an ``AmlCompute``: a Ray cluster) in ``AksWebservice`` or
``AciWebservice`` deployment configurations, the service is a Ray Serve application on that
cluster, named after it, at ``/<name>`` of Serve's proxy on the cluster's head
(``compute/ray/serving.py`` on this side, ``compute/ray/serve_control.py`` talking to Ray,
``serving/ray_replica.py`` in each replica): ``num_replicas`` replicas of ``cpu_cores`` each
(or Serve's autoscaling between ``autoscale_min_replicas`` and ``autoscale_max_replicas``),
each running the same scoring app as a local service, its ``init()`` once. The service's
folder (models and source) reaches the replicas' nodes as their ``working_dir``; the keys'
digests as their ``user_config``. The record says where it runs (``compute``); ``state`` is Serve's,
``get_logs()`` the replicas' output, ``delete()`` deletes the application (and Serve, once it
has no other).

Example::

    from modelyard.webservice import AksWebservice, LocalWebservice, Webservice

    config = LocalWebservice.deploy_configuration(port=6789, workers=2)
    service = Model.deploy(ws, "tf-mnist-svc", [model], inference_config, config)
    service.wait_for_deployment(show_output=True)
    service.run(input_data=json.dumps({"data": images[:10].tolist()}))
    Webservice.list(ws)          # [Webservice(workspace='demo', name='tf-mnist-svc', ...)]
    service.delete()

    config = AksWebservice.deploy_configuration(compute_target=cluster, num_replicas=2,
                                                cpu_cores=0.5, memory_gb=0.5)
    service = Model.deploy(ws, "svc", [model], inference_config, config)
    service.wait_for_deployment(show_output=True)
    service.scoring_uri          # 'http://127.0.0.1:52961/svc/score'
"""

from modelyard.errors import WebserviceException
from modelyard.serving.configuration import DeploymentConfiguration
from modelyard.webservice.aci import AciWebservice
from modelyard.webservice.aks import AksWebservice
from modelyard.webservice.local import LocalWebservice
from modelyard.webservice.webservice import Webservice

__all__ = [
    "AciWebservice",
    "AksWebservice",
    "DeploymentConfiguration",
    "LocalWebservice",
    "Webservice",
    "WebserviceException",
]
