"""Symbolic links and the store's own names never carry a write or a read outside its root.

Real links in temporary folders; one test has a real run plant the link through
``as_mount()``, as the attack goes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from modelyard import Experiment, Workspace
from modelyard.datastore import Datastore
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.model import Model
from modelyard.names import TMP_PREFIX, clean_relpath, temp_name
from modelyard.progress import TransferProgress
from modelyard.script_run_config import ScriptRunConfig
from modelyard.store import local_copy, transfer
from modelyard.store.files import FileStore
from modelyard.train import Estimator

SECRET = b"secret of another folder"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every root of the test, holding one file that must stay unread."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(SECRET)
    return folder


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"A")
    (folder / "sub" / "b.txt").write_bytes(b"B")
    return folder


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (links shown as ``-> target``, not followed)."""
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[name] = b"-> " + os.fsencode(os.readlink(path))
        elif path.is_file():
            found[name] = path.read_bytes()
    return found


def default_folder(workspace: Workspace) -> tuple[Datastore, Path]:
    ds = workspace.get_default_datastore()
    folder = ds._files().local_path("")
    folder.mkdir(parents=True, exist_ok=True)
    return ds, folder


# -- 1. datastores: the target of an upload, the source of a download -----------------------


def test_a_link_planted_by_a_run_through_as_mount_does_not_carry_a_later_upload(
    experiment: Experiment, tmp_path: Path, src: Path, outside: Path
) -> None:
    ds, _ = default_folder(experiment.workspace)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "plant.py").write_text(
        "import os, sys\nos.symlink(sys.argv[2], os.path.join(sys.argv[1], 'results'))\n"
    )
    run = experiment.submit(Estimator(scripts, "plant.py", arguments=[ds.as_mount(), str(outside)]))
    assert run.wait_for_completion()["status"] == "Completed"

    with pytest.raises(ValidationError, match=r"'results' .* is a symbolic link") as caught:
        ds.upload(src, target_path="results/v1", show_progress=False)

    assert caught.value.field == "target_path"
    assert tree(outside) == {"secret.txt": SECRET}


def test_upload_files_refuses_a_folder_link_in_the_datastore(
    workspace: Workspace, src: Path, outside: Path
) -> None:
    ds, folder = default_folder(workspace)
    (folder / "data").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValidationError, match=r"'data' .* is a symbolic link"):
        ds.upload_files([src / "a.txt"], target_path="data", show_progress=False)

    assert tree(outside) == {"secret.txt": SECRET}


def test_upload_replaces_a_file_link_in_the_datastore_instead_of_writing_through_it(
    workspace: Workspace, src: Path, outside: Path
) -> None:
    ds, folder = default_folder(workspace)
    (folder / "a.txt").symlink_to(outside / "secret.txt")

    ds.upload(src, overwrite=False, show_progress=False)
    assert tree(outside) == {"secret.txt": SECRET}
    assert (folder / "a.txt").is_symlink()  # it counts as a file there: skipped

    ds.upload(src, overwrite=True, show_progress=False)
    assert tree(outside) == {"secret.txt": SECRET}
    assert not (folder / "a.txt").is_symlink() and (folder / "a.txt").read_bytes() == b"A"


def test_download_leaves_out_links_in_the_datastore(
    workspace: Workspace, src: Path, outside: Path, tmp_path: Path
) -> None:
    ds, folder = default_folder(workspace)
    ds.upload(src, show_progress=False)
    (folder / "passwd").symlink_to(outside / "secret.txt")
    (folder / "more").symlink_to(outside, target_is_directory=True)
    (folder / "sub" / "again").symlink_to(folder / "a.txt")

    copied = ds.download(tmp_path / "out", show_progress=False)

    assert copied == 2
    assert tree(tmp_path / "out") == {"a.txt": b"A", "sub/b.txt": b"B"}
    with pytest.raises(ValidationError, match=r"'more' .* is a symbolic link"):
        ds.download(tmp_path / "out2", prefix="more/", show_progress=False)
    assert not (tmp_path / "out2").exists() or tree(tmp_path / "out2") == {}


