#!/usr/bin/env bash
# vendor.sh [--write]: downloads the vendored packages with npm pack (the npm
# registry, by name and exact version), and checks that the committed files
# equal the published ones (SHA-256 in LICENSES.md). With --write it copies
# them over the committed files instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# file in this directory, npm package@version, path inside the package, sha256
files=(
	"dagre-3.1.3.esm.js @dagrejs/dagre@3.1.3 package/dist/dagre.esm.js b0ddaf4af1417bec9bd89373a3a3987f081727d6cc6d95fc40dbf85a19bdf3b0"
)
for line in "${files[@]}"; do
	read -r file pkg inner sum <<<"$line"
	(cd "$tmp" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz && rm ./*.tgz)
	got=$(sha256sum "$tmp/$inner" | cut -d' ' -f1)
	[[ $got == "$sum" ]] || { echo "vendor.sh: $pkg $inner has sha256 $got, want $sum" >&2; exit 1; }
	if [[ ${1:-} == --write ]]; then cp "$tmp/$inner" "$here/$file"; fi
	cmp -s "$tmp/$inner" "$here/$file" || { echo "vendor.sh: $file differs from $pkg's $inner" >&2; exit 1; }
	echo "vendor.sh: $file = $pkg $inner ($sum)"
	rm -rf "$tmp/package"
done
