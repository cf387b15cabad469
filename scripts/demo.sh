#!/bin/sh
# The README's main job: train the default GPT with AdamW and with Muon on
# the same budget and data (the fortunes package's text unless MUON_DATA
# names another text file or directory), then show the report.
set -eu
build=${1:-build}
data=${MUON_DATA:-/usr/share/games/fortunes}
out=${MUON_OUT:-runs/compare}
if [ ! -e "$data" ]; then
    echo "demo: $data not found (install the 'fortunes' package, or set MUON_DATA)" >&2
    exit 1
fi
"$build/muon" compare --data "$data" --out "$out"
echo
cat "$out/report.md"
