"""The MNIST example's accuracy curves: training and validation accuracy per epoch, as a figure.

Apart from the training script so that the figure can be drawn (and checked) from any history
dict, without TensorFlow: Keras's ``model.fit(...).history`` is one such dict. Needs matplotlib
(the ``plots`` extra); the training script imports this module only when it is installed.

Example::

    from accuracy_plot import accuracy_figure

    figure = accuracy_figure({"accuracy": [0.90, 0.95, 0.97], "val_accuracy": [0.91, 0.94, 0.95]})
    figure.savefig("accuracy.png")      # epochs 1, 2, 3 on the x axis, no 1.5 or 2.5
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def accuracy_figure(history: dict[str, list[float]]) -> Figure:
    """A figure of ``history["accuracy"]`` and ``history["val_accuracy"]`` against the epoch,
    numbered from 1, with whole-number epoch ticks only.

    A plain ``Figure``, not one of pyplot's: it needs no screen or backend (a compute node has
    neither), and nothing holds it once the caller drops it.
    """
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    epochs = range(1, len(history["accuracy"]) + 1)
    axes.plot(epochs, history["accuracy"], label="training")
    axes.plot(epochs, history["val_accuracy"], label="validation")
    axes.set(xlabel="epoch", ylabel="accuracy", title="MNIST, 784-300-100-10")
    # Without it matplotlib puts ticks at 2.5, 7.5, ... (or 1.5 for two epochs): an epoch is
    # a whole pass over the data.
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    return figure
