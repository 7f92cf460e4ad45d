"""Validates a Compose file against the Compose Specification's JSON schema (draft 2020-12).

Usage: python3 validate_compose.py SCHEMA COMPOSE_FILE
Prints the parsed file as JSON on success; each schema error on stderr and exit 1 otherwise.
Needs PyYAML and jsonschema (pip install pyyaml jsonschema).
"""
import json
import sys

import jsonschema
import yaml


def main(schema_path: str, compose_path: str) -> int:
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(compose_path, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        print(f"{compose_path}: {where}: {error.message}", file=sys.stderr)
    if errors:
        return 1
    json.dump(compose, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
