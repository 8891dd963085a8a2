"""benchmarks/bench_train.py on the CPU: a tiny model trained through train_hf.py under torchrun, on 1 and on 2
processes with the same global batch, gives the same loss curve (issue 6's correctness check), and throughput is
recorded for each."""

import json
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from modeling_nextgpt import NextGPTForConditionalGeneration


@pytest.mark.parametrize("method, sampling", [
    ("lora", "random"), ("full", "random"),  # DDP with LoRA; FSDP full fine-tuning
    ("lora", "batch_rebalance"),  # the README's multi-GPU setting: length-balanced micro-batches, same global batches
])
def test_two_processes_follow_the_one_process_loss_curve(tmp_path, method, sampling):
    script = str(REPO_ROOT / "benchmarks" / "bench_train.py")
    subprocess.run([sys.executable, script, "prepare", "--folder", str(tmp_path), "--tiny", "--num_examples", "64"],
                   check=True)
    output = tmp_path / "results.jsonl"
    subprocess.run([sys.executable, script, "run", "--folder", str(tmp_path), "--method", method, "--gpus", "1,2",
                    "--steps", "4", "--warmup_steps", "1", "--global_batch", "8", "--output", str(output),
                    "--train_args", f"--train_sampling_strategy {sampling}"],
                   check=True)
    one, two = [json.loads(line) for line in output.read_text().splitlines()]
    assert (tmp_path / "results.png").stat().st_size > 0  # both loss curves on one plot
    assert (one["gpus"], two["gpus"]) == (1, 2) and len(one["losses"]) == len(two["losses"]) == 4
    assert two["max_loss_difference_vs_first"] < 1e-4
    assert one["losses"] != [one["losses"][0]] * 4  # it trains
    assert two["real_tokens_per_s"] > 0 and 0 < two["mfu"] < 1 and one["efficiency"] == 1.0
    assert len(two["step_seconds"]) == 3 and two["median_step_efficiency"] > 0


def test_variants_run_side_by_side_with_the_same_loss_curve(tmp_path):
    """The padded path and the packed default, in one run: same losses (LoRA dropout off), throughput and MFU each,
    and a table of both printed last; the loss logged every second step, torchrun given flags of its own."""
    script = str(REPO_ROOT / "benchmarks" / "bench_train.py")
    subprocess.run([sys.executable, script, "prepare", "--folder", str(tmp_path), "--tiny", "--num_examples", "32"],
                   check=True)
    output = tmp_path / "results.jsonl"
    result = subprocess.run([sys.executable, script, "run", "--folder", str(tmp_path), "--gpus", "1", "--steps", "4",
                             "--warmup_steps", "1", "--global_batch", "8", "--output", str(output), "--log_every",
                             "2", "--torchrun_args", "--max-restarts 0",
                             "--train_args", "--lora_dropout 0", "--variant", "padded:2:--packing false",
                             "--variant", "packed:8"], check=True, capture_output=True, text=True)
    padded, packed = [json.loads(line) for line in output.read_text().splitlines()]
    assert (padded["variant"], padded["per_device_batch"], packed["variant"]) == ("padded", 2, "packed")
    assert "--packing false" in padded["command"] and "--packing" not in packed["command"]
    assert packed["max_loss_difference_vs_first"] < 1e-4 and packed["mfu"] > 0
    assert packed["loss_steps"] == [2, 4] and len(packed["step_seconds"]) == 1 and packed["sequences_per_s"] > 0
    assert "--max-restarts 0" in packed["command"] and "--logging_steps 2" in packed["command"]
    llm = NextGPTForConditionalGeneration.from_pretrained(tmp_path / "model").language_model
    assert packed["llm_parameters"] == sum(p.numel() for p in llm.parameters())
    table = result.stdout.strip().splitlines()[-4:]
    assert table[0].startswith("| variant |") and table[2].startswith("| padded | 1 | 2 |")


