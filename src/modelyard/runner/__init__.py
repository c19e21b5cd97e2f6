"""Running scripts: the run supervisor and the launchers below it."""
