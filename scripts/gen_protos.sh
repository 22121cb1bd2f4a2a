#!/usr/bin/env bash
# Regenerates the committed protobuf/gRPC modules in meshtui/v1/ from protos/.
# protos/ mirrors the package, so the generated `from meshtui.v1 import ...`
# lines resolve against the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
python -m grpc_tools.protoc -I protos \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  protos/meshtui/v1/*.proto
