"""River's ADWIN and Page-Hinkley on lifelong's drift test streams (the peer check of issue 15).

Reads {"configs": [{"name", "detector": "adwin"|"page-hinkley", "params": {...}}],
"streams": [{"name", "seed", "values": [...]}]} on stdin and writes, on stdout,
{"river": version, "positions": {config name: [[index, ...] per stream]}}.
bench/peers/drift-peers.ts writes the input and compares; run that, not this.
Install once: python3 -m venv ~/.cache/lifelong/river-venv && ~/.cache/lifelong/river-venv/bin/pip install river==0.26.1
"""
import json
import sys

import river
from river import drift

# lifelong's option names (camelCase) -> River's.
NAMES = {
    "delta": "delta", "clock": "clock", "maxBuckets": "max_buckets", "minWindowLength": "min_window_length",
    "gracePeriod": "grace_period", "minInstances": "min_instances", "threshold": "threshold", "alpha": "alpha", "mode": "mode",
}


def make(config):
    params = {NAMES[k]: v for k, v in config["params"].items()}
    return drift.ADWIN(**params) if config["detector"] == "adwin" else drift.PageHinkley(**params)


def main():
    request = json.load(sys.stdin)
    positions = {}
    for config in request["configs"]:
        runs = []
        for stream in request["streams"]:
            detector = make(config)
            at = []
            for i, x in enumerate(stream["values"]):
                detector.update(x)
                if detector.drift_detected:
                    at.append(i)
            runs.append(at)
        positions[config["name"]] = runs
    json.dump({"river": river.__version__, "positions": positions}, sys.stdout)


if __name__ == "__main__":
    main()
