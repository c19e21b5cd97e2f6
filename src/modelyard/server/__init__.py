"""The modelyard server: a team's workspaces over HTTP (``modelyard server``).

Its layers, top down: ``app.py`` (the FastAPI application), ``calls.py`` (one route per call
of the Backend contract), ``authz.py`` (who may make which call), ``accounts.py`` (users,
tokens, workspaces and their members), ``workspaces.py`` (each workspace's folder and
backend on the server's machine), ``settings.py`` (where the server keeps its data).
"""
