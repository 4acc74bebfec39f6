"""The torch.save zip container, read and written without torch (and without pickle).

A torch.save archive is an uncompressed zip whose entries share one top-level folder
(`archive/` when saving to a buffer): `data.pkl` (the object graph, pickle protocol 2),
`data/<key>` (one raw little-endian storage per key), `byteorder`, `version` and a few
optional records. Storage records are 64-byte aligned by padding the local header's extra
field, so torch can mmap them. Reading the pickle safely is lerobot_codec's job; this module
only handles the container and *emits* pickles for plain data (dict, list, tuple, str, int,
float, bool, None, numpy arrays as tensors) opcode by opcode, so nothing here can run code.
"""

import io
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from transport.errors import PayloadError

ZIP_MAGIC = b"PK\x03\x04"
# zipfile builds a ~500-byte ZipInfo per central-directory entry (46 bytes + name) before any
# entry can be checked: capping the directory's size caps that at ~45 MB. An honest archive has
# one entry per storage, ~80 bytes each (a 1000-step image episode: ~0.5 MB).
MAX_CENTRAL_DIRECTORY_BYTES = 4 * 1024 * 1024
_END_OF_DIRECTORY = struct.Struct("<4s4xHHII")  # signature, entries, total entries, size, offset
_ZIP64_LOCATOR_SIZE = 20
ALIGNMENT = 64
ARCHIVE_NAME = "archive"
# numpy wire dtype -> legacy torch storage class name, as torch.save writes them.
STORAGE_TYPES = {
    "<f4": "FloatStorage",
    "<f8": "DoubleStorage",
    "<f2": "HalfStorage",
    "bfloat16": "BFloat16Storage",
    "<i8": "LongStorage",
    "<i4": "IntStorage",
    "<i2": "ShortStorage",
    "|i1": "CharStorage",
    "|u1": "ByteStorage",
    "|b1": "BoolStorage",
}


@dataclass
class TorchArchive:
    pickle_bytes: bytes
    records: dict[str, bytes]  # storage key -> raw bytes


def is_torch_archive(payload: bytes | memoryview) -> bool:
    return bytes(payload[:4]) == ZIP_MAGIC


def read_archive(payload: bytes | memoryview, max_bytes: int | None = None) -> TorchArchive:
    """Split a torch.save archive into its pickle and storage records (validated, not unpickled)."""
    if max_bytes is not None and len(payload) > max_bytes:
        raise PayloadError(f"archive too large: {len(payload)} > {max_bytes} bytes")
    if not is_torch_archive(payload):
        raise PayloadError("not a torch.save archive (no zip signature)")
    directory_bytes = _central_directory_size(payload)
    if directory_bytes > MAX_CENTRAL_DIRECTORY_BYTES:
        raise PayloadError(f"zip central directory of {directory_bytes} bytes exceeds "
                           f"{MAX_CENTRAL_DIRECTORY_BYTES}")
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            return _read_entries(archive, len(payload))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as error:  # zipfile: unsupported version, "encrypted"
        if isinstance(error, PayloadError):
            raise
        raise PayloadError(f"corrupt torch.save archive: {error}") from None


def _central_directory_size(payload: bytes | memoryview) -> int:
    """The central directory's size as zipfile will read it (the zip64 record's when there is
    one, as torch writes); 0 when there is no end record (zipfile then refuses the archive)."""
    tail = bytes(payload[-(_END_OF_DIRECTORY.size + 0xFFFF):])  # the end record + its comment
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + _END_OF_DIRECTORY.size > len(tail):
        return 0
    size = _END_OF_DIRECTORY.unpack_from(tail, end)[3]
    locator = end - _ZIP64_LOCATOR_SIZE
    if locator >= 0 and tail[locator:locator + 4] == b"PK\x06\x07":
        (record_at,) = struct.unpack_from("<Q", tail, locator + 8)
        record = bytes(payload[record_at:record_at + 56]) if record_at < len(payload) else b""
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            size = max(size, struct.unpack_from("<Q", record, 40)[0])
    return size


def _read_entries(archive: zipfile.ZipFile, payload_size: int) -> TorchArchive:
    infos = archive.infolist()
    folders = {info.filename.split("/", 1)[0] for info in infos}
    if len(folders) != 1 or any("/" not in info.filename for info in infos):
        raise PayloadError(
            f"torch.save archive must have one top folder, found {sorted(folders)[:5]}"
        )
    folder = folders.pop()
    # Stored entries only: a compressed entry could be a zip bomb, and torch never writes one.
    if any(info.compress_type != zipfile.ZIP_STORED for info in infos):
        raise PayloadError("compressed entries in a torch.save archive")
    if sum(info.file_size for info in infos) > payload_size:
        raise PayloadError("archive entries claim more bytes than the payload holds")
    names = {info.filename[len(folder) + 1 :]: info for info in infos}
    if "data.pkl" not in names:
        raise PayloadError("torch.save archive without data.pkl")
    if "byteorder" in names and archive.read(names["byteorder"]) != b"little":
        raise PayloadError("big-endian torch.save archives are not supported")
    records = {
        name[len("data/") :]: archive.read(info)
        for name, info in names.items()
        if name.startswith("data/")
    }
    return TorchArchive(archive.read(names["data.pkl"]), records)


