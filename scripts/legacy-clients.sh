#!/usr/bin/env bash
# Installs the npm clients the legacy-transport tests drive with node
# (hessian.js 2.11.0, the Hessian 2 serializer; soap 1.13.0, a SOAP client)
# into DIR (default: the user cache directory, uias-legacy-clients).
# Prints DIR. Exits non-zero when npm or the registry is unreachable; the
# tests then skip, saying so.
set -euo pipefail
dir="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/uias-legacy-clients}"
mkdir -p "$dir"
if [ ! -f "$dir/node_modules/hessian.js/package.json" ] || [ ! -f "$dir/node_modules/soap/package.json" ]; then
	command -v npm >/dev/null || { echo "legacy-clients.sh: npm not found" >&2; exit 1; }
	[ -f "$dir/package.json" ] || echo '{"name":"uias-legacy-clients","private":true}' >"$dir/package.json"
	npm install --silent --no-audit --no-fund --prefix "$dir" hessian.js@2.11.0 soap@1.13.0 >&2
fi
echo "$dir"
