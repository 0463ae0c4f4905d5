"""A bounded load test of `rasa run --enable-api` on loopback: ordinary and hostile texts to /model/parse.

    .venv/bin/python benchmark/load_test.py --model models/snips.tar.gz --clients 8 --requests 5000

Starts the server on 127.0.0.1 and a free port, waits for the model, warms it up, then sends the
requests from concurrent clients, each request bounded in time and the whole run too. Prints requests
per second, latency p50/p95/p99, errors and the server's resident memory before, midway and after.
Exits 1 on any error or on a run that did not finish in time.
"""

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ORDINARY = [
    "will it rain tomorrow in Paris",
    "play some jazz by Miles Davis on Spotify",
    "book a table for two at an Italian restaurant tonight",
    "add this song to my workout playlist",
    "rate this book four out of 6",
    "find the movie schedule at the nearest cinema",
    "show me the TV series Black Mirror",
]
HOSTILE = [
    "",
    "   \t\n  ",
    "x" * 10_000,
    "weather " * 1_500,
    "\N{SLICE OF PIZZA}\N{MUSICAL NOTE}\N{CLOUD WITH RAIN}",
    "明天北京天气怎么样",
    "ما هو الطقس غدا",
    "e\u0301\u0301\u0301 n\u0303",
    "\x00\x01\x07 hi \x1b[31m",
    "\ud800 lone surrogate",
    "<script>alert('hi')</script>",
    '{"text": "nested", "intent": [1, 2]}',
    "'; DROP TABLE intents; --",
    "rain " * 62,  # with [CLS] and [SEP], exactly the default max_seq_len of 64 word pieces
    "rain " * 63,  # one past it
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _count_lines(log) -> int:
    log.seek(0)
    return sum(1 for _ in log)


def parse(port: int, text: str, timeout: float) -> dict:
    """One /model/parse request; raises on any failure or malformed answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = json.dumps({"text": text})  # a lone surrogate goes out as a \\ud800 escape
        connection.request("POST", "/model/parse", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {answer[:200]!r}")
        result = json.loads(answer)
        if not result.get("intent", {}).get("name") or not result.get("intent_ranking"):
            raise RuntimeError(f"no intent in {answer[:200]!r}")
        return result
    finally:
        connection.close()


def wait_until_ready(server: subprocess.Popen, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            parse(port, "hello", timeout=5)
            return
        except (OSError, RuntimeError, ValueError):
            time.sleep(1)
    raise RuntimeError("the server did not answer in time")


def run_clients(port, texts, clients, request_timeout, deadline):
    """Sends every text once, from `clients` threads; returns latencies and errors."""
    next_index = itertools.count()
    lock = threading.Lock()
    latencies, errors = [], []

    def client():
        while time.monotonic() < deadline:
            with lock:
                index = next(next_index)
            if index >= len(texts):
                return
            started = time.perf_counter()
            try:
                parse(port, texts[index], request_timeout)
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception as error:  # every failure counts, whatever it is
                with lock:
                    errors.append(f"{texts[index][:40]!r}: {error}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + request_timeout)
    return latencies, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/snips.tar.gz")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument(
        "--run-timeout", type=float, default=900.0, help="seconds for the whole run"
    )
    args = parser.parse_args()

    rasa = str(Path(sys.executable).with_name("rasa"))
    port = free_port()
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    server_log = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
    server = subprocess.Popen(
        [rasa, "run", "--enable-api", "-m", args.model, "-i", "127.0.0.1", "-p", str(port)],
        stdout=server_log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        wait_until_ready(server, port, started + min(300.0, args.run_timeout))
        for text in ORDINARY + HOSTILE:  # warm-up: every length bucket traced once
            parse(port, text, args.request_timeout)
        rss_before = resident_mib(server.pid)
        log_lines_before = _count_lines(server_log)

        mix = list(itertools.islice(itertools.cycle(ORDINARY * 2 + HOSTILE), args.requests))
        deadline = started + args.run_timeout
        half = len(mix) // 2
        began = time.perf_counter()
        latencies, errors = run_clients(
            port, mix[:half], args.clients, args.request_timeout, deadline
        )
        rss_middle = resident_mib(server.pid)
        more_latencies, more_errors = run_clients(
            port, mix[half:], args.clients, args.request_timeout, deadline
        )
        elapsed = time.perf_counter() - began
        rss_after = resident_mib(server.pid)
        log_lines_during = _count_lines(server_log) - log_lines_before
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    latencies += more_latencies
    errors += more_errors
    answered = len(latencies)
    milliseconds = sorted(1000 * latency for latency in latencies) or [float("nan")]
    percentile = lambda p: milliseconds[min(len(milliseconds) - 1, int(p * len(milliseconds)))]
    unfinished = args.requests - answered - len(errors)
    print(
        f"requests: {args.requests} from {args.clients} clients, {answered} answered, "
        f"{len(errors)} errors, {unfinished} not sent before the run's deadline"
    )
    print(f"throughput: {answered / elapsed:.1f} requests/s over {elapsed:.1f} s")
    print(
        f"latency ms: p50 {percentile(0.50):.1f}, p95 {percentile(0.95):.1f}, "
        f"p99 {percentile(0.99):.1f}, mean {statistics.fmean(milliseconds):.1f}"
    )
    print(
        f"server RSS MiB: {rss_before:.0f} after warm-up, {rss_middle:.0f} midway, "
        f"{rss_after:.0f} at the end"
    )
    print(f"server log: {log_lines_during} lines written while under load")
    for error in errors[:10]:
        print(f"error: {error}")
    return 0 if not errors and not unfinished else 1


if __name__ == "__main__":
    sys.exit(main())
