#!/usr/bin/env bash
# The local demo: the whole path on this machine's embedded two-node cluster. Checks the nodes,
# shows the plan, launches the tiny DeepSeek-V3 (MLA, MoE, MTP) under msrun, watches it train,
# then asks the trained model a question.
set -euo pipefail
cd "$(dirname "$0")/.."
console=.venv/bin/ascend-console
job=configs/jobs/tiny_local.yaml

echo "== the nodes"
$console check || true
echo "== the plan"
$console plan "$job"
echo "== launch"
id=$($console launch "$job")
echo "job $id: following its loss (Ctrl-C leaves it running; 'ascend-console stop $id' stops it)"
log=$($console status "$id" --json --no-refresh | .venv/bin/python -c \
    'import json,sys,os; d=json.load(sys.stdin); n=d["nodes"][0]; print(os.path.expanduser(n["job_dir"]) + "/logs/worker_0.log")')
while :; do
    state=$($console status "$id" --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    if [ -f "$log" ]; then grep -a "Epoch:" "$log" | tail -n 1 | sed "s/.*{ /  /; s/, overflow.*//" || true; fi
    case $state in running|starting|launching|stopping) sleep 10 ;; *) break ;; esac
done
echo "== the job ended: $state"
$console status "$id"
dir=$(dirname "$(dirname "$log")")
echo "== asking the trained model"
PYTHONPATH="$dir/code" .venv/bin/python -m model.predict --config "$dir/config.yaml" \
    --checkpoint "$dir/output/checkpoint" --output-dir "$dir/output" --prompt "Return the number of" \
    --max-new-tokens 24 2>/dev/null | grep "output result is"
