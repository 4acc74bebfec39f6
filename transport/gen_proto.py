"""Regenerate the gRPC stubs in transport/_generated/ from proto/services.proto.

Run from the repository root:

    python -m transport.gen_proto            # rewrite transport/_generated/
    python -m transport.gen_proto --out DIR  # write elsewhere (the staleness test does this)

Needs grpcio-tools (a dev dependency). protoc's raw output is post-processed so the stubs
import as a package and run on every protobuf/grpcio the project supports:
- `import services_pb2` becomes a relative import (protoc assumes a top-level module);
- the protobuf runtime version guard is dropped: protoc pins the runtime to its own release
  (7.x here), but this message-only gencode only uses builder APIs present since protobuf 5.26,
  so it runs on the protobuf>=5.28 that pyproject allows;
- the grpcio version guard is lowered to the grpcio floor in pyproject (1.66), which already
  has the `_registered_method` keyword the stubs use.
"""

import argparse
import logging
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
PROTO_FILE = "services.proto"
DEFAULT_OUT = Path(__file__).resolve().parent / "_generated"
GRPC_FLOOR = "1.66.0"
GENERATED_FILES = ("services_pb2.py", "services_pb2.pyi", "services_pb2_grpc.py")
INIT_TEXT = '"""protoc output for proto/services.proto; regenerate with `python -m transport.gen_proto`."""\n'

log = logging.getLogger(__name__)

_RUNTIME_GUARD = re.compile(
    r"from google\.protobuf import runtime_version as _runtime_version\n"
    r"|_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:    .*\n)*?\)\n"
)


def _run_protoc(work_dir: Path) -> None:
    from grpc_tools import protoc  # dev-only dependency, imported only when regenerating

    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={work_dir}",
        f"--pyi_out={work_dir}",
        f"--grpc_python_out={work_dir}",
        str(PROTO_DIR / PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO_DIR / PROTO_FILE}")


def _postprocess(name: str, text: str) -> str:
    if name == "services_pb2.py":
        text, removed = _RUNTIME_GUARD.subn("", text)
        if removed != 2:
            raise RuntimeError("protoc output changed shape: runtime version guard not found")
    if name == "services_pb2_grpc.py":
        text = text.replace("\nimport services_pb2 as", "\nfrom . import services_pb2 as")
        text = re.sub(
            r"GRPC_GENERATED_VERSION = '[^']*'", f"GRPC_GENERATED_VERSION = '{GRPC_FLOOR}'", text
        )
    return text


def generate(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Write the post-processed stubs (and the package __init__) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        _run_protoc(Path(tmp))
        written = []
        for name in GENERATED_FILES:
            text = _postprocess(name, (Path(tmp) / name).read_text())
            (out_dir / name).write_text(text)
            written.append(out_dir / name)
    (out_dir / "__init__.py").write_text(INIT_TEXT)
    return written + [out_dir / "__init__.py"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in generate(args.out):
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
