#!/usr/bin/env bash
# Regenerates protos/gen/ts from protos/ with the pinned ts-proto plugin.
# protoc itself is grpc_tools.protoc from the project's virtualenv.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PY:-$root/.venv/bin/python}"
google_protos="$("$py" -c "import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))")"
common_protos="$("$py" -c "import google.api.field_behavior_pb2 as m, os; print(os.path.dirname(os.path.dirname(os.path.dirname(m.__file__))))")"
out="$root/protos/gen/ts"
rm -rf "$out" && mkdir -p "$out"
cd "$root"
"$py" -m grpc_tools.protoc -I protos -I "$google_protos" -I "$common_protos" \
  --plugin=protoc-gen-ts_proto="$here/node_modules/.bin/protoc-gen-ts_proto" \
  --ts_proto_out="$out" \
  --ts_proto_opt=outputServices=grpc-js,env=node,esModuleInterop=true,oneof=unions,forceLong=number,useOptionals=none,outputIndex=false \
  protos/polytrial/v1/*.proto
