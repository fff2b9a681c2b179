"""Generate Python gRPC stubs from Raven's .proto, for programs that want their own.

    pip install grpcio-tools
    python generate_proto.py            # -> ./generated/raven/v1/market_data_pb2*.py

`raven.client` already ships these (as `raven.v1`); generate your own only
to use the raw protobuf API without installing Raven. The proto lives in
../proto (in a source checkout or the sdist).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--proto",
        type=Path,
        default=HERE.parent / "proto",
        help="folder holding raven/v1/market_data.proto (default ../proto)",
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "generated", help="output folder (default ./generated)"
    )
    args = parser.parse_args(argv)
    source = args.proto / "raven" / "v1" / "market_data.proto"
    if not source.is_file():
        print(f"error: {source} not found; pass --proto", file=sys.stderr)
        return 2
    try:
        from grpc_tools import protoc  # type: ignore[import-untyped]
    except ImportError:
        print("error: grpcio-tools is not installed: pip install grpcio-tools", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{args.proto}",
            f"--python_out={args.out}",
            f"--grpc_python_out={args.out}",
            str(source),
        ]
    )
    if code == 0:
        print(f"generated {args.out / 'raven' / 'v1'}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
