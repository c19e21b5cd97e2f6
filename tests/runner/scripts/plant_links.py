"""Leaves links and odd names in ./outputs and ./logs for the supervisor to upload."""

import os
import sys
from pathlib import Path

outside = Path(sys.argv[1])  # a folder outside the working folder, with a secret in it
Path("outputs").mkdir()
Path("outputs/kept.txt").write_text("kept")
os.symlink(Path("kept.txt"), "outputs/alias.txt")  # a link to a file inside: taken as a file
os.symlink(outside / "secret.txt", "outputs/leak.txt")
os.symlink(outside, "outputs/leaked-folder")
Path("outputs/.modelyard-tmp-left-behind").write_text("half a download")
os.symlink(outside, "logs")  # the whole ./logs folder is a link
print("planted", flush=True)
