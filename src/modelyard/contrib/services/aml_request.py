"""v1's ``azureml.contrib.services.aml_request``: ``@rawhttp`` and the request it hands ``run``.

Example::

    from modelyard.contrib.services.aml_request import AMLRequest, rawhttp

    @rawhttp
    def run(request: AMLRequest):
        return {"method": request.method, "n": request.args.get("n", type=int)}
"""

from __future__ import annotations

from modelyard.serving.raw_http import AMLRequest, rawhttp

__all__ = ["AMLRequest", "rawhttp"]
