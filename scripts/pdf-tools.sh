#!/usr/bin/env bash
# Prints the paths of the two TrueType fonts of the audit PDFs, one a line:
# Chinese (Debian's fonts-droid-fallback: DroidSansFallbackFull.ttf, which
# has no Latin letters; fpdf cannot embed the OpenType collections of
# fonts-noto-cjk), then Latin (fonts-dejavu-core: DejaVuSans.ttf),
# installing them with apt-get when missing and this runs as root, together
# with poppler-utils (pdftotext: the tests read the text back out of the
# PDFs).
# Exits non-zero when either is missing and cannot be installed; the PDF
# tests then skip, saying so.
set -euo pipefail
font=/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf
latin=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
need=()
[ -f "$font" ] || need+=(fonts-droid-fallback)
[ -f "$latin" ] || need+=(fonts-dejavu-core)
command -v pdftotext >/dev/null || need+=(poppler-utils)
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		echo "pdf-tools.sh: missing ${need[*]}; install (as root: apt-get install -y --no-install-recommends ${need[*]})" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# test packages may ask at the same time: one apt-get at a time
	exec 9>/tmp/uias-pdf-tools.lock
	flock 9
	{ apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
		{ apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; }; } || {
		echo "pdf-tools.sh: installing ${need[*]} failed" >&2
		exit 1
	}
fi
[ -f "$font" ] && [ -f "$latin" ] && command -v pdftotext >/dev/null || {
	echo "pdf-tools.sh: $font, $latin or pdftotext still missing" >&2
	exit 1
}
echo "$font"
echo "$latin"
