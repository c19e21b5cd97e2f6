"""v1's ``azureml.contrib.services.aml_response``: what a ``@rawhttp`` ``run`` answers.

Example::

    from modelyard.contrib.services.aml_response import AMLResponse

    AMLResponse(png_bytes, 200, {"Content-Type": "image/png"})
"""

from __future__ import annotations

from modelyard.serving.raw_http import AMLResponse

__all__ = ["AMLResponse"]
