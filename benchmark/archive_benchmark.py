"""What a model archive holds, and how long loading it and its first parse take, in a fresh
process each time, archives alternated.

    .venv/bin/python benchmark/archive_benchmark.py models/snips.tar.gz
    .venv/bin/python benchmark/archive_benchmark.py \
        before=old.tar.gz@path/to/old/components after=models/snips.tar.gz

An argument is an archive, or `label=archive`; `@folder` after it puts that folder first on the
Python path of its processes (an earlier checkout's `components`, to load the archive with the
code that trained it). Printed for each: the archive's size and its files' sizes (raw and as
gzip alone compresses them), then the median over `--runs` fresh processes of the seconds
`Agent.load` took and of the first `parse_message` after it (the Python imports not counted).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

# Run in each fresh process: import, load, parse once, print the times as JSON.
PROBE = """
import asyncio, json, sys, time
from rasa.core.agent import Agent
started = time.perf_counter()
agent = Agent.load(sys.argv[1])
loaded = time.perf_counter()
asyncio.run(agent.parse_message("will it rain tomorrow in Paris"))
parsed = time.perf_counter()
print(json.dumps({"load_s": loaded - started, "first_parse_s": parsed - loaded}))
"""


def contents(archive: Path):
    """(name, raw bytes, gzip bytes) of each file in the archive, largest first."""
    with tarfile.open(archive, "r:gz") as tar:
        files = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]
    rows = [(name, len(data), len(zlib.compress(data, 9))) for name, data in files]
    return sorted(rows, key=lambda row: -row[1])


def probe(archive: Path, path: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RASA_TELEMETRY_ENABLED": "false"}
    if path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", PROBE, str(archive)], capture_output=True,
                          text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("archives", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    archives = {}
    for argument in args.archives:
        label, _, rest = argument.rpartition("=") if "=" in argument else ("", "", argument)
        archive, _, path = rest.partition("@")
        archives[label or archive] = (Path(archive), path)
    for label, (archive, _) in archives.items():
        print(f"{label}: {archive.stat().st_size / 1e6:.1f} MB")
        for name, raw, packed in contents(archive):
            if raw > 100_000:
                print(f"  {name}: {raw / 1e6:.1f} MB, {packed / 1e6:.1f} MB compressed")
    times = {label: [] for label in archives}
    for _ in range(args.runs):
        for label, (archive, path) in archives.items():
            times[label].append(probe(archive, path))
    for label, runs in times.items() if args.runs else ():
        load = statistics.median(r["load_s"] for r in runs)
        parse = statistics.median(r["first_parse_s"] for r in runs)
        print(f"{label}: load {load:.2f} s, first parse {1000 * parse:.0f} ms "
              f"(medians of {len(runs)} fresh processes)")


if __name__ == "__main__":
    main()
