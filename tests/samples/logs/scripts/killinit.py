import os, signal, time
from mindspore.communication import init, get_rank, get_group_size
init()
rank = get_rank()
print(f"rank {rank} of {get_group_size()}", flush=True)
time.sleep(3)
if rank == 1:
    print("rank 1 sends itself SIGKILL", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(120)
# ruff: noqa  (kept as run: the recorded tracebacks quote its line numbers)
