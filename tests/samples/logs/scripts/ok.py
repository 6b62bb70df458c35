import os
from mindspore.communication import init, get_rank, get_group_size
init()
print(f"rank {get_rank()} of {get_group_size()}", flush=True)
# ruff: noqa  (kept as run: the recorded tracebacks quote its line numbers)
