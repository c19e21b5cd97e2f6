"""Datastores in a real embedded workspace: registering, uploading, downloading, references."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from modelyard.data.data_reference import DataReference
from modelyard.datastore import Datastore
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.workspace import Workspace

FILES = {
    "train/images.idx": os.urandom(3000),
    "train/labels.idx": b"labels",
    "test/images.idx": os.urandom(1000),
    "README.md": b"# mnist sample\n",
}


pytestmark = pytest.mark.usefixtures("clean_memory_fs")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("t", folder=str(tmp_path / "ws"))


@pytest.fixture(params=["default", "memory"])
def ds(request: pytest.FixtureRequest, ws: Workspace) -> Datastore:
    """The workspace's default datastore (a local folder) or one on memory://."""
    if request.param == "default":
        return ws.get_default_datastore()
    return Datastore.register(ws, "mem", "memory://mem-store")


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    for name, data in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def contents(ds: Datastore) -> dict[str, bytes]:
    """Every file in the datastore, temporary ones included, with its bytes."""
    store = ds._files()
    try:
        found = store.fs.find(store.root)
    except FileNotFoundError:
        return {}
    return {path[len(store.root) + 1 :]: store.fs.cat_file(path) for path in found}


def tree(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): b"<dir>" if p.is_dir() else p.read_bytes()
        for p in root.rglob("*")
    }


# -- finding and registering ------------------------------------------------------------


def test_every_workspace_has_a_default_datastore(ws: Workspace) -> None:
    ds = Datastore(ws)

    assert ds.name == "workspaceblobstore"
    assert ds.is_default
    assert ds.url.startswith("file://")
    assert Datastore.get_default(ws) == ds == Datastore.get(ws, "workspaceblobstore")
    assert [d.name for d in Datastore.list(ws)] == ["workspaceblobstore"]
    assert ds.workspace == ws


def test_register_a_local_folder_path(ws: Workspace, tmp_path: Path, src: Path) -> None:
    folder = tmp_path / "shared data #1"

    ds = Datastore.register(ws, "shared", str(folder))
    ds.upload(src)

    assert ds.url == f"file://{folder}"
    assert tree(folder) == tree(src)
    assert Datastore(ws, "shared").url == ds.url
    assert not ds.is_default
    assert [d.name for d in Datastore.list(ws)] == ["shared", "workspaceblobstore"]


def test_register_an_fsspec_url_with_options(ws: Workspace) -> None:
    ds = Datastore.register(ws, "mem", "memory://bucket/prefix", skip_instance_cache=True)

    assert Datastore.get(ws, "mem").url == "memory://bucket/prefix"
    assert Datastore.get(ws, "mem")._record.storage_options == {"skip_instance_cache": "***"}
    assert ds.upload_files([__file__], target_path="code").path_on_datastore == "code"


def test_registering_again_needs_overwrite_for_another_url(ws: Workspace) -> None:
    Datastore.register(ws, "mem", "memory://one")

    assert Datastore.register(ws, "mem", "memory://one").url == "memory://one"
    with pytest.raises(ConflictError):
        Datastore.register(ws, "mem", "memory://two")
    assert Datastore.register(ws, "mem", "memory://two", overwrite=True).url == "memory://two"


def test_set_as_default(ws: Workspace) -> None:
    mem = Datastore.register(ws, "mem", "memory://one")

    mem.set_as_default()

    assert mem.is_default
    assert not Datastore(ws, "workspaceblobstore").is_default
    assert ws.get_default_datastore().name == "mem"


