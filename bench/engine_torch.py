"""The PyTorch side of `npm run bench -- engine`: the same measurements, printed as one JSON line.

Usage: /usr/bin/python3 bench/engine_torch.py THREADS
"""
import json
import sys
import time

import torch


def timed(fn, min_seconds=1.0, warmup=3):
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / n


def main():
    threads = int(sys.argv[1])
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    matmul_s = timed(lambda: torch.mm(a, b))

    tiny = torch.ones(1)
    reps = 20000

    def tiny_ops():
        for _ in range(reps):
            torch.add(tiny, tiny)

    tiny_s = timed(tiny_ops, warmup=1) / reps

    net = torch.nn.Sequential(
        torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 256)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(256, 784), torch.randn(256, 256)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()

    step_s = timed(step, min_seconds=3.0)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "matmul_gflops": 2 * 1024**3 / matmul_s / 1e9,
        "tiny_op_us": tiny_s * 1e6,
        "mlp_step_ms": step_s * 1e3,
    }))


if __name__ == "__main__":
    main()
