"""numpy columns <-> Arrow columns and parquet files, the way LeRobot (Hugging Face datasets) lays
them out: scalar features as plain columns, vectors as fixed-size lists, images as
{bytes, path} structs."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hiljax.storage.files import write_bytes_atomic

from .format import DatasetError

ARROW_TYPES = {"float32": pa.float32(), "float64": pa.float64(), "int32": pa.int32(),
               "int64": pa.int64(), "bool": pa.bool_()}
IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def numeric_column(values: np.ndarray, feature: Mapping) -> pa.Array:
    arrow_type = ARROW_TYPES[feature["dtype"]]
    if tuple(feature["shape"]) == (1,):
        return pa.array(values.reshape(len(values)), arrow_type)
    width = int(np.prod(feature["shape"]))
    flat = pa.array(values.reshape(len(values) * width), arrow_type)
    return pa.FixedSizeListArray.from_arrays(flat, width)


def image_column(pngs: list[bytes]) -> pa.Array:
    return pa.array([{"bytes": data, "path": None} for data in pngs], IMAGE_STRUCT)


def hf_feature(feature: Mapping) -> dict:
    """The Hugging Face `datasets` description of a column (kept in the parquet metadata)."""
    if feature["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": feature["dtype"], "_type": "Value"}
    if tuple(feature["shape"]) == (1,):
        return value
    return {"feature": value, "length": int(np.prod(feature["shape"])), "_type": "Sequence"}


def table_bytes(columns: Mapping[str, pa.Array], metadata: Mapping[str, str] | None = None
                ) -> bytes:
    table = pa.table(dict(columns))
    if metadata:
        table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in metadata.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def write_table(path: Path, columns: Mapping[str, pa.Array],
                metadata: Mapping[str, str] | None = None) -> None:
    write_bytes_atomic(path, table_bytes(columns, metadata))


def hf_metadata(features: Mapping[str, Mapping], columns) -> dict[str, str]:
    described = {k: hf_feature(features[k]) for k in columns if k in features}
    return {"huggingface": json.dumps({"info": {"features": described}})}


def read_table(path: Path, what: str) -> pa.Table:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: {what}")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise DatasetError(f"{path}: not a readable parquet file ({error}): {what}") from None


def to_numpy(column: pa.ChunkedArray | pa.Array, key: str, where: str) -> np.ndarray:
    """A numeric column as (N,) or (N, D); list columns must all have the same length."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_fixed_size_list(array.type) or pa.types.is_list(array.type) or \
            pa.types.is_large_list(array.type):
        lengths = np.asarray(array.value_lengths().fill_null(0))
        if len(array) and (lengths != lengths[0]).any():
            raise DatasetError(f"{where}: column {key!r} has rows of different lengths")
        width = int(lengths[0]) if len(array) else 0
        values = np.asarray(array.flatten().to_numpy(zero_copy_only=False))
        return values.reshape(len(array), width)
    if array.null_count:
        raise DatasetError(f"{where}: column {key!r} has {array.null_count} missing values")
    return np.asarray(array.to_numpy(zero_copy_only=False))
