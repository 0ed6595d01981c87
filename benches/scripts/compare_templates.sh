#!/usr/bin/env bash
# Log template mining: kaizen's miner against Python drain3 (default settings), same data,
# same metrics (GA, PA, lines/s; see benches/src/bin/eval_templates.rs).
#
#   benches/scripts/compare_templates.sh [DIR]
#
# DIR holds <System>/<System>_2k.log_structured.csv; default ../shared/data/loghub-2k
# relative to the repository root. Installs drain3 with pip when it is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${1:-$root/../shared/data/loghub-2k}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import drain3' 2>/dev/null; then
    echo "installing drain3 (pip install drain3)" >&2
    "$python" -m pip install --quiet drain3
fi

cd "$root"
cargo build --release --quiet -p kaizen-benches --bin eval-templates

echo "== kaizen TemplateMiner (default TemplateConfig)"
"$root/target/release/eval-templates" "$dir"
echo "== Python drain3 $("$python" -c 'import importlib.metadata as m; print(m.version("drain3"))') (default TemplateMinerConfig)"
"$python" "$root/benches/scripts/drain3_eval.py" "$dir"