def test_download_refuses_a_link_in_the_target_folder_even_one_that_stays_inside(
    workspace: Workspace, src: Path, tmp_path: Path
) -> None:
    ds, _ = default_folder(workspace)
    ds.upload(src, show_progress=False)
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    (out / "sub").symlink_to(out / "real", target_is_directory=True)

    with pytest.raises(ValidationError, match=r"'sub' .* is a symbolic link") as caught:
        ds.download(out, show_progress=False)

    assert caught.value.field == "target_path"
    assert tree(out) == {"sub": b"-> " + os.fsencode(out / "real")}


def test_upload_takes_links_inside_the_folder_and_skips_the_others_with_a_warning(
    workspace: Workspace, src: Path, outside: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds, folder = default_folder(workspace)
    (src / "inside.txt").symlink_to(src / "a.txt")
    (src / "passwd").symlink_to(outside / "secret.txt")
    (src / "linked_dir").symlink_to(src / "sub", target_is_directory=True)
    (src / "broken").symlink_to(src / "nothing")

    with caplog.at_level(logging.WARNING, logger="modelyard.datastore"):
        ds.upload(src, target_path="up", show_progress=False)

    assert tree(folder) == {"up/a.txt": b"A", "up/inside.txt": b"A", "up/sub/b.txt": b"B"}
    assert "leaves out 3 links" in caplog.text
    assert "broken, linked_dir, passwd" in caplog.text


def test_upload_files_refuses_a_listed_link_that_leads_out_of_the_relative_root(
    workspace: Workspace, src: Path, outside: Path
) -> None:
    ds, folder = default_folder(workspace)
    (src / "passwd").symlink_to(outside / "secret.txt")

    with pytest.raises(ValidationError, match=r"'.*passwd' leads out of") as caught:
        ds.upload_files([src / "a.txt", src / "passwd"], relative_root=src, show_progress=False)

    assert caught.value.field == "files"
    assert tree(folder) == {}


def test_store_delete_removes_a_link_not_what_it_leads_to(tmp_path: Path, outside: Path) -> None:
    store = FileStore(f"file://{tmp_path / 'store'}")
    store.write_bytes("kept.txt", b"k")
    (tmp_path / "store" / "models").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValidationError, match=r"'models' .* is a symbolic link"):
        store.delete("models/secret.txt")
    store.delete("models")

    assert tree(outside) == {"secret.txt": SECRET}
    assert tree(tmp_path / "store") == {"kept.txt": b"k"}


def test_store_reads_no_file_through_a_link(tmp_path: Path, outside: Path) -> None:
    store = FileStore(f"file://{tmp_path / 'store'}")
    store.write_bytes("runs/r1/log.txt", b"log")
    (tmp_path / "store" / "runs" / "r1" / "stolen.txt").symlink_to(outside / "secret.txt")

    assert [info.path for info in store.list("runs")] == ["runs/r1/log.txt"]
    assert not store.exists("runs/r1/stolen.txt")
    with pytest.raises(ValidationError, match="symbolic link"):
        store.read_bytes("runs/r1/stolen.txt")
    with pytest.raises(NotFoundError):
        store.size("runs/r1/stolen.txt")


