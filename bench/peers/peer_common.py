"""What the Python peers of `lifelong bench` (avalanche_bench.py, authors_bench.py) share: their
comma-separated options and the machine facts of a `lifelong-bench/1` report."""
import os
import platform


def comma_list(parser, text, allowed, what):
    """The items of a comma-separated option, each one of `allowed` (else the parser's error)."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    for item in items:
        if item not in allowed:
            parser.error(f"unknown {what} {item!r} (this peer runs: {', '.join(allowed)})")
    return items


def machine(runtime, threads):
    """The report's `machine`: CPU model, cores and memory from /proc, the runtime as given, torch's thread count."""
    cpu, memory_gib = "unknown", 0.0
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            memory_gib = next((round(int(line.split()[1]) / 1024 / 1024, 1) for line in f if line.startswith("MemTotal:")), memory_gib)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "memoryGiB": memory_gib,
        "runtime": f"python {platform.python_version()} / {runtime}",
        "backend": f"torch-cpu ({threads} thread{'s' if threads != 1 else ''})",
    }