def test_repeats_interleave_the_gpu_counts_and_summarise_their_medians(tmp_path):
    """--repeats 2 runs 1, 2, 1, 2 processes (each round's efficiency against its own 1-process run) and ends with
    each count's median, range and the efficiency of the medians, computed from the records."""
    script = str(REPO_ROOT / "benchmarks" / "bench_train.py")
    subprocess.run([sys.executable, script, "prepare", "--folder", str(tmp_path), "--tiny", "--num_examples", "32"],
                   check=True)
    output = tmp_path / "results.jsonl"
    result = subprocess.run([sys.executable, script, "run", "--folder", str(tmp_path), "--gpus", "1,2", "--steps", "3",
                             "--warmup_steps", "1", "--global_batch", "4", "--per_device_batch", "2", "--repeats", "2",
                             "--output", str(output)], check=True, capture_output=True, text=True)
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["round"], r["gpus"]) for r in records] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert records[2]["efficiency"] == 1.0 and records[3]["efficiency"] == pytest.approx(
        records[3]["sequences_per_s"] / (2 * records[2]["sequences_per_s"]))
    speeds = {gpus: sorted(r["sequences_per_s"] for r in records if r["gpus"] == gpus) for gpus in (1, 2)}
    median = {gpus: sum(values) / 2 for gpus, values in speeds.items()}
    summary = result.stdout.strip().splitlines()[-2:]
    assert summary[0].startswith(f"| default | 1 | 2 | {median[1]:.2f} ({speeds[1][0]:.2f}-{speeds[1][1]:.2f}) | "
                                 "100.0% |"), summary
    assert summary[1].startswith(f"| default | 2 | 2 | {median[2]:.2f} ({speeds[2][0]:.2f}-{speeds[2][1]:.2f}) | "
                                 f"{100 * median[2] / (2 * median[1]):.1f}% | "), summary
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([sys.executable, script, "run", "--folder", str(tmp_path), "--repeats", "0"], check=True,
                       capture_output=True)


def test_a_failed_run_is_recorded_with_its_error(tmp_path):
    """A run that fails (on a GPU: one that does not fit in memory) is a result: recorded with the error it printed."""
    script = str(REPO_ROOT / "benchmarks" / "bench_train.py")
    subprocess.run([sys.executable, script, "prepare", "--folder", str(tmp_path), "--tiny", "--num_examples", "8"],
                   check=True)
    output = tmp_path / "results.jsonl"
    subprocess.run([sys.executable, script, "run", "--folder", str(tmp_path), "--gpus", "1", "--global_batch", "4",
                    "--train_args", "--model_dtype float64", "--output", str(output)], check=True)
    record = json.loads(output.read_text())
    assert record["gpus"] == 1 and "--model_dtype must be one of" in record["error"] and "losses" not in record


