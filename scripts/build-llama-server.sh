#!/usr/bin/env bash
# Builds llama.cpp's llama-server (router mode: --models-dir, GET /models, POST /models/load|unload) once per
# machine, from source, into a cache folder OUTSIDE the repository, and prints the binary's path.
# The source is the llama.cpp tree vendored in llama-cpp-python's sdist (fetched with pip, never committed);
# a later run finds the binary in the cache and costs nothing.
set -euo pipefail

VERSION="${LLAMA_SERVER_VERSION:-0.3.36}"          # llama-cpp-python sdist whose vendor/llama.cpp is built
PYTHON="${PYTHON:-python3}"
CACHE_ROOT="${AI_ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-orchestrator}"
DEST="$CACHE_ROOT/llama-server-$VERSION"
JOBS="${JOBS:-$(nproc)}"

if [ -x "$DEST/bin/llama-server" ]; then
  echo "$DEST/bin/llama-server"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
# One build at a time per machine (several worktrees may run the suite at once): the second waits, then
# finds the first one's binary.
exec 9>"$CACHE_ROOT/llama-server-$VERSION.lock"
flock 9
if [ -x "$DEST/bin/llama-server" ]; then
  echo "$DEST/bin/llama-server"
  exit 0
fi

WORK="$(mktemp -d "$CACHE_ROOT/build-$VERSION.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$WORK" >&2
tar -xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"

# GGML_NATIVE=OFF: the cached binary runs on any machine of this kind, not only on the one that built it.
# No web UI (LLAMA_USE_PREBUILT_UI would download it), no HTTPS (the tests talk to loopback), static
# libraries so the one binary is all the cache holds; LLAMA_SUBPROCESS is what router mode needs.
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_SUBPROCESS=ON >&2
cmake --build "$WORK/build" --target llama-server -j "$JOBS" >&2

# Installed by a rename, so a build interrupted half-way never leaves a cache that looks complete.
mkdir -p "$WORK/out/bin"
cp "$WORK/build/bin/llama-server" "$WORK/out/bin/llama-server"
rm -rf "$DEST"
mv "$WORK/out" "$DEST"
echo "$DEST/bin/llama-server"
