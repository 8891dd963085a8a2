"""Load test of serve.py: starts the server, drives it with N concurrent clients, records throughput and latency.

Each client sends its requests one after another (one image + a question, temperature 0; streamed, or with
`--no-stream` whole), all clients at once. Per client count: aggregate generated tokens/s, time to first token and
whole-request latency (p50, p90), and every failure by kind (HTTP status, connection reset, timeout); from the
server's GET /metrics, read before and after each run, what its generation thread did meanwhile (the share of the
run's time in each phase: waiting for the GPU's tokens, queuing decode steps, prefilling, handing tokens over,
waiting for requests) and how full its decode steps and prefills were. The last lines printed are two tables.

    python benchmarks/bench_train.py prepare --folder /tmp/b7       # a 7B-shaped model folder (random weights)
    python benchmarks/bench_serve.py --model /tmp/b7/model --clients 1,8,32,64 --max_tokens 128 \\
        --server_args "--max-batch-size 32"
"""

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

from bench_records import append_record

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUESTION = "Describe the image in detail, with the shapes, their colours and where they are in the picture."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(script: str, model: str, port: int, server_args: list[str]) -> subprocess.Popen:
    script = os.path.abspath(script)
    process = subprocess.Popen([sys.executable, script, "--model", model, "--port", str(port), *server_args],
                               cwd=os.path.dirname(script))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve.py exited with status {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("serve.py did not answer /health within 10 minutes")


def one_request(port: int, body: bytes) -> dict:
    """One chat completion: its time to first content (streamed only), total time, generated tokens, or its
    failure."""
    began = time.perf_counter()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        connection.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            return {"failure": f"HTTP {response.status}"}
        if response.getheader("Content-Type") == "application/json":
            tokens = json.loads(response.read())["usage"]["completion_tokens"]
            return {"ttft_s": None, "latency_s": time.perf_counter() - began, "tokens": tokens}
        first, tokens = None, 0
        for line in response:
            if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:  # the server failed after the response began
                return {"failure": f"stream error: {chunk['error'].get('message', '')[:80]}"}
            if first is None and any(choice["delta"].get("content") for choice in chunk.get("choices", [])):
                first = time.perf_counter() - began
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
        return {"ttft_s": first, "latency_s": time.perf_counter() - began, "tokens": tokens}
    except (ConnectionResetError, BrokenPipeError) as error:
        return {"failure": type(error).__name__}
    except TimeoutError:
        return {"failure": "timeout"}


def server_metrics(port: int) -> dict[str, float]:
    """GET /metrics as {name with labels: value} (empty from a server without it)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    text = response.read().decode()
    if response.status != 200:
        return {}
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def generation_profile(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    """What the continuous batcher's thread did between two readings of /metrics `seconds` apart: each phase's share
    of the time, rows per decode step, requests per prefill (empty for servers without those counters)."""
    if "nextgpt_decode_steps_total" not in after:
        return {}
    delta = {name: value - before.get(name, 0.0) for name, value in after.items()}
    steps, prefills = delta["nextgpt_decode_steps_total"], delta["nextgpt_prefills_total"]
    return {"phase_share": {name.split('"')[1]: value / seconds for name, value in delta.items()
                            if name.startswith("nextgpt_generation_seconds_total")},
            "rows_per_step": delta["nextgpt_decode_rows_total"] / steps if steps else None,
            "requests_per_prefill": delta['nextgpt_prefill_prompts_total{kind="request"}'] / prefills if prefills
            else None}


def load(port: int, clients: int, requests_per_client: int, body: bytes) -> dict:
    results, lock = [], threading.Lock()
    start = threading.Barrier(clients)

    def client():
        start.wait()
        for _ in range(requests_per_client):
            result = one_request(port, body)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    done = [result for result in results if "failure" not in result]
    failures = {}
    for result in results:
        if "failure" in result:
            failures[result["failure"]] = failures.get(result["failure"], 0) + 1

    def quantile(values, q):
        return statistics.quantiles(values, n=10, method="inclusive")[int(q * 10) - 1] if len(values) > 1 else (
            values[0] if values else None)

    latencies = [result["latency_s"] for result in done]
    ttfts = [result["ttft_s"] for result in done if result["ttft_s"] is not None]
    return {"clients": clients, "requests": len(results), "failures": failures, "seconds": seconds,
            "tokens_per_s": sum(result["tokens"] for result in done) / seconds,
            "ttft_p50_s": statistics.median(ttfts) if ttfts else None, "ttft_p90_s": quantile(ttfts, 0.9),
            "latency_p50_s": statistics.median(latencies) if latencies else None,
            "latency_p90_s": quantile(latencies, 0.9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the NextGPT folder to serve")
    parser.add_argument("--clients", default="1,8,32,64", help="concurrent client counts, run in order")
    parser.add_argument("--requests_per_client", type=int, default=3)
    parser.add_argument("--max_tokens", type=int, default=128)
    parser.add_argument("--image", default=os.path.join(REPO_ROOT, "examples", "red_triangle.png"))
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True,
                        help="streamed requests (time to first token measured) or whole ones")
    parser.add_argument("--server_args", default="", help='serve.py flags, e.g. "--max-batch-size 32"')
    parser.add_argument("--serve_script", default=os.path.join(REPO_ROOT, "serve.py"),
                        help="the server to load-test, e.g. serve.py of an older checkout for a before/after table")
    parser.add_argument("--label", default="", help="a name for these runs in the records and the table")
    parser.add_argument("--output", default="bench_serve.jsonl")
    args = parser.parse_args()
    with open(args.image, "rb") as handle:
        url = "data:image/png;base64," + base64.b64encode(handle.read()).decode()
    # A fixed length (no end-of-sequence token) keeps the work per request the same across client counts.
    body = json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                                 {"type": "text", "text": QUESTION}]}],
                       "max_tokens": args.max_tokens, "temperature": 0, "stream": args.stream,
                       **({"stream_options": {"include_usage": True}} if args.stream else {})}).encode()
    port = free_port()
    server = start_server(args.serve_script, args.model, port, args.server_args.split())
    records = []
    try:
        for clients in [int(count) for count in args.clients.split(",")]:
            load(port, clients, 1, body)  # warm-up: the compilations and graph captures of this load's batch sizes
            before = server_metrics(port)
            record = load(port, clients, args.requests_per_client, body)
            record.update(generation=generation_profile(before, server_metrics(port), record["seconds"]),
                          max_tokens=args.max_tokens, stream=args.stream, server_args=args.server_args,
                          label=args.label, serve_script=os.path.relpath(args.serve_script, REPO_ROOT))
            records.append(record)
            append_record(args.output, record)
    finally:
        server.terminate()
        server.wait(60)
    print("| run | clients | requests | failures | tokens/s | TTFT p50 / p90 s | latency p50 / p90 s |")
    print("|---|---|---|---|---|---|---|")
    for r in records:
        ttft = f"{r['ttft_p50_s']:.3f} / {r['ttft_p90_s']:.3f}" if r["ttft_p50_s"] is not None else "-"
        latency = f"{r['latency_p50_s']:.2f} / {r['latency_p90_s']:.2f}" if r["latency_p50_s"] is not None else "-"
        print(f"| {r['label']} | {r['clients']} | {r['requests']} | {r['failures'] or 0} | {r['tokens_per_s']:.1f} | "
              f"{ttft} | {latency} |")
    profiled = [r for r in records if r["generation"]]
    if profiled:
        phases = list(profiled[0]["generation"]["phase_share"])
        print("\n| run | clients | rows per step | requests per prefill | " + " | ".join(phases) + " (share of time) |")
        print("|---|---|---|---|" + "---|" * len(phases))
        for r in profiled:
            generation = r["generation"]
            shares = " | ".join(f"{generation['phase_share'][phase]:.0%}" for phase in phases)
            print(f"| {r['label']} | {r['clients']} | {generation['rows_per_step'] or 0:.1f} | "
                  f"{generation['requests_per_prefill'] or 0:.1f} | {shares} |")


if __name__ == "__main__":
    main()