def test_a_folder_swapped_for_a_link_during_a_write_does_not_carry_it(
    tmp_path: Path, outside: Path
) -> None:
    # The folder is opened once and the file named inside that open folder: a link put in its
    # place while the bytes are written changes nothing.
    root = tmp_path / "store"
    store = FileStore(f"file://{root}")
    store.write_bytes("data/old.txt", b"old")
    with store.open_write("data/new.txt") as f:
        f.write(b"new")
        (root / "data").rename(root / "moved")
        (root / "data").symlink_to(outside, target_is_directory=True)

    assert tree(outside) == {"secret.txt": SECRET}
    assert (root / "moved" / "new.txt").read_bytes() == b"new"


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
def test_a_folder_swapped_for_a_link_during_an_upload_does_not_carry_it(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    # The swap happens between two chunks of a big file (the progress hook is where it can be
    # done at a known point without sleeping): the file still lands in the folder the upload
    # opened, and later files of that folder follow it.
    if not unnamed:
        monkeypatch.setattr(local_copy, "_UNNAMED_FILES", False)
    monkeypatch.setattr(local_copy, "CHUNK_SIZE", 1000)
    root = tmp_path / "store"
    store = FileStore(f"file://{root}")
    store.write_bytes("data/old.txt", b"old")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5000))
    (tmp_path / "small.txt").write_bytes(b"small")
    advance = TransferProgress.advance

    def swap_then_advance(self: TransferProgress, nbytes: int, files: int = 0) -> None:
        if not (root / "moved").exists():
            (root / "data").rename(root / "moved")
            (root / "data").symlink_to(outside, target_is_directory=True)
        advance(self, nbytes, files)

    monkeypatch.setattr(TransferProgress, "advance", swap_then_advance)
    transfer.upload(
        [(big, "big.bin"), (tmp_path / "small.txt", "small.txt")],
        store,
        "data",
        show_progress=False,
    )

    assert tree(outside) == {"secret.txt": SECRET}
    assert tree(root / "moved") == {
        "big.bin": big.read_bytes(),
        "old.txt": b"old",
        "small.txt": b"small",
    }


# -- 2. downloads of a run's files and of a model --------------------------------------------


def test_run_download_files_does_not_write_through_a_link_in_the_target(
    experiment: Experiment, tmp_path: Path, outside: Path
) -> None:
    run = experiment.start_logging()
    (tmp_path / "m.txt").write_bytes(b"model")
    run.upload_file("a_first.txt", tmp_path / "m.txt")
    run.upload_file("outputs/model.txt", tmp_path / "m.txt")
    run.complete()
    target = tmp_path / "target"
    target.mkdir()
    (target / "outputs").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValidationError, match=r"'outputs' .* is a symbolic link") as caught:
        run.download_files(output_directory=target)

    assert caught.value.field == "output_directory"
    assert tree(outside) == {"secret.txt": SECRET}
    assert not (target / "a_first.txt").exists()  # checked before the first file is written

    (target / "outputs").unlink()
    assert run.download_files(prefix="outputs/", output_directory=target) == [
        target / "outputs" / "model.txt"
    ]
    assert tree(target) == {"outputs/model.txt": b"model"}


def test_run_download_file_replaces_a_link_at_its_name(
    experiment: Experiment, tmp_path: Path, outside: Path
) -> None:
    run = experiment.start_logging()
    (tmp_path / "m.txt").write_bytes(b"model")
    run.upload_file("outputs/model.txt", tmp_path / "m.txt")
    run.complete()
    target = tmp_path / "target"
    target.mkdir()
    (target / "model.txt").symlink_to(outside / "secret.txt")

    assert run.download_file("outputs/model.txt", target) == target / "model.txt"

    assert tree(outside) == {"secret.txt": SECRET}
    assert tree(target) == {"model.txt": b"model"}


def test_model_download_counts_a_dangling_link_as_existing_and_replaces_it_only_when_told(
    workspace: Workspace, src: Path, tmp_path: Path, outside: Path
) -> None:
    model = Model.register(workspace, src, "m")
    target = tmp_path / "target"
    target.mkdir()
    (target / "src").symlink_to(outside / "new", target_is_directory=True)

    with pytest.raises(ConflictError, match="exists already"):
        model.download(target)
    assert model.download(target, exist_ok=True) == str(target / "src")

    assert tree(outside) == {"secret.txt": SECRET}
    assert tree(target) == {"src/a.txt": b"A", "src/sub/b.txt": b"B"}
    assert not (target / "src").is_symlink()


# -- 3. registering a folder ---------------------------------------------------------------


