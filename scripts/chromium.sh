#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for the browser tests
# (chromedp), installing Debian's chromium with apt-get when it is missing
# and this runs as root. Exits non-zero when there is none and it cannot be
# installed; the browser tests then skip, saying so. With --cjk it also
# installs a CJK font (fonts-noto-cjk), which screenshots of the Chinese
# pages need (UIAS_UPDATE_SCREENSHOTS=1).
set -euo pipefail
if [ "${1:-}" = "--cjk" ] && ! fc-list 2>/dev/null | grep -qi "noto.*cjk"; then
	[ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null &&
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-noto-cjk >&2 ||
			echo "chromium.sh: fonts-noto-cjk not installed; Chinese text shows as boxes in screenshots" >&2; }
fi
for c in chromium chromium-browser google-chrome; do
	if p=$(command -v "$c"); then
		echo "$p"
		exit 0
	fi
done
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "chromium.sh: chromium not found; install it (as root: apt-get install -y --no-install-recommends chromium)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends chromium >&2; }
command -v chromium
