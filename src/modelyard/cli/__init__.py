"""The ``modelyard`` command line: one module per noun, each a click group.

::

    main.py         the root group, global options, exit codes, ``main()``
    state.py        what every command shares: the workspace (opened lazily), finding a run
    params.py       option types and decorators (``k=v`` tags, ``NAME[:VERSION]``, ``--json``)
    output.py       rich tables for people, JSON for scripts
    workspace.py    modelyard workspace create|show
    experiment.py   modelyard experiment list
    run.py          modelyard run list|show|metrics|download
    run_control.py  modelyard run submit|logs|cancel
    script_command.py  how ``run submit`` splits its words: its options, the script's arguments
    datastore.py    modelyard datastore list|upload|download
    model.py        modelyard model list|show|register|download

A new noun is a module with a ``group`` that ``main.py`` adds; a new verb is a command in its
noun's module. Commands drive the public SDK and raise its errors; ``main.py`` turns them into
a message on stderr and the error's ``exit_code``. Where the SDK's advice names its arguments
or calls (``overwrite=True``, ``run.cancel()``), a command names its own words around the call
with :func:`modelyard.hints.spoken_as` (``--overwrite``).

This package imports nothing on purpose: ``python -m modelyard.cli.main`` must not find
``modelyard.cli.main`` imported before it runs.
"""
