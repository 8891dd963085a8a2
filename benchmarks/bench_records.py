"""The benchmarks' records: one JSON object a line, printed as it is measured and appended to the output file."""

import json


def append_record(path: str, record: dict) -> None:
    """Prints `record` as one JSON line and appends the line to the file at `path`."""
    line = json.dumps(record)
    print(line, flush=True)
    with open(path, "a") as handle:
        handle.write(line + "\n")
