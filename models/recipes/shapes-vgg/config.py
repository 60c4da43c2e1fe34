#!/usr/bin/python3
"""The default package's hyperparameters (config.json beside this file), for
the training script and, from the shell, the recipe's steps:

    python3 config.py rounds.sizes       -> 352,384,416,448,480,512,544
    python3 config.py rounds.schedule    -> one "round:steps:splits" line per round
"""
import json
import os
import sys

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")


def load():
    with open(PATH) as f:
        return json.load(f)


def lookup(config, dotted):
    for key in dotted.split("."):
        config = config[key]
    return config


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    value = lookup(load(), sys.argv[1])
    if isinstance(value, list) and value and isinstance(value[0], dict):
        print("\n".join(":".join(str(v) for v in row.values()) for row in value))
    elif isinstance(value, list):
        print(",".join(str(v) for v in value))
    else:
        print(value)


if __name__ == "__main__":
    main()
