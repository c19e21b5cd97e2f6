"""Datastore files through the backend: S3 and Azure registration, credentials that stay with
the backend, a run's script limited to the datastores it was given, the registration policy
of a server's backend, and links that carry no read or write out of a folder datastore."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from modelyard import Experiment
from modelyard.backend.channel import ChannelBackend
from modelyard.backend.local import LocalBackend
from modelyard.backend.records import COMPLETED, DatastoreRecord
from modelyard.cloud_storage import azure_blob_options
from modelyard.datastore import Datastore
from modelyard.errors import ConfigError, NotFoundError, PermissionDeniedError, ValidationError
from modelyard.runner import data
from modelyard.runner.run_scope import RunScope
from modelyard.script_run_config import ScriptRunConfig
from modelyard.workspace import Workspace
from tests.helpers import channel_to
from tests.s3 import KEY, REGION, SECRET, S3Server

SCRIPTS = Path(__file__).parent / "datastore_scripts"
FILES = {"in/a.txt": b"alpha", "in/sub/b.bin": os.urandom(2000), "top.txt": b"top"}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("t", folder=str(tmp_path / "ws"))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    for name, content in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _register_s3(ws: Workspace, s3_server: S3Server, name: str = "raw") -> tuple[Datastore, str]:
    bucket = s3_server.new_bucket()[0].removeprefix("s3://").split("/")[0]
    ds = Datastore.register_s3(
        ws,
        name,
        bucket,
        "team/2024",
        endpoint_url=s3_server.endpoint_url,
        key=KEY,
        secret=SECRET,
        region_name=REGION,
        skip_instance_cache=True,
    )
    return ds, bucket


def _shown(records: list[DatastoreRecord]) -> str:
    return json.dumps([r.storage_options for r in records]) + repr(records)


# -- S3 and Azure --------------------------------------------------------------------------


def test_register_s3_round_trips_files_on_a_real_s3_endpoint(
    ws: Workspace, s3_server: S3Server, src: Path, tmp_path: Path
) -> None:
    ds, bucket = _register_s3(ws, s3_server)

    ref = ds.upload(src, target_path="mnist", show_progress=False)
    objects = fsspec.filesystem("s3", **s3_server.storage_options).find(f"{bucket}/team/2024")
    count = ds.download(tmp_path / "out", prefix="mnist/", show_progress=False)

    assert ds.url == f"s3://{bucket}/team/2024"
    assert ref.path_on_datastore == "mnist"
    assert sorted(objects) == sorted(f"{bucket}/team/2024/mnist/{name}" for name in FILES)
    assert count == len(FILES)
    assert _tree(tmp_path / "out" / "mnist") == FILES
    # Without overwrite nothing is sent again, and nothing local is replaced.
    (src / "top.txt").write_bytes(b"changed")
    ds.upload(src, target_path="mnist", show_progress=False)
    assert ds.download(tmp_path / "out", prefix="mnist/", show_progress=False) == 0
    ds.upload(src, target_path="mnist", overwrite=True, show_progress=False)
    ds.download(tmp_path / "out", prefix="mnist/", overwrite=True, show_progress=False)
    assert (tmp_path / "out" / "mnist" / "top.txt").read_bytes() == b"changed"


def test_no_record_the_backend_returns_holds_the_s3_credentials(
    ws: Workspace, s3_server: S3Server
) -> None:
    ds, _ = _register_s3(ws, s3_server)
    backend = ws._backend

    records = [ds._record, backend.get_datastore("raw"), *backend.list_datastores()]
    shown = _shown(records) + repr(ds.get_details())

    assert KEY not in shown and SECRET not in shown and s3_server.endpoint_url not in shown
    assert backend.get_datastore("raw").storage_options == {
        "client_kwargs": "***",
        "key": "***",
        "secret": "***",
        "skip_instance_cache": "***",
    }


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"bucket_name": "Not_A_Bucket"}, "bucket_name"),
        ({"bucket_name": "b"}, "bucket_name"),
        ({"bucket_name": "fine-bucket", "prefix": "../up"}, "prefix"),
        (
            {"bucket_name": "fine-bucket", "endpoint_url": "http://169.254.169.254"},
            "storage_options",
        ),
    ],
)
def test_register_s3_refuses_bad_arguments(
    ws: Workspace, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Datastore.register_s3(ws, "raw", **arguments)

    assert caught.value.field == field
    assert [d.name for d in Datastore.list(ws)] == ["workspaceblobstore"]


def test_azure_blob_arguments_become_adlfs_options() -> None:
    assert azure_blob_options("acct", account_key="k3y") == {
        "account_name": "acct",
        "account_key": "k3y",
    }
    assert azure_blob_options(
        "acct", sas_token="?sv=1&sig=x", endpoint="core.chinacloudapi.cn"
    ) == {
        "account_name": "acct",
        "sas_token": "sv=1&sig=x",
        "account_host": "acct.blob.core.chinacloudapi.cn",
    }
    emulator = azure_blob_options(
        "devstoreaccount1", account_key="k3y", protocol="http", endpoint="127.0.0.1:10000"
    )
    assert emulator["connection_string"] == (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k3y;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1"
    )
    for arguments, field in [
        ({"account_name": "Bad_Name"}, "account_name"),
        ({"account_name": "acct", "sas_token": "s", "account_key": "k"}, "sas_token"),
        ({"account_name": "acct", "protocol": "ftp"}, "protocol"),
        ({"account_name": "acct", "endpoint": "evil.com/path?"}, "endpoint"),
    ]:
        with pytest.raises(ValidationError) as caught:
            azure_blob_options(**arguments)
        assert caught.value.field == field


def test_register_azure_blob_container_says_what_it_needs_without_adlfs(ws: Workspace) -> None:
    try:
        import adlfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("adlfs is installed here: the container would be reached for real")

    with pytest.raises(ValidationError, match="adlfs") as caught:
        Datastore.register_azure_blob_container(
            ws, "images", "images", "myaccount", account_key="k3y-value-1234"
        )

    assert caught.value.field == "url"
    assert "k3y-value-1234" not in str(caught.value)
    assert [d.name for d in Datastore.list(ws)] == ["workspaceblobstore"]


def test_register_azure_file_share_says_how_to_reach_the_share_and_registers_nothing(
    ws: Workspace,
) -> None:
    with pytest.raises(ConfigError) as caught:
        Datastore.register_azure_file_share(
            ws, "shared", "myshare", "myaccount", account_key="k3y-value-1234"
        )
    message = str(caught.value)
    assert "mount" in message.lower() and "Datastore.register(ws, 'shared'" in message
    assert "k3y-value-1234" not in message
    assert [d.name for d in Datastore.list(ws)] == ["workspaceblobstore"]


# -- a run's script ------------------------------------------------------------------------


def test_a_run_uses_its_datastore_without_ever_seeing_the_credentials(
    ws: Workspace, s3_server: S3Server, src: Path
) -> None:
    raw, _ = _register_s3(ws, s3_server)
    raw.upload(src, show_progress=False)
    private = Datastore.register(ws, "private", "memory://private-store", token="priv-t0ken")
    private.upload_files([src / "top.txt"], show_progress=False)
    config = ScriptRunConfig(
        str(SCRIPTS),
        "use_datastores.py",
        arguments=["--data", raw.path("in").as_mount(), "--secret", SECRET],
    )

    run = Experiment(ws, "datastores").submit(config)
    details = run.wait_for_completion(raise_on_error=False)
    log = run._backend.read_run_file(run.id, "user_logs/std_log.txt", 0, 1 << 30).decode()

    assert details["status"] == COMPLETED, log
    assert "no credential seen" in log and "LEAKED" not in log
    assert "mounted: ['a.txt', 'sub']" in log  # the S3 files, fetched by the supervisor
    assert "downloaded: 2" in log and "read back: alpha" in log
    assert "ALLOWED" not in log, log
    for what in ("get private", "list private", "read private", "write private"):
        assert f"refused: {what}: PermissionDeniedError" in log, what
    with ws._backend.open_datastore_file("raw", "from-run/by-run.txt") as written:
        assert written.read() == b"written in the run"
    assert [f.path for f in ws._backend.list_datastore_files("private")] == ["top.txt"]


@pytest.fixture
def script_side(ws: Workspace, tmp_path: Path) -> Iterator[ChannelBackend]:
    """The channel of a run given the datastore ``raw`` only (a real socket and scope)."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    scope = RunScope(ws._backend, "r", "e", workdir, datastores={"raw"})
    with channel_to(ws._backend, scope) as client:
        yield client


