"""Datasets as v1 notebooks use them: files and tables from datastores, registered versions,
and datasets given to runs (real SQLite files, real folders, a real S3 endpoint, real runs)."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from modelyard import Datastore, Experiment, Workspace
from modelyard.data import DataPath, FileDataset, TabularDataset
from modelyard.data.dataset_consumption_config import DatasetConsumptionConfig
from modelyard.dataset import Dataset
from modelyard.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import Estimator

SCRIPTS = Path(__file__).parent / "dataset_scripts"
MNIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"
IRIS_1 = "id,length,species\n1,5.1,setosa\n2,4.9,setosa\n3,6.2,virginica\n"
IRIS_2 = "id,length,species\n4,5.9,versicolor\n5,6.0,versicolor\n"


def _mnist_files(folder: Path) -> list[str]:
    """The MNIST sample's .gz files in ``folder`` (copied when ../shared has them, else small
    generated ones), by name."""
    folder.mkdir(parents=True)
    found = sorted(MNIST.glob("*.gz")) if MNIST.is_dir() else []
    if found:
        for path in found:
            shutil.copy(path, folder / path.name)
    else:
        for name in ("t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz"):
            (folder / name).write_bytes(gzip.compress(name.encode() * 100))
    return sorted(p.name for p in folder.glob("*.gz"))


@pytest.fixture
def datastore(workspace: Workspace, tmp_path: Path) -> Datastore:
    """The default datastore holding mnist/*.gz (plus a README) and iris/1.csv, iris/2.csv."""
    source = tmp_path / "source"
    _mnist_files(source / "mnist")
    (source / "mnist" / "README.md").write_text("not a .gz")
    (source / "iris").mkdir()
    (source / "iris" / "1.csv").write_text(IRIS_1)
    (source / "iris" / "2.csv").write_text(IRIS_2)
    ds = workspace.get_default_datastore()
    ds.upload(str(source), show_progress=False)
    return ds


def _gz_names(ds: Datastore) -> list[str]:
    folder = ds._files().local_path("mnist")
    return sorted(p.name for p in folder.glob("*.gz"))


# -- file datasets ------------------------------------------------------------------------


def test_from_files_with_a_glob_lists_the_matching_files(datastore: Datastore) -> None:
    mnist = Dataset.File.from_files(path=[(datastore, "mnist/*.gz")])
    names = _gz_names(datastore)
    assert isinstance(mnist, FileDataset)
    assert mnist.to_path() == ["/" + name for name in names]
    # The other ways v1 names the same files give the same dataset.
    assert Dataset.File.from_files(path=DataPath(datastore, "mnist/*.gz")) == mnist
    assert Dataset.File.from_files(path=datastore.path("mnist/*.gz")) == mnist
    assert Dataset.File.from_files(path=(datastore, "mnist")).to_path() == sorted(
        ["/README.md", *("/" + n for n in names)]
    )
    assert mnist.take(1).to_path() == ["/" + names[0]]
    assert mnist.skip(1).to_path() == ["/" + n for n in names[1:]]
    first, second = mnist.random_split(0.5, seed=3)
    assert sorted(first.to_path() + second.to_path()) == mnist.to_path()
    assert mnist.take_sample(1.0, seed=2).to_path() == mnist.to_path()
    assert mnist.take_sample(0.0, seed=2).to_path() == []


def test_download_copies_the_files_and_refuses_to_overwrite(
    datastore: Datastore, tmp_path: Path
) -> None:
    mnist = Dataset.File.from_files(path=[(datastore, "mnist/*.gz")])
    target = tmp_path / "copy"
    paths = mnist.download(target_path=target)
    names = _gz_names(datastore)
    assert sorted(os.listdir(target)) == names
    assert paths == [str(target / n) for n in names]
    original = datastore._files().local_path("mnist") / names[0]
    assert (target / names[0]).read_bytes() == original.read_bytes()
    with pytest.raises(ConflictError, match="overwrite=True"):
        mnist.download(target_path=target)
    (target / names[0]).write_bytes(b"changed")
    mnist.download(target_path=target, overwrite=True)
    assert (target / names[0]).read_bytes() == original.read_bytes()


def test_mount_gives_a_folder_in_place_or_a_copy_removed_on_exit(datastore: Datastore) -> None:
    whole = Dataset.File.from_files(path=(datastore, "mnist"))
    with whole.mount() as context:
        assert context.mount_point == str(datastore._files().local_path("mnist"))
    assert (datastore._files().local_path("mnist") / "README.md").exists()  # left in place
    pattern = Dataset.File.from_files(path=(datastore, "mnist/*.gz"))
    with pattern.mount() as context:
        assert context.mount_point is not None
        folder = Path(context.mount_point)
        assert sorted(os.listdir(folder)) == _gz_names(datastore)  # the README is not there
    assert not folder.exists()


def test_bad_paths_are_refused(datastore: Datastore, tmp_path: Path) -> None:
    for bad in ("../x", "/etc/passwd", "mnist/../../x"):
        with pytest.raises(ValidationError, match="path"):
            Dataset.File.from_files(path=(datastore, bad))
    with pytest.raises(ValidationError, match="matches no file"):
        Dataset.File.from_files(path=(datastore, "mnist/*.csv"))
    with pytest.raises(ValidationError, match="not a URL"):
        Dataset.File.from_files(path="relative/folder")
    # A link inside the datastore that leads out of it is never followed.
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("private")
    root = datastore._files().local_path("")
    (root / "escape").symlink_to(secret)
    with pytest.raises(ValidationError, match="symbolic link"):
        Dataset.File.from_files(path=(datastore, "escape"))
    with pytest.raises(ValidationError):
        Dataset.File.from_files(path=(datastore, "escape/*.txt"))
    (root / "mnist" / "leak.gz").symlink_to(secret / "key.txt")
    everything = Dataset.File.from_files(path=(datastore, "mnist/*.gz"))
    assert "/leak.gz" not in everything.to_path()


def test_a_file_url_is_a_source(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    _mnist_files(folder)
    dataset = Dataset.File.from_files(path=f"file://{folder}/*.gz")
    assert dataset.to_path() == ["/" + p.name for p in sorted(folder.glob("*.gz"))]


def test_an_s3_datastore_dataset_downloads_and_mounts(
    workspace: Workspace, s3_store: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, options = s3_store
    s3 = Datastore.register(workspace, "raw", url, **options)
    source = tmp_path / "up"
    (source / "mnist").mkdir(parents=True)
    (source / "mnist" / "a.gz").write_bytes(b"A" * 10)
    (source / "mnist" / "b.gz").write_bytes(b"B" * 20)
    s3.upload(str(source), show_progress=False)
    mnist = Dataset.File.from_files(path=[(s3, "mnist/*.gz")])
    assert mnist.to_path() == ["/a.gz", "/b.gz"]
    mnist.download(target_path=tmp_path / "down")
    assert (tmp_path / "down" / "b.gz").read_bytes() == b"B" * 20
    with mnist.mount() as context:
        assert context.mount_point is not None
        folder = Path(context.mount_point)
        assert (folder / "a.gz").read_bytes() == b"A" * 10
    assert not folder.exists()


# -- tabular datasets ---------------------------------------------------------------------


def test_delimited_files_to_pandas_with_transformations(datastore: Datastore) -> None:
    iris = Dataset.Tabular.from_delimited_files(path=(datastore, "iris/*.csv"))
    assert isinstance(iris, TabularDataset)
    frame = iris.to_pandas_dataframe()
    assert frame["id"].tolist() == [1, 2, 3, 4, 5]
    assert frame["length"].dtype.kind == "f"
    assert iris.take(2).to_pandas_dataframe()["id"].tolist() == [1, 2]
    assert iris.skip(3).to_pandas_dataframe()["id"].tolist() == [4, 5]
    assert iris.skip(1).take(2).to_pandas_dataframe()["id"].tolist() == [2, 3]
    assert iris.drop_columns("species").to_pandas_dataframe().columns.tolist() == ["id", "length"]
    assert iris.keep_columns(["species", "id"]).to_pandas_dataframe().columns.tolist() == [
        "species",
        "id",
    ]
    train, test = iris.random_split(0.6, seed=11)
    train_ids = train.to_pandas_dataframe()["id"].tolist()
    test_ids = test.to_pandas_dataframe()["id"].tolist()
    assert sorted(train_ids + test_ids) == [1, 2, 3, 4, 5]
    assert train.to_pandas_dataframe()["id"].tolist() == train_ids  # the same split each time
    assert iris.take_sample(1.0, seed=1).to_pandas_dataframe().shape == (5, 3)
    assert iris.take_sample(0.0, seed=1).to_pandas_dataframe().shape[0] == 0
    text = Dataset.Tabular.from_delimited_files(
        path=(datastore, "iris/1.csv"), infer_column_types=False
    )
    assert text.to_pandas_dataframe()["id"].tolist() == ["1", "2", "3"]
    with pytest.raises(ValidationError, match="no column 'colour'"):
        iris.drop_columns("colour").to_pandas_dataframe()
    headless = Dataset.Tabular.from_delimited_files(path=(datastore, "iris/2.csv"), header=False)
    assert headless.to_pandas_dataframe().columns.tolist() == ["Column1", "Column2", "Column3"]
    assert len(headless.to_pandas_dataframe()) == 3  # the header line is a row now


def test_timestamp_columns_are_read_as_times(datastore: Datastore, tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    (folder / "e.csv").write_text("time,value\n2024-01-02 03:04:05,1\n2024-01-03 00:00:00,2\n")
    datastore.upload(str(folder), target_path="events", show_progress=False)
    events = Dataset.Tabular.from_delimited_files(path=(datastore, "events/e.csv"))
    frame = events.with_timestamp_columns(timestamp="time").to_pandas_dataframe()
    assert frame["time"].dt.day.tolist() == [2, 3]


def test_parquet_files_to_pandas(datastore: Datastore, tmp_path: Path) -> None:
    import pandas

    folder = tmp_path / "pq"
    folder.mkdir()
    pandas.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}).to_parquet(folder / "p1.parquet")
    pandas.DataFrame({"x": [4], "y": ["d"]}).to_parquet(folder / "p2.parquet")
    datastore.upload(str(folder), target_path="events", show_progress=False)
    events = Dataset.Tabular.from_parquet_files(path=[(datastore, "events/*.parquet")])
    frame = events.keep_columns("x").skip(1).to_pandas_dataframe()
    assert frame["x"].tolist() == [2, 3, 4]


def test_register_pandas_dataframe_writes_parquet_and_registers_versions(
    workspace: Workspace, datastore: Datastore
) -> None:
    import pandas

    frame = pandas.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    first = Dataset.Tabular.register_pandas_dataframe(
        frame, (datastore, "frames"), "frame", description="three rows", show_progress=False
    )
    again = Dataset.Tabular.register_pandas_dataframe(
        frame.head(1), (datastore, "frames"), "frame", show_progress=False
    )
    assert (first.version, again.version) == (1, 2)
    assert Dataset.get_by_name(workspace, "frame", version=1).to_pandas_dataframe().equals(frame)
    assert Dataset.get_by_name(workspace, "frame").to_pandas_dataframe()["y"].tolist() == ["a"]
    written = list(datastore._files().local_path("frames").rglob("*.parquet"))
    assert len(written) == 2 and {path.name for path in written} == {"part-0.parquet"}
    with pytest.raises(ValidationError, match="DataFrame"):
        Dataset.Tabular.register_pandas_dataframe([1, 2], (datastore, "frames"), "frame")
    with pytest.raises(ValidationError):
        Dataset.Tabular.register_pandas_dataframe(frame, (datastore, "../out"), "frame")


# -- registration -------------------------------------------------------------------------


def test_register_versions_and_get_by_name(workspace: Workspace, datastore: Datastore) -> None:
    iris = Dataset.Tabular.from_delimited_files(path=(datastore, "iris/*.csv"))
    first = iris.register(workspace, "iris", description="flowers", tags={"kind": "csv"})
    assert (first.name, first.version, first.description) == ("iris", 1, "flowers")
    assert iris.register(workspace, "iris").version == 1  # unchanged: no new version
    smaller = iris.take(2)
    with pytest.raises(ConflictError, match="create_new_version=True"):
        smaller.register(workspace, "iris")
    second = smaller.register(workspace, "iris", create_new_version=True)
    assert second.version == 2
    for version in (1, "1"):
        got = Dataset.get_by_name(workspace, "iris", version=version)
        assert got.version == 1 and got.tags == {"kind": "csv"}
        assert isinstance(got, TabularDataset)
        assert len(got.to_pandas_dataframe()) == 5
    latest = Dataset.get_by_name(workspace, "iris")
    assert latest.version == 2 and len(latest.to_pandas_dataframe()) == 2  # type: ignore[attr-defined]
    assert Dataset.get_by_name(workspace, "iris", version="latest") == latest
    assert Dataset.get_by_id(workspace, first.id or "").version == 1
    with pytest.raises(NotFoundError, match="'iris'"):
        Dataset.get_by_name(workspace, "iris", version=3)
    with pytest.raises(ValidationError, match="version"):
        Dataset.get_by_name(workspace, "iris", version="two")
    Dataset.File.from_files(path=(datastore, "mnist/*.gz")).register(workspace, "mnist")
    assert {name: d.version for name, d in workspace.datasets.items()} == {"iris": 2, "mnist": 1}
    assert isinstance(workspace.datasets["mnist"], FileDataset)
    other = Workspace.create("other", folder=workspace.folder.parent / "other")
    with pytest.raises(ValidationError, match="register it there"):
        iris.register(other, "iris")


def test_a_consumption_config_travels_as_json(datastore: Datastore) -> None:
    mnist = Dataset.File.from_files(path=(datastore, "mnist/*.gz"))
    config = mnist.as_named_input("mnist").as_download(path_on_compute="data")
    text = json.dumps(config.to_config())
    again = DatasetConsumptionConfig.from_config(json.loads(text), datastore.workspace)
    assert again == config and again.mode == "download" and again.path_on_compute == "data"
    assert str(config) == "$MODELYARD_DATAREFERENCE_mnist"
    with pytest.raises(ValidationError, match="path_on_compute"):
        mnist.as_named_input("mnist").as_download(path_on_compute="../out")


# -- runs ---------------------------------------------------------------------------------


def _log(run: Any) -> str:
    return str(run._backend.read_run_file(run.id, "user_logs/std_log.txt", 0, 1 << 30).decode())


@pytest.mark.parametrize("mode", ["mount", "download"])
def test_a_run_reads_its_datasets(
    workspace: Workspace, experiment: Experiment, datastore: Datastore, mode: str
) -> None:
    mnist = Dataset.File.from_files(path=(datastore, "mnist/*.gz")).register(workspace, "mnist")
    iris = Dataset.Tabular.from_delimited_files(path=(datastore, "iris/*.csv"))
    iris = iris.register(workspace, "iris")
    named = mnist.as_named_input("mnist")
    given = named.as_mount() if mode == "mount" else named.as_download()
    run = experiment.submit(
        Estimator(
            str(SCRIPTS),
            "use_datasets.py",
            script_params={"--data": given},
            inputs=[iris.as_named_input("iris")],
        )
    )
    run.wait_for_completion()
    log = _log(run)
    assert run.get_status() == "Completed", log
    assert f"arg_files {json.dumps(_gz_names(datastore))}" in log  # the pattern's files only
    assert "input_mnist True" in log
    assert "input_iris_rows 5" in log
    assert "by_name iris 1" in log and "by_name_rows 5" in log
    assert "register_refused True" in log
    recorded = run.get_details()["inputDatasets"]
    assert {
        (
            i["consumptionDetails"]["inputName"],
            i["consumptionDetails"]["mechanism"],
            i["dataset"]["name"],
        )
        for i in recorded
    } == {("mnist", mode.capitalize(), "mnist"), ("iris", "Direct", "iris")}


def test_reading_rows_without_pandas_names_the_extra(
    datastore: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    iris = Dataset.Tabular.from_delimited_files(path=(datastore, "iris/*.csv"))
    monkeypatch.setitem(sys.modules, "pandas", None)  # what an install without it sees
    with pytest.raises(ConfigError, match=r'pip install "modelyard\[data\]"'):
        iris.to_pandas_dataframe()
    # Making, registering and listing files need neither.
    assert iris.register(datastore.workspace, "iris").version == 1


def test_a_run_mounts_an_s3_dataset_given_in_arguments(
    workspace: Workspace,
    experiment: Experiment,
    s3_store: tuple[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    url, options = s3_store
    s3 = Datastore.register(workspace, "raw", url, **options)
    source = tmp_path / "up"
    (source / "mnist").mkdir(parents=True)
    (source / "mnist" / "a.gz").write_bytes(b"A" * 3)
    (source / "mnist" / "b.gz").write_bytes(b"B" * 3)
    (source / "mnist" / "c.txt").write_bytes(b"C")
    s3.upload(str(source), show_progress=False)
    mnist = Dataset.File.from_files(path=[(s3, "mnist/*.gz")])
    run = experiment.submit(
        ScriptRunConfig(
            str(SCRIPTS),
            "list_inputs.py",
            arguments=[
                "--data",
                mnist.as_named_input("mnist").as_mount(),
                # Given as it is, a file dataset reaches the script as a dataset of local files.
                "--files",
                mnist.skip(1).as_named_input("files"),
            ],
        )
    )
    run.wait_for_completion()
    log = _log(run)
    assert run.get_status() == "Completed", log
    assert 'arg_files ["a.gz", "b.gz"]' in log and "a_bytes AAA" in log
    assert 'direct_paths ["/b.gz"]' in log


def test_web_urls_are_sources_as_in_v1_mnist_notebooks(tmp_path: Path) -> None:
    """``from_files(path=[web urls])``, served here by a real HTTP server on 127.0.0.1."""
    served = tmp_path / "served"
    names = _mnist_files(served / "mnist")
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/mnist"
        web = Dataset.File.from_files(path=[f"{base}/{name}" for name in names])
        assert web.to_path() == ["/" + name for name in names]
        web.download(target_path=tmp_path / "down")
        for name in names:
            assert (tmp_path / "down" / name).read_bytes() == (served / "mnist" / name).read_bytes()
    finally:
        server.shutdown()
        thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