# ----------------------------------------------------------------------------- writing


class _ArchiveWriter:
    """Zip writer with 64-byte aligned entries (torch's 'FB' extra-field padding)."""

    def __init__(self):
        self.buffer = io.BytesIO()
        self.zip = zipfile.ZipFile(self.buffer, "w", compression=zipfile.ZIP_STORED)

    def add(self, name: str, data) -> None:
        full_name = f"{ARCHIVE_NAME}/{name}"
        info = zipfile.ZipInfo(full_name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        header_end = self.buffer.tell() + 30 + len(full_name.encode()) + 4
        pad = -header_end % ALIGNMENT
        info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # 0x4246 = "FB"
        self.zip.writestr(info, data)

    def finish(self) -> bytes:
        self.zip.close()
        return self.buffer.getvalue()


def write_archive(obj) -> bytes:
    """torch.save(obj) without torch, for plain data and numpy arrays (read back as tensors)."""
    emitter = _PickleEmitter()
    pickle_bytes = emitter.dump(obj)
    writer = _ArchiveWriter()
    writer.add("data.pkl", pickle_bytes)
    writer.add(".format_version", b"1")
    writer.add(".storage_alignment", b"64")
    writer.add("byteorder", b"little")
    for key, raw in enumerate(emitter.storages):
        writer.add(f"data/{key}", raw)
    writer.add("version", b"3\n")
    return writer.finish()


class _PickleEmitter:
    """Writes pickle protocol 2 opcodes for a closed set of types; arrays become tensors."""

    def __init__(self):
        self.out = io.BytesIO()
        self.storages: list[memoryview] = []
        # id(array) -> (storage key, array): an array object met twice is ONE storage, as
        # torch.save stores a tensor shared by two state dicts once (the array is held here so
        # its id cannot be reused by another object while writing).
        self._shared: dict[int, tuple[int, np.ndarray]] = {}

    def dump(self, obj) -> bytes:
        self.out.write(b"\x80\x02")  # PROTO 2
        self._emit(obj)
        self.out.write(b".")  # STOP
        return self.out.getvalue()

    def _emit(self, obj) -> None:
        write = self.out.write
        if obj is None:
            write(b"N")
        elif obj is True or obj is False:
            write(b"\x88" if obj else b"\x89")
        elif isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
            self._emit_int(int(obj))
        elif isinstance(obj, (float, np.floating)):
            write(b"G" + struct.pack(">d", float(obj)))
        elif isinstance(obj, str):
            raw = obj.encode("utf-8")
            write(b"X" + struct.pack("<I", len(raw)) + raw)
        elif isinstance(obj, np.ndarray):
            self._emit_tensor(obj)
        elif isinstance(obj, Mapping):
            write(b"}(")  # EMPTY_DICT, MARK
            for key, value in obj.items():
                self._emit(key)
                self._emit(value)
            write(b"u")  # SETITEMS
        elif isinstance(obj, list):
            write(b"](")  # EMPTY_LIST, MARK
            for item in obj:
                self._emit(item)
            write(b"e")  # APPENDS
        elif isinstance(obj, tuple):
            write(b"(")
            for item in obj:
                self._emit(item)
            write(b"t")
        else:
            raise TypeError(f"cannot write {type(obj).__name__} into a torch.save archive")

    def _emit_int(self, value: int) -> None:
        if -(2**31) <= value < 2**31:
            self.out.write(b"J" + struct.pack("<i", value))  # BININT
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out.write(b"\x8a" + bytes([len(raw)]) + raw)  # LONG1

    def _emit_tensor(self, array: np.ndarray) -> None:
        if array.dtype.name == "bfloat16":
            wire, little = "bfloat16", array.dtype
        else:
            little = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
            wire = little.str
        if wire not in STORAGE_TYPES:
            raise TypeError(f"dtype {array.dtype} has no torch storage type")
        contiguous = array.astype(little, copy=False)
        if not contiguous.flags.c_contiguous:
            contiguous = contiguous.copy(order="C")
        if id(array) in self._shared:
            key = self._shared[id(array)][0]
        else:
            key = len(self.storages)
            self._shared[id(array)] = (key, array)
            self.storages.append(contiguous.reshape(-1).view(np.uint8).data)
        strides = tuple(
            int(np.prod(contiguous.shape[i + 1 :], dtype=np.int64)) for i in range(contiguous.ndim)
        )
        write = self.out.write
        write(b"ctorch._utils\n_rebuild_tensor_v2\n(")
        write(b"(")  # persistent id: ('storage', storage_type, key, location, numel)
        self._emit("storage")
        write(f"ctorch\n{STORAGE_TYPES[wire]}\n".encode())
        self._emit(str(key))
        self._emit("cpu")
        self._emit(int(contiguous.size))
        write(b"tQ")  # TUPLE, BINPERSID
        self._emit(0)  # storage offset
        self._emit(tuple(int(d) for d in contiguous.shape))
        self._emit(strides)
        self._emit(False)  # requires_grad
        write(b"ccollections\nOrderedDict\n)R")  # backward hooks: OrderedDict()
        write(b"tR")  # TUPLE, REDUCE