def test_a_script_reaches_only_the_datastores_it_was_given(
    ws: Workspace, script_side: ChannelBackend, src: Path
) -> None:
    Datastore.register(ws, "raw", "memory://raw-given")
    Datastore.register(ws, "other", "memory://raw-other")
    ws._backend.upload_datastore_file("other", "secret.txt", io.BytesIO(b"not yours"))

    assert script_side.upload_datastore_file("raw", "a.txt", io.BytesIO(b"mine")) is True
    assert [f.path for f in script_side.list_datastore_files("raw")] == ["a.txt"]
    with script_side.open_datastore_file("raw", "a.txt") as stream:
        assert stream.read() == b"mine"
    calls = [
        lambda: script_side.list_datastore_files("other"),
        lambda: script_side.open_datastore_file("other", "secret.txt"),
        lambda: script_side.upload_datastore_file("other", "x.txt", io.BytesIO(b"x")),
        lambda: script_side.upload_datastore_file(
            "other", "secret.txt", io.BytesIO(b"x"), overwrite=True
        ),
    ]
    for call in calls:
        with pytest.raises(PermissionDeniedError, match="'other'"):
            call()
    assert [f.path for f in ws._backend.list_datastore_files("other")] == ["secret.txt"]
    with ws._backend.open_datastore_file("other", "secret.txt") as stream:
        assert stream.read() == b"not yours"


