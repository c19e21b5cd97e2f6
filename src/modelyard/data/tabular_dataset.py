"""A dataset of rows read from delimited or Parquet files (v1's
``azureml.data.tabular_dataset.TabularDataset``), read with pandas and pyarrow.

Row and column steps are recorded in the definition and applied, in order, when the rows are
read. pandas and pyarrow come with the ``data`` extra (``pip install "modelyard[data]"``);
without them, reading says so.

Example::

    iris = Dataset.Tabular.from_delimited_files(path=(ds, "iris/*.csv"))
    train, test = iris.drop_columns("id").random_split(0.8, seed=1)
    train.to_pandas_dataframe().shape
"""

from __future__ import annotations

import importlib
from typing import Any

from modelyard.backend.dataset_files import pick
from modelyard.data.abstract_dataset import TABULAR, AbstractDataset
from modelyard.errors import ConfigError, ValidationError
from modelyard.store.files import FileStore

DELIMITED = "delimited"
PARQUET = "parquet"
DROP_COLUMNS = "drop_columns"
KEEP_COLUMNS = "keep_columns"
TIMESTAMP = "with_timestamp_columns"


def data_module(name: str) -> Any:
    """``pandas`` or ``pyarrow.parquet``, imported when rows are first read (a file dataset
    or a registration needs neither), or a ConfigError naming the extra to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(
            f"reading a tabular dataset needs pandas and pyarrow ({name} is not installed): "
            'pip install "modelyard[data]"'
        ) from None


def _columns(field: str, columns: str | list[str]) -> list[str]:
    chosen = [columns] if isinstance(columns, str) else list(columns)
    if not chosen or not all(isinstance(c, str) and c for c in chosen):
        raise ValidationError(field, "give a column name or a list of column names")
    return chosen


class TabularDataset(AbstractDataset):
    """Rows of delimited or Parquet files; see the module docstring."""

    _type = TABULAR

    # -- column steps ---------------------------------------------------------------------

    def drop_columns(self, columns: str | list[str]) -> TabularDataset:
        """The dataset without ``columns``; a column it does not have is an error when the
        rows are read.

        Example::

            iris.drop_columns(["id"]).to_pandas_dataframe().columns
        """
        return self._with_step({"op": DROP_COLUMNS, "columns": _columns("columns", columns)})

    def keep_columns(self, columns: str | list[str], validate: bool = False) -> TabularDataset:
        """The dataset with ``columns`` only, in the order given.

        Example::

            iris.keep_columns(["sepal_length", "species"])
        """
        return self._with_step({"op": KEEP_COLUMNS, "columns": _columns("columns", columns)})

    def with_timestamp_columns(
        self, timestamp: str | None = None, partition_timestamp: str | None = None
    ) -> TabularDataset:
        """Name the column that holds each row's time; it is read as a pandas datetime.

        Example::

            events.with_timestamp_columns(timestamp="time")
        """
        if partition_timestamp is not None:
            raise ValidationError(
                "partition_timestamp", "partition timestamps are not supported; use timestamp"
            )
        columns = [] if timestamp is None else _columns("timestamp", timestamp)
        return self._with_step({"op": TIMESTAMP, "columns": columns})

    # -- reading --------------------------------------------------------------------------

    def to_pandas_dataframe(
        self, on_error: str = "null", out_of_range_datetime: str = "null"
    ) -> Any:
        """The rows as a pandas DataFrame, every step applied in order. v1's error options
        are accepted; a value that does not parse keeps its text (columns are inferred by
        pandas).

        Example::

            df = Dataset.get_by_name(ws, "iris").to_pandas_dataframe()
        """
        pandas = data_module("pandas")
        frames = []
        for group in self._groups():
            for info in group.files:
                frames.append(self._read(pandas, group.store, info.path))
        frame = pandas.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        for step in self._definition.get("steps", []):
            op = step["op"]
            if op in (DROP_COLUMNS, KEEP_COLUMNS):
                missing = [c for c in step["columns"] if c not in frame.columns]
                if missing:
                    raise ValidationError(
                        "columns",
                        f"{op}: the dataset has no column {missing[0]!r} "
                        f"(its columns: {list(map(str, frame.columns))})",
                    )
                if op == DROP_COLUMNS:
                    frame = frame.drop(columns=step["columns"])
                else:
                    frame = frame[step["columns"]]
            elif op == TIMESTAMP:
                for column in step["columns"]:
                    frame[column] = pandas.to_datetime(frame[column])
            else:
                frame = frame.iloc[pick(len(frame), step)].reset_index(drop=True)
        return frame

    def _read(self, pandas: Any, store: FileStore, path: str) -> Any:
        source = self._definition.get("format") or {}
        with store.open_read(path, "path") as stream:
            if source.get("kind") == PARQUET:
                parquet = data_module("pyarrow.parquet")
                return parquet.read_table(stream).to_pandas()
            options: dict[str, Any] = {
                "sep": source.get("separator", ","),
                "header": 0 if source.get("header", True) else None,
                "encoding": source.get("encoding", "utf8"),
            }
            if not source.get("infer_column_types", True):
                options["dtype"] = str
                options["keep_default_na"] = False
            try:
                frame = pandas.read_csv(stream, **options)
            except (ValueError, UnicodeDecodeError) as error:
                raise ValidationError(
                    "path", f"{path!r} cannot be read as delimited text: {error}"
                ) from None
            if not source.get("header", True):
                # v1's names for the columns of files without a header line.
                frame.columns = [f"Column{i + 1}" for i in range(len(frame.columns))]
            return frame


__all__ = ["TabularDataset"]
