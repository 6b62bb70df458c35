import os
rank = int(os.environ.get("RANK_ID", "0"))
print(f"role {os.environ.get('MS_ROLE')} RANK_ID {rank}", flush=True)
if rank == 1:
    raise RuntimeError("simulated failure on rank 1")
import time
time.sleep(30)
# ruff: noqa  (kept as run: the recorded tracebacks quote its line numbers)