def test_data_references_resolve_through_the_calls_where_the_store_is_not_here(
    ws: Workspace, script_side: ChannelBackend, src: Path, tmp_path: Path
) -> None:
    raw = Datastore.register(ws, "raw", str(tmp_path / "raw-folder"))
    raw.upload(src, show_progress=False)
    mount = raw.path("in", data_reference_name="m").as_mount().to_config()
    download = raw.path("in", "d").as_download(path_on_compute="got").to_config()

    # A backend that opens no store here (a server's client): the files come through its
    # calls, into the cache for a mount, even of a folder (the server's, not this machine's).
    paths = data.resolve(script_side, [mount, download], tmp_path / "work", tmp_path / "cache")

    assert paths == {
        "m": str(tmp_path / "cache" / "raw" / "in"),
        "d": str(tmp_path / "work" / "got" / "in"),
    }
    assert _tree(tmp_path / "cache" / "raw") == {k: v for k, v in FILES.items() if "in/" in k}
    assert _tree(tmp_path / "work" / "got") == _tree(tmp_path / "cache" / "raw")
    # The embedded backend has the folder here: mounted in place.
    in_place = data.resolve(ws._backend, [mount], tmp_path / "w2", tmp_path / "c2")
    assert in_place == {"m": str(tmp_path / "raw-folder" / "in")}


# -- the registration policy of a server's backend -----------------------------------------


@pytest.fixture
def server_backend(tmp_path: Path) -> LocalBackend:
    """A backend as a server makes it: datastore folders only below ``allowed``."""
    (tmp_path / "allowed" / "team").mkdir(parents=True)
    return LocalBackend(
        "ws",
        f"sqlite:///{tmp_path / 'server.db'}",
        (tmp_path / "files").as_uri(),
        base_dir=tmp_path / "state",
        allowed_local_roots=[str(tmp_path / "allowed")],
    )


def test_a_server_s_backend_keeps_datastore_folders_inside_its_roots(
    server_backend: LocalBackend, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "team" / "to-etc").symlink_to("/etc", target_is_directory=True)
    refused = [
        "file:///etc",
        f"file://{allowed}/../state",
        f"file://{allowed}/team/to-etc",
        f"file://{allowed}-sibling",
        "zip://data.txt",
        "sftp://example.com/data",
        "ftp://example.com/data",
    ]
    for url in refused:
        with pytest.raises(ValidationError) as caught:
            server_backend.register_datastore("d", url, {})
        assert caught.value.field == "url", url

    assert [d.name for d in server_backend.list_datastores()] == []
    for name, url in [
        ("team", f"file://{allowed}/team"),
        ("root", f"file://{allowed}"),
        ("inside", "datastores/inside"),  # a folder of the workspace
        ("scratch", "memory://scratch-server"),
        ("bucket", "s3://bucket/raw"),
    ]:
        assert server_backend.register_datastore(name, url, {}).name == name


def test_an_embedded_backend_takes_any_folder_and_filesystem_but_never_http(
    ws: Workspace, tmp_path: Path
) -> None:
    backend = ws._backend

    backend.register_datastore("etc", "file:///etc", {})
    backend.register_datastore("mem", "memory://anything", {})

    for url in ["http://example.com/x", "HTTPS://example.com/x", "blockcache::memory://x"]:
        with pytest.raises(ValidationError) as caught:
            backend.register_datastore("web", url, {})
        assert caught.value.field == "url"
    with pytest.raises(ValidationError) as caught:
        backend.register_datastore("meta", "s3://b", {"endpoint_url": "http://2852039166/"})
    assert caught.value.field == "storage_options"
    assert sorted(d.name for d in Datastore.list(ws)) == ["etc", "mem", "workspaceblobstore"]


# -- links in a folder datastore -----------------------------------------------------------


def test_links_in_a_folder_datastore_carry_no_read_or_write_out_of_it(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"outside")
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "ok.txt").write_bytes(b"ok")
    (folder / "data" / "out").symlink_to(outside, target_is_directory=True)
    (folder / "data" / "linked.txt").symlink_to(outside / "secret.txt")
    backend = ws._backend
    backend.register_datastore("d", str(folder), {})

    assert [f.path for f in backend.list_datastore_files("d")] == ["data/ok.txt"]
    with pytest.raises(ValidationError):
        backend.list_datastore_files("d", "data/out")
    with pytest.raises((NotFoundError, ValidationError)):
        backend.open_datastore_file("d", "data/linked.txt").read()
    with pytest.raises((NotFoundError, ValidationError)):
        backend.open_datastore_file("d", "data/out/secret.txt").read()
    for source in (io.BytesIO(b"evil"), _file(tmp_path, b"evil")):
        with pytest.raises(ValidationError) as caught:
            backend.upload_datastore_file("d", "data/out/new.txt", source, overwrite=True)
        assert caught.value.field == "relpath"
    # A link where the file goes is replaced with overwrite, never written through.
    assert backend.upload_datastore_file("d", "data/linked.txt", io.BytesIO(b"x")) is False
    backend.upload_datastore_file("d", "data/linked.txt", io.BytesIO(b"new"), overwrite=True)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"outside"
    assert (folder / "data" / "linked.txt").read_bytes() == b"new"
    assert not (folder / "data" / "linked.txt").is_symlink()


def _file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    return path
