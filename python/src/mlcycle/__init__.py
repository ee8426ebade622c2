"""mlcycle: helpers for Python ``run:`` stages of mlcycle pipelines.

A ``run:`` stage is any command; mlcycle tells it what to read and write
through environment variables. This package reads them for you::

    import mlcycle

    p = mlcycle.params()                      # MLCYCLE_PARAMS: p.train.lr, p["seed"]
    df = mlcycle.read_table(mlcycle.input("data"))        # pandas, target in df.attrs
    for epoch in range(p.train.epochs):
        mlcycle.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
    mlcycle.write_table(df, mlcycle.output("features"))   # Float64/Utf8 Arrow IPC
    mlcycle.save_model(fitted_estimator)      # ONNX, for evaluate.*, bundles, serve

Everything but the table functions works with the standard library only;
tables need pyarrow (and pandas or polars for DataFrames), imported when
first used; ``save_model`` of a scikit-learn estimator needs skl2onnx.
"""

from ._env import env_name, in_stage, input, inputs, output, outputs, stage, workspace
from ._errors import (
    ModelSaveError,
    NotInStageError,
    ParamNotFoundError,
    TableTypeError,
    UnknownNameError,
)
from ._metrics import log_metric, log_metrics
from ._model import class_name, onnx_metadata, save_model
from ._params import Params, params
from ._table import (
    TARGET_KEY,
    TRANSFORMS_KEY,
    read_table,
    table_target,
    table_transforms,
    write_table,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # the stage's environment
    "stage",
    "workspace",
    "in_stage",
    "params",
    "Params",
    "inputs",
    "outputs",
    "input",
    "output",
    "env_name",
    # tables
    "read_table",
    "write_table",
    "table_target",
    "table_transforms",
    "TARGET_KEY",
    "TRANSFORMS_KEY",
    # step-wise metrics
    "log_metric",
    "log_metrics",
    # models
    "save_model",
    "onnx_metadata",
    "class_name",
    # errors
    "NotInStageError",
    "ParamNotFoundError",
    "UnknownNameError",
    "TableTypeError",
    "ModelSaveError",
]
