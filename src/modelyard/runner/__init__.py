"""Running scripts: source snapshots, the run supervisor and the launchers below it."""
