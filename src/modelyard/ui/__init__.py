"""The web UI of a workspace (``modelyard ui``): pages that show experiments, runs, metrics,
logs, files, models and compute targets, read from the workspace's backend only.

``app.py`` is the FastAPI application, ``views.py`` what its JSON answers hold,
``access.py`` the token and Host checks, ``downsample.py`` and ``run_filter.py`` the metric
series for charts and the runs table's metric expressions, ``portal.py`` the URL that
``Run.get_portal_url()`` gives, and ``static/`` the pages' scripts and styles.

Example::

    $ modelyard ui --port 8766
    modelyard ui: workspace 'demo' at http://127.0.0.1:8766/?token=...
"""
