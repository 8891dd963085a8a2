import os, time, torch, torch.distributed as dist
dist.init_process_group("nccl")
rank = dist.get_rank(); torch.cuda.set_device(rank)
for dtype, numel in ((torch.float32, 71_307_264), (torch.bfloat16, 71_307_264), (torch.float32, 6_553_600)):
    x = torch.ones(numel, dtype=dtype, device="cuda")
    for _ in range(3): dist.all_reduce(x)
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(10): dist.all_reduce(x)
    torch.cuda.synchronize(); ms = (time.perf_counter() - t) / 10 * 1e3
    if rank == 0:
        size = x.numel() * x.element_size()
        print(f"all_reduce {size/1e6:.0f} MB {dtype}: {ms:.2f} ms, algbw {size/ms/1e6:.1f} GB/s, busbw {size/ms/1e6*2*(dist.get_world_size()-1)/dist.get_world_size():.1f} GB/s", flush=True)
dist.destroy_process_group()
