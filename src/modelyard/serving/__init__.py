"""The scoring service runtime for deployed models: an ASGI app around a v1 entry script.

It imports nothing of the workspace: the service process reads one settings file
(:mod:`modelyard.serving.settings`) and the model files already copied beside it, so it runs
in whatever environment the deployment chose. :mod:`modelyard.serving.process` starts and
stops that process for the SDK (:mod:`modelyard.webservice`).
"""
