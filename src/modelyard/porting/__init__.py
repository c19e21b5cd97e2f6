"""Porting v1 code: what ``modelyard migrate`` does to ``.py`` files and notebooks.

- :mod:`~modelyard.porting.imports`: the v1 modules and where each lives in modelyard;
- :mod:`~modelyard.porting.rewrite`: one Python source's ``azureml`` imports rewritten, with
  ``ast`` finding exactly where they are, so comments and formatting stay;
- :mod:`~modelyard.porting.check`: the static check of what the code uses against modelyard's
  own public surface;
- :mod:`~modelyard.porting.notebook`: the code cells of a notebook, magics masked, every other
  byte kept;
- :mod:`~modelyard.porting.files`: which files a path holds, and writing them (in place with a
  ``.bak``, or under ``--out``).
"""
