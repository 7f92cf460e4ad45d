"""The PyTorch side of `npm run bench:peers` (bench/peer-step.ts runs it, interleaved with lifelong).

The network and step of bench/mlp-step.ts: MLP 784-400-400-10, ReLU, softmax cross-entropy,
Adam (lr 1e-3), one synthetic batch; a step includes reading the loss back, as lifelong's does.
Prints one JSON line: the median milliseconds of a training step and of a batch-1 prediction,
and the CPU milliseconds per step (all threads).

    python torch_step.py --batch 128 --steps 40 --warmup 5 --predicts 200 --threads 1
"""
import argparse
import json
import statistics
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--predicts", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.batch)

    sizes = [784, 400, 400, 10]
    layers = []
    for i in range(len(sizes) - 1):
        linear = torch.nn.Linear(sizes[i], sizes[i + 1])
        torch.nn.init.xavier_uniform_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    x = torch.rand(a.batch, sizes[0])
    y = torch.randint(0, sizes[-1], (a.batch,))
    one = x[:1].clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()

    def predict() -> None:
        with torch.no_grad():
            model(one).numpy()

    for _ in range(a.warmup):
        step()
    steps = []
    cpu_start = time.process_time()
    for _ in range(a.steps):
        start = time.perf_counter()
        step()
        steps.append((time.perf_counter() - start) * 1000)
    step_cpu_ms = (time.process_time() - cpu_start) * 1000 / a.steps
    for _ in range(a.warmup):
        predict()
    predicts = []
    for _ in range(a.predicts):
        start = time.perf_counter()
        predict()
        predicts.append((time.perf_counter() - start) * 1000)
    print(json.dumps({
        "stepMs": statistics.median(steps),
        "stepCpuMs": step_cpu_ms,
        "predictMs": statistics.median(predicts),
        "version": f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
    }))


if __name__ == "__main__":
    main()
