"""Data for runs, v1's ``azureml.data``: datasets (files and tables), the paths they read and
the references runs take.

==================================  =====================================================
name                                v1 module (``azureml.data.`` ...)
==================================  =====================================================
:class:`FileDataset`                ``file_dataset``
:class:`TabularDataset`             ``tabular_dataset``
:class:`FileDatasetFactory`         ``dataset_factory`` (``Dataset.File``)
:class:`TabularDatasetFactory`      ``dataset_factory`` (``Dataset.Tabular``)
:class:`DataPath`                   ``datapath``
:class:`DataReference`              ``data_reference``
:class:`DatasetConsumptionConfig`   ``dataset_consumption_config``
:class:`AbstractDataset`            ``abstract_dataset``
==================================  =====================================================

Example::

    from modelyard.data import FileDataset, TabularDataset
    from modelyard.data.data_reference import DataReference
"""

from __future__ import annotations

from modelyard.data.abstract_dataset import AbstractDataset
from modelyard.data.data_reference import DataReference
from modelyard.data.datapath import DataPath
from modelyard.data.dataset_consumption_config import DatasetConsumptionConfig
from modelyard.data.dataset_factory import FileDatasetFactory, TabularDatasetFactory
from modelyard.data.file_dataset import FileDataset
from modelyard.data.tabular_dataset import TabularDataset

__all__ = [
    "AbstractDataset",
    "DataPath",
    "DataReference",
    "DatasetConsumptionConfig",
    "FileDataset",
    "FileDatasetFactory",
    "TabularDataset",
    "TabularDatasetFactory",
]
