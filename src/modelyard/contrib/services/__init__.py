"""v1's ``azureml.contrib.services``: the raw-HTTP style of scoring scripts.

``aml_request`` holds ``AMLRequest`` and ``rawhttp``, ``aml_response`` holds ``AMLResponse``
(both from :mod:`modelyard.serving.raw_http`).
"""
