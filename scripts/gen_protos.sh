#!/usr/bin/env bash
# Regenerates the committed protobuf/gRPC modules from protos/: the mesh's wire
# contract in meshtui/v1/ and the demo apps' (emojivoto) in
# meshtui/demo/emojivoto_v1/.
# protos/ mirrors the package, so the generated `from meshtui.v1 import ...`
# lines resolve against the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
python -m grpc_tools.protoc -I protos \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  protos/meshtui/v1/*.proto protos/meshtui/demo/emojivoto_v1/*.proto
