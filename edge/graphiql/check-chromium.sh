#!/usr/bin/env bash
# check-chromium.sh URL [SCREENSHOT]
#
# Smoke-checks that the edge's embedded GraphiQL page renders in headless
# Chromium without the internet: every host name except URL's host resolves to
# NOTFOUND, so a page that needed a CDN or remote font would come up blank.
# Needs chromium (Debian: apt-get install -y chromium; or set $CHROMIUM).
#
#   edge/graphiql/check-chromium.sh http://127.0.0.1:8080/graphiql
#
# Fails (exit 1) if the screenshot is missing or smaller than $MIN_BYTES (blank
# or error pages are a few KB; rendered GraphiQL at 1280x800 is ~50 KB), or if
# the DOM after script execution has no GraphiQL editor.
set -euo pipefail

url=${1:?usage: $0 URL [SCREENSHOT]}
shot=${2:-/tmp/graphiql.png}
min_bytes=${MIN_BYTES:-20000}

chromium=${CHROMIUM:-}
if [[ -z $chromium ]]; then
	for c in chromium chromium-browser google-chrome-stable google-chrome; do
		if command -v "$c" >/dev/null 2>&1; then chromium=$c; break; fi
	done
fi
[[ -n $chromium ]] || { echo "check-chromium: no chromium found (apt-get install -y chromium, or set CHROMIUM)" >&2; exit 2; }

# Host of the URL (no scheme, path, userinfo, port or IPv6 brackets).
host=${url#*://}; host=${host%%/*}; host=${host##*@}
if [[ $host == \[* ]]; then host=${host%%]*}; host=${host#[}; else host=${host%%:*}; fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
	--disable-background-networking --disable-component-update --disable-sync
	--user-data-dir="$profile" --window-size=1280,800 --virtual-time-budget=5000
	"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE $host")

rm -f "$shot"
timeout 120 "$chromium" "${flags[@]}" --screenshot="$shot" "$url" >"$profile/shot.log" 2>&1 || {
	cat "$profile/shot.log" >&2; echo "check-chromium: chromium failed" >&2; exit 1; }
[[ -s $shot ]] || { cat "$profile/shot.log" >&2; echo "check-chromium: no screenshot at $shot" >&2; exit 1; }
size=$(wc -c <"$shot")
if (( size < min_bytes )); then
	echo "check-chromium: screenshot $shot is only $size bytes (< $min_bytes): page did not render" >&2
	exit 1
fi

dom=$(timeout 120 "$chromium" "${flags[@]}" --dump-dom "$url" 2>"$profile/dom.log") || {
	cat "$profile/dom.log" >&2; echo "check-chromium: chromium --dump-dom failed" >&2; exit 1; }
for class in graphiql-container graphiql-query-editor; do
	if ! grep -q "$class" <<<"$dom"; then
		echo "check-chromium: rendered DOM has no .$class: GraphiQL did not mount" >&2
		exit 1
	fi
done

echo "check-chromium: OK: $url rendered GraphiQL offline ($shot, $size bytes)"
