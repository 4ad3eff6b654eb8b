#!/usr/bin/env bash
# Installs the npm OpenID Connect client the e2e test TestOIDCWithOpenIDClient
# drives with node (openid-client 6.9.1) into DIR (default: the user cache
# directory, uias-oidc-client). Prints DIR. Exits non-zero when npm or the
# registry is unreachable; the test then skips, saying so.
set -euo pipefail
dir="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/uias-oidc-client}"
mkdir -p "$dir"
if [ ! -f "$dir/node_modules/openid-client/package.json" ]; then
	command -v npm >/dev/null || { echo "oidc-client.sh: npm not found" >&2; exit 1; }
	[ -f "$dir/package.json" ] || echo '{"name":"uias-oidc-client","private":true}' >"$dir/package.json"
	npm install --silent --no-audit --no-fund --prefix "$dir" openid-client@6.9.1 >&2
fi
echo "$dir"