def test_model_register_does_not_follow_links_out_of_the_folder(
    workspace: Workspace, src: Path, outside: Path, tmp_path: Path
) -> None:
    (src / "passwd").symlink_to(outside / "secret.txt")
    (src / "more").symlink_to(outside, target_is_directory=True)
    (src / "weights.bin").symlink_to(src / "a.txt")

    model = Model.register(workspace, src, "linked")

    assert model.get_file_names() == ["src/a.txt", "src/sub/b.txt", "src/weights.bin"]
    downloaded = Path(model.download(tmp_path / "dl"))
    assert tree(downloaded) == {"a.txt": b"A", "sub/b.txt": b"B", "weights.bin": b"A"}


# -- 4. the entry script -----------------------------------------------------------------


def test_an_entry_script_linked_from_outside_the_source_folder_is_refused_at_submit(
    experiment: Experiment, src: Path, outside: Path
) -> None:
    (outside / "train.py").write_text("print('hi')\n")
    (src / "train.py").symlink_to(outside / "train.py")

    with pytest.raises(ValidationError, match=r"'train\.py' is a symbolic link leading outside"):
        experiment.submit(ScriptRunConfig(src, "train.py"))
    with pytest.raises(ValidationError) as caught:
        experiment.submit(Estimator(src, "train.py"))

    assert caught.value.field == "entry_script"
    assert list(experiment.get_runs()) == []


def test_an_entry_script_below_a_linked_folder_is_refused_at_submit(
    experiment: Experiment, src: Path, outside: Path
) -> None:
    (outside / "train.py").write_text("print('hi')\n")
    (src / "code").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValidationError, match=r"'code' .* is a symbolic link to a folder") as err:
        experiment.submit(ScriptRunConfig(src, "code/train.py"))

    assert err.value.field == "entry_script"
    assert list(experiment.get_runs()) == []


# -- 5. names the store keeps for itself ---------------------------------------------------


def test_every_temporary_name_the_store_makes_is_refused_as_a_user_path() -> None:
    for path in (temp_name(), f"outputs/{temp_name()}/model.bin", f"{TMP_PREFIX}x"):
        with pytest.raises(ValidationError, match="kept for temporary files"):
            clean_relpath("name", path)
    assert clean_relpath("name", "outputs/.modelyard-cache/x") == "outputs/.modelyard-cache/x"


def test_run_files_by_a_reserved_name_are_refused_not_stored_and_hidden(
    experiment: Experiment, tmp_path: Path
) -> None:
    run = experiment.start_logging()
    (tmp_path / "f.txt").write_bytes(b"f")

    for name in (f"{TMP_PREFIX}1", f"outputs/{TMP_PREFIX}dir/f.txt"):
        with pytest.raises(ValidationError, match="kept for temporary files") as caught:
            run.upload_file(name, tmp_path / "f.txt")
        assert caught.value.field == "name"

    assert run.get_file_names() == []


def test_datastore_and_model_paths_by_a_reserved_name_are_refused(
    workspace: Workspace, src: Path
) -> None:
    ds, folder = default_folder(workspace)
    with pytest.raises(ValidationError, match="kept for temporary files") as caught:
        ds.upload(src, target_path=f"{TMP_PREFIX}data/v1", show_progress=False)
    assert caught.value.field == "target_path"
    assert tree(folder) == {}

    (src / f"{TMP_PREFIX}weights").write_bytes(b"w")
    with pytest.raises(ValidationError, match="kept for temporary files") as caught:
        Model.register(workspace, src, "m")
    assert caught.value.field == "model_path"
    assert Model.list(workspace) == []


def test_run_upload_folder_does_not_follow_links_out_of_the_folder(
    experiment: Experiment, tmp_path: Path
) -> None:
    folder = tmp_path / "to-upload"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    os.symlink(folder / "sub" / "a.txt", folder / "alias.txt")
    os.symlink("/etc/passwd", folder / "passwd")
    os.symlink(tmp_path, folder / "everything")
    run = experiment.start_logging()
    run.upload_folder("up", folder)
    assert run.get_file_names() == ["up/alias.txt", "up/sub/a.txt"]
