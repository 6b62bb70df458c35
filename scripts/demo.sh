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
echo "== following job $id until it ends (Ctrl-C leaves it running; 'ascend-console stop $id' stops it)"
# every 10th loss step of rank 0 and every error, live, from the events `logs --json` prints
$console logs "$id" --follow --json | .venv/bin/python -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["kind"] == "loss" and e["rank"] == 0 and (e["step"] % 10 == 0 or e["step"] == e["total_steps"]):
        print("  step %4d/%s  loss %.4f  %s ms/step" % (e["step"], e["total_steps"], e["loss"], e["per_step_ms"]))
    elif e["severity"] == "error":
        print("  %s rank %s: %s: %s" % (e["node"], e["rank"], e["kind"], e.get("message", "")))
    sys.stdout.flush()' || true
echo "== the job ended"
$console status "$id"
dir=$($console status "$id" --json --no-refresh | .venv/bin/python -c \
    'import json,sys,os; d=json.load(sys.stdin); print(os.path.expanduser(d["nodes"][0]["job_dir"]))')
echo "== asking the trained model"
PYTHONPATH="$dir/code" .venv/bin/python -m model.predict --config "$dir/config.yaml" \
    --checkpoint "$dir/output/checkpoint" --output-dir "$dir/output" --prompt "Return the number of" \
    --max-new-tokens 24 2>/dev/null | grep "output result is"
