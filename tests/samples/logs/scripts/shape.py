import numpy as np
import mindspore as ms
from mindspore import ops, Tensor
a = Tensor(np.ones((2, 3), np.float32))
print(ops.matmul(a, a))
# ruff: noqa  (kept as run: the recorded tracebacks quote its line numbers)