def test_a_missing_datastore_is_not_found_by_name(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        Datastore.get(ws, "nope")
    with pytest.raises(NotFoundError, match="'nope'"):
        Datastore(ws, "nope")


@pytest.mark.parametrize(
    ("name", "url", "options", "field"),
    [
        ("bad name", "memory://x", {}, "name"),
        ("../x", "memory://x", {}, "name"),
        ("ok", "nosuchprotocol://x", {}, "url"),
        ("ok", "", {}, "url"),
        ("ok", 42, {}, "url"),
        ("ok", "memory://x", {"handle": object()}, "storage_options"),
    ],
)
def test_register_refuses_bad_input(
    ws: Workspace, name: str, url: Any, options: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Datastore.register(ws, name, url, **options)

    assert caught.value.field == field
    assert [d.name for d in Datastore.list(ws)] == ["workspaceblobstore"]


def test_register_refuses_a_file_as_folder(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")

    with pytest.raises(ValidationError, match="is a file") as caught:
        Datastore.register(ws, "f", str(tmp_path / "file"))

    assert caught.value.field == "url"


# -- upload and download ------------------------------------------------------------------


def test_upload_a_folder_and_download_it_back(ds: Datastore, src: Path, tmp_path: Path) -> None:
    ref = ds.upload(src_dir=str(src), target_path="mnist", overwrite=True, show_progress=False)

    assert isinstance(ref, DataReference)
    assert (ref.datastore_name, ref.path_on_datastore, ref.mode) == (ds.name, "mnist", "mount")
    assert contents(ds) == {f"mnist/{name}": data for name, data in FILES.items()}
    count = ds.download(tmp_path / "out", prefix="mnist", show_progress=False)
    assert count == len(FILES)
    assert tree(tmp_path / "out" / "mnist") == tree(src)


def test_upload_to_the_root_and_download_everything(
    ds: Datastore, src: Path, tmp_path: Path
) -> None:
    ref = ds.upload(src, show_progress=False)

    assert ref.path_on_datastore is None
    assert ds.download(str(tmp_path / "out"), show_progress=False) == len(FILES)
    assert tree(tmp_path / "out") == tree(src)


def test_upload_files_keeps_paths_below_their_common_folder(
    ds: Datastore, src: Path, tmp_path: Path
) -> None:
    files = [src / "train" / "images.idx", src / "test" / "images.idx"]

    ds.upload_files([str(f) for f in files], target_path="x", show_progress=False)
    train = [src / "train" / "images.idx", src / "train" / "labels.idx"]
    ds.upload_files(train, relative_root=src / "train", target_path="y", show_progress=False)
    ds.upload_files([src / "README.md"], show_progress=False)

    assert sorted(contents(ds)) == [
        "README.md",
        "x/test/images.idx",
        "x/train/images.idx",
        "y/images.idx",
        "y/labels.idx",
    ]


def test_upload_files_refuses_a_file_outside_the_relative_root(ds: Datastore, src: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        ds.upload_files(
            [src / "train" / "labels.idx", src / "README.md"],
            relative_root=src / "train",
            show_progress=False,
        )

    assert caught.value.field == "relative_root"
    assert contents(ds) == {}


def test_overwrite_false_skips_existing_files_and_reports_them(
    ds: Datastore, src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds.upload(src, "d", show_progress=False)
    (src / "README.md").write_bytes(b"changed")

    ds.upload(src, "d")

    assert contents(ds)["d/README.md"] == FILES["README.md"]
    out = capsys.readouterr().out
    assert "Uploaded 0 files" in out
    assert f"skipped {len(FILES)} that exist" in out
    assert "pass overwrite=True" in out
    ds.upload(src, "d", overwrite=True, show_progress=False)
    assert contents(ds)["d/README.md"] == b"changed"


def test_download_skips_local_files_unless_overwrite(
    ds: Datastore, src: Path, tmp_path: Path
) -> None:
    ds.upload(src, show_progress=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_bytes(b"mine")

    assert ds.download(out, show_progress=False) == len(FILES) - 1
    assert (out / "README.md").read_bytes() == b"mine"
    assert ds.download(out, overwrite=True, show_progress=False) == len(FILES)
    assert (out / "README.md").read_bytes() == FILES["README.md"]


def test_download_prefix_matches_names_as_v1_did(ds: Datastore, src: Path, tmp_path: Path) -> None:
    ds.upload(src, "mnist", show_progress=False)
    ds.upload(src, "mnist2", show_progress=False)

    assert ds.download(tmp_path / "a", prefix="mnist/", show_progress=False) == len(FILES)
    assert ds.download(tmp_path / "b", prefix="mnist", show_progress=False) == 2 * len(FILES)
    assert ds.download(tmp_path / "c", prefix="mnist/train/", show_progress=False) == 2
    assert ds.download(tmp_path / "d", prefix="mnist/READ", show_progress=False) == 1
    assert ds.download(tmp_path / "e", prefix="nothing", show_progress=False) == 0
    assert sorted(tree(tmp_path / "c")) == [
        "mnist",
        "mnist/train",
        "mnist/train/images.idx",
        "mnist/train/labels.idx",
    ]


def test_progress_off_prints_nothing(
    ds: Datastore, src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds.upload(src, show_progress=False)
    ds.upload(src, show_progress=False)
    ds.download(tmp_path / "out", show_progress=False)

    assert capsys.readouterr() == ("", "")


def test_progress_on_prints_a_summary_per_transfer(
    ds: Datastore, src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds.upload(src)
    ds.download(tmp_path / "out")

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        f"Uploaded {len(FILES)} files",
        f"Downloaded {len(FILES)} files",
    ]


# -- bad input: a ValidationError naming the field, and nothing written -------------------

BAD_PATHS = ["../up", "a/../../up", "/abs/path", "back\\slash", "nul\x00byte"]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_upload_refuses_a_bad_target_path(
    ds: Datastore, src: Path, tmp_path: Path, bad: str
) -> None:
    before = tree(tmp_path)

    with pytest.raises(ValidationError) as caught:
        ds.upload(src, target_path=bad, show_progress=False)
    with pytest.raises(ValidationError) as caught_files:
        ds.upload_files([src / "README.md"], target_path=bad, show_progress=False)

    assert caught.value.field == caught_files.value.field == "target_path"
    assert contents(ds) == {}
    assert tree(tmp_path) == before


@pytest.mark.parametrize("bad_name", ["back\\slash.txt", ".modelyard-tmp-x"])
def test_upload_refuses_a_bad_file_name_in_the_folder(
    ds: Datastore, src: Path, tmp_path: Path, bad_name: str
) -> None:
    (src / "train" / bad_name).write_bytes(b"x")
    before = tree(tmp_path)

    with pytest.raises(ValidationError) as caught:
        ds.upload(src, target_path="t", show_progress=False)

    assert caught.value.field == "src_dir"
    assert contents(ds) == {}
    assert tree(tmp_path) == before


@pytest.mark.parametrize("missing", ["nowhere", "src/README.md"])
def test_upload_refuses_a_src_dir_that_is_not_a_folder(
    ds: Datastore, tmp_path: Path, src: Path, missing: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ds.upload(tmp_path / missing, show_progress=False)

    assert caught.value.field == "src_dir"
    assert contents(ds) == {}


def test_upload_files_refuses_a_missing_file(ds: Datastore, src: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        ds.upload_files([src / "README.md", src / "missing.txt"], show_progress=False)

    assert caught.value.field == "files"
    assert contents(ds) == {}


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_download_refuses_a_bad_prefix(ds: Datastore, src: Path, tmp_path: Path, bad: str) -> None:
    ds.upload(src, show_progress=False)

    with pytest.raises(ValidationError) as caught:
        ds.download(tmp_path / "out", prefix=bad, show_progress=False)

    assert caught.value.field == "prefix"
    assert not (tmp_path / "out").exists()


def test_download_never_writes_outside_the_target_folder(
    ds: Datastore, src: Path, tmp_path: Path
) -> None:
    ds.upload(src, show_progress=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "train").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValidationError, match=r"'train' .* is a symbolic link"):
        ds.download(out, overwrite=True, show_progress=False)

    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["train"]


def test_download_refuses_a_datastore_file_named_to_escape(ws: Workspace, tmp_path: Path) -> None:
    ds = Datastore.register(ws, "mem", "memory://evil")
    ds._files().fs.pipe_file("/evil/a\\..\\..\\x", b"x")

    with pytest.raises(ValidationError) as caught:
        ds.download(tmp_path / "out", show_progress=False)

    assert caught.value.field == "prefix"
    assert not (tmp_path / "out").exists()


# -- data references ----------------------------------------------------------------------


def test_references_from_a_datastore(ws: Workspace) -> None:
    ds = ws.get_default_datastore()

    mount = ds.as_mount()
    download = ds.as_download(path_on_compute="data")
    sub = ds.path("mnist/train")

    assert (mount.mode, mount.path_on_datastore, mount.datastore) == ("mount", None, ds)
    assert (download.mode, download.path_on_compute) == ("download", "data")
    assert (sub.mode, sub.path_on_datastore) == ("mount", "mnist/train")
    assert sub.as_download().mode == "download"
    assert ds.path("x", data_reference_name="inputs").data_reference_name == "inputs"
    assert str(mount) == "$MODELYARD_DATAREFERENCE_workspaceblobstore"
    assert DataReference.from_config(download.to_config()) == download


def test_references_check_their_paths(ws: Workspace) -> None:
    ds = ws.get_default_datastore()

    with pytest.raises(ValidationError) as caught:
        ds.path("../x")
    assert caught.value.field == "path_on_datastore"
    with pytest.raises(ValidationError) as caught:
        ds.as_download(path_on_compute="/etc")
    assert caught.value.field == "path_on_compute"
