#!/usr/bin/env bash
# Fetches the CPU build of ONNX Runtime 1.24 that stitch runs on, once, into
# .cache/onnxruntime/libonnxruntime.so.1. The library ships inside the npm
# package onnxruntime-node@1.24.3; npm is the only registry it needs.
set -euo pipefail

version=1.24.3
want=92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/onnxruntime"
lib="$dest/libonnxruntime.so.1"

if [ -f "$lib" ] && echo "$want  $lib" | sha256sum --check --status; then
	exit 0
fi

command -v npm >/dev/null || { echo "fetch-onnxruntime: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetching onnxruntime-node@$version from npm for libonnxruntime.so.1 ..." >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1

got=$(sha256sum "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
	echo "fetch-onnxruntime: libonnxruntime.so.1 has sha256 $got, want $want" >&2
	exit 1
fi
mkdir -p "$dest"
mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "ONNX Runtime $version (CPU) is at $lib" >&2