def test_balance_shows_what_length_balanced_sampling_buys(tmp_path):
    """`balance` (no GPU, no model): random micro-batches leave GPUs waiting for the busiest one and pad a third of
    the tokens; transformers' batch_rebalance sampler evens the padded work out and pads less, and with packing the
    token-balanced sampler that replaces it evens out the real tokens, and the buckets of graphed layers too."""
    script = str(REPO_ROOT / "benchmarks" / "bench_train.py")
    subprocess.run([sys.executable, script, "prepare", "--folder", str(tmp_path), "--data_only",
                    "--num_examples", "512"], check=True)
    result = subprocess.run([sys.executable, script, "balance", "--folder", str(tmp_path), "--gpus", "2,8",
                             "--global_batch", "128"], check=True, capture_output=True, text=True)
    rows = {(row["sampling"], row["gpus"]): row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {(sampling, gpus) for sampling in ("random", "batch_rebalance") for gpus in (2, 8)}
    for gpus in (2, 8):
        random_row, balanced = rows["random", gpus], rows["batch_rebalance", gpus]
        assert 0 < random_row["efficiency_ceiling"] < balanced["efficiency_ceiling"] <= 1
        assert random_row["real_token_share"] < 0.8 < balanced["real_token_share"] <= 1
        assert random_row["packed_efficiency_ceiling"] < 0.98 < balanced["packed_efficiency_ceiling"] <= 1
        assert random_row["graphed_efficiency_ceiling"] < 0.98 < balanced["graphed_efficiency_ceiling"] <= 1
    assert rows["random", 8]["efficiency_ceiling"] < rows["random", 2]["efficiency_ceiling"]
    bad = subprocess.run([sys.executable, script, "balance", "--folder", str(tmp_path), "--gpus", "8",
                          "--global_batch", "32", "--per_device_batch", "8"], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not split into 8 GPUs x 8" in bad.stderr


def test_the_recorded_error_is_the_exception_not_a_library_notice():
    """What a failed run records: the exception a rank raised, not an ImportError notice a library printed and
    survived (Liger prints several), nor torchrun's summary."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from bench_train import RAISED

    taken = ["[rank1]: RuntimeError: aten.mm.default got mixed torch.Tensor and DTensor",
             "torch.OutOfMemoryError: CUDA out of memory.", "error: --model_dtype must be one of",
             "train_hf.py: error: argument --stage: invalid int value"]
    ignored = ["Backend impl 'rope' could not be imported: ImportError: cutedsl backend requires the CUTLASS DSL",
               "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ", "  error_file: <N/A>"]
    assert all(RAISED.match(line) for line in taken) and not any(RAISED.match(line) for line in ignored)


def assert_phases(line: str) -> None:
    """Every phase of an optimizer step of two micro-batches, timed."""
    for phase in ("micro-batches before the last", "last micro-batch and clipping", "optimizer",
                  "scheduler and zero_grad", "between steps"):
        assert re.search(re.escape(phase) + r" \d+\.\d ms", line), line


def test_profile_train_prints_each_ranks_host_timeline(tmp_path):
    """benchmarks/profile_train.py under torchrun with two CPU processes: each rank prints its host's timeline of an
    optimizer step (the phases between the Trainer's callbacks, the values read off the device), what issue 18 asks to
    compare between a slow and a fast 4-GPU launch, and writes its profiled steps as a Chrome trace. The values read
    count the Trainer's NaN/Inf check of each micro-batch's loss (two reads), which `--logging_nan_inf_filter false`
    turns off. Before that, rank 0 prints every rank's unprofiled steps (wall = busy + waiting for the device + garbage
    collection) and the busiest rank's excess."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from bench_train import command

    subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_train.py"), "prepare", "--folder",
                    str(tmp_path), "--tiny", "--num_examples", "32"], check=True)
    profiler = str(REPO_ROOT / "benchmarks" / "profile_train.py")
    reads = {}
    for nan_filter in ("true", "false"):
        arguments = command(folder=str(tmp_path), method="lora", gpus=2, steps=7, global_batch=8, per_device_batch=2,
                            output_dir=str(tmp_path / nan_filter), script=profiler,
                            extra=["--logging_nan_inf_filter", nan_filter])
        at = arguments.index(profiler) + 1
        arguments[at:at] = ["--warmup_steps", "2", "--timed_steps", "2", "--steps", "2", "--trace_dir",
                            str(tmp_path / f"traces_{nan_filter}"), "--"]
        result = subprocess.run(arguments, check=True, capture_output=True, text=True, timeout=600)
        for rank in (0, 1):  # each rank's profiled steps as a Chrome trace, its operators on the host
            trace = json.loads((tmp_path / f"traces_{nan_filter}" / f"rank{rank}.json").read_text())
            assert any(event.get("name") == "aten::item" for event in trace["traceEvents"])
        timed = re.search(r"timed steps 3-4 without the profiler.*\n((?:  rank \d: .*\n    host phases: .*\n){2})"
                          r"  the busiest rank of each "
                          r"step was busy \d+\.\d ms longer than the ranks' mean \(\d+% of the wall\); busiest rank by "
                          r"step: \[[01], [01]\]", result.stdout)
        assert timed, result.stdout[-3000:]
        for rank, (line, phases) in enumerate(zip(*[iter(timed.group(1).splitlines())] * 2)):
            assert_phases(phases)
            parts = re.match(rf"  rank {rank}: wall (\S+), busy (\S+) \(steps \S+-\S+\), waiting for the GPU (\S+), "
                             r"garbage collection (\S+) in \S+ collections", line)
            wall, busy, waiting, collecting = map(float, parts.groups())
            assert wall > 0 and busy > 0 and abs(wall - busy - waiting - collecting) < 0.2, line
        # each rank's line: the phases, the values read off the device
        lines = re.findall(r"rank \d: host per optimizer step: [^\n]*?blocked in synchronisation \d+\.\d ms",
                           result.stdout)
        assert sorted(line.split(":")[0] for line in lines) == ["rank 0", "rank 1"], result.stdout[-2000:]
        for line in lines:
            assert_phases(line)
        operators = re.findall(r"rank \d: host operators by own CPU time per optimizer step: (.*)", result.stdout)
        assert len(operators) == 2 and all(len(re.findall(r"\S+ \d+\.\d ms x[\d.]+", line)) == 12
                                           for line in operators), result.stdout[-2000:]
        reads[nan_filter] = [int(re.search(r"(\d+) values read off the device", line).group(1))
                             for line in sorted(lines)]
    # two micro-batches a step (global batch 8 = 2 ranks x 2 x 2), each loss checked twice (NaN, then Inf)
    assert [on - off for on, off in zip(reads["true"], reads["false"])] == [4, 4], reads


