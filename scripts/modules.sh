#!/usr/bin/env bash
# Prints the Go modules of the workspace, one per line, as listed in the
# use block of go.work (the one place a new module is added).
set -euo pipefail
cd "$(dirname "$0")/.."
go work edit -json | sed -n 's/^[[:space:]]*"DiskPath": "\.\/\(.*\)".*/\1/p'