def test_host_waits_times_reads_off_the_device_and_collections_then_unwraps():
    """profile_train.HostWaits: reading a value (item, bool, tolist) and synchronising count as waiting, a collection
    is timed and counted, and on leaving torch's functions are its own again."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import gc

    import torch
    from profile_train import HostWaits

    item, synchronize = torch.Tensor.item, torch.cuda.synchronize
    with HostWaits() as waits:
        assert torch.tensor(2.0).item() == 2.0 and bool(torch.tensor(True)) and torch.tensor([1]).tolist() == [1]
        assert waits.waiting > 0 and waits.collections == 0
        gc.collect()
        waiting, collecting, collections = waits.totals()
    assert collections == 1 and collecting > 0 and waiting == waits.waiting
    assert torch.Tensor.item is item and torch.cuda.synchronize is synchronize
    assert "item" not in torch.Tensor.__dict__ and "__bool__" not in torch.Tensor.__dict__


def test_idle_causes_names_the_synchronisation_that_left_the_gpu_idle():
    """profile_train.idle_causes: a GPU gap that opens while the host waits in a synchronisation is charged to that
    synchronisation's caller, found among the host operators around it on its thread: by Python frames (torch's own
    skipped) when stacks were recorded, else by the innermost and outermost operators; a gap with no waiting host goes
    to the host's launching, named by the operators around the launch of the kernel that ended it; gaps under
    IDLE_GAP_US and the profiler's GPU annotations (which span idle time) are not work and not gaps."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    from profile_train import IDLE_GAP_US, device_work, idle_causes

    def event(name, start, end, device=DeviceType.CPU, stack=None, annotation=False, thread=1, id=0):
        return SimpleNamespace(name=name, time_range=SimpleNamespace(start=start, end=end), device_type=device,
                               stack=stack, thread=thread, is_user_annotation=annotation, id=id)

    def causes(stack):
        kernels = [event(f"k{i}", start, end, device=DeviceType.CUDA, id=10 + i)
                   for i, (start, end) in enumerate([(0, 1000), (1300, 2000), (2050, 3000), (3500, 4000)])]
        host = [event("LigerFusedLinearCrossEntropyFunction", 900, 1800),
                event("aten::item", 990, 1295, stack=stack),
                event("cudaStreamSynchronize", 1000, 1290),  # waiting when the GPU ran dry at 1000
                event("aten::mm", 0, 5000, thread=2),  # another thread's operator around it: not its caller
                event("cudaStreamSynchronize", 3200, 3210),  # began after the GPU ran dry at 3000: not the cause
                event("nccl:all_reduce", 0, 4000, device=DeviceType.CUDA, annotation=True),
                # older torch marks only the host's side of an annotation
                event("DistributedDataParallel.forward", 0, 4000, annotation=True),
                event("DistributedDataParallel.forward", 0, 4000, device=DeviceType.CUDA),
                event("aten::mul", 3300, 3350, id=13),  # an operator id equal to k3's correlation id: not a launch
                event("LigerRMSNormFunction", 3390, 3460),
                event("cudaLaunchKernel", 3400, 3410, id=13)]  # launched k3, which ended the gap at 3000-3500
        return idle_causes(device_work(kernels + host), kernels + host)

    assert 2050 - 2000 < IDLE_GAP_US
    launching = {"the host launching too slowly, up to LigerRMSNormFunction in DistributedDataParallel.forward":
                 [500.0, 1]}
    stack = ["/site/torch/_tensor.py(1): item", "/repo/liger/flce.py(132): fwd", "/repo/train_hf.py(7): step"]
    assert causes(stack) == {"flce.py(132): fwd <- train_hf.py(7): step": [300.0, 1], **launching}
    assert causes(None) == {"aten::item in DistributedDataParallel.forward": [300.0, 1], **launching}
