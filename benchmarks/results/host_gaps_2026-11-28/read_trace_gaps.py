"""Each GPU idle gap of US microseconds or more (default 1000) in a Chrome trace of profile_train.py --trace_dir:
the host's operators and CUDA runtime calls during it (long ones, all runtime calls) and the GPU work that ended it.
python read_trace_gaps.py rank0.json.gz [US]"""
import gzip, json, sys, collections
t=json.load(gzip.open(sys.argv[1]))
ev=[e for e in t["traceEvents"] if e.get("ph")=="X"]
gpu=sorted([e for e in ev if e.get("cat") in ("kernel","gpu_memcpy","gpu_memset")],key=lambda e:e["ts"])
t0=min(e["ts"] for e in ev)
busy=[]
for e in gpu:
    s,en=e["ts"],e["ts"]+e["dur"]
    if busy and s<=busy[-1][1]: busy[-1][1]=max(busy[-1][1],en)
    else: busy.append([s,en])
cpu=sorted([e for e in ev if e.get("cat") in ("cpu_op","user_annotation","cuda_runtime","cuda_driver")],key=lambda e:e["ts"])
lo=float(sys.argv[2]) if len(sys.argv)>2 else 1000
for (a,b),(c,d) in zip(busy,busy[1:]):
    g=c-b
    if g<lo: continue
    print(f"\n=== {(b-t0)/1e3:8.2f} ms gap {g/1e3:.2f} ms")
    for e in cpu:
        if e["ts"]+e["dur"]>=b and e["ts"]<=c and (e["dur"]>150 or e.get("cat") in("cuda_runtime","cuda_driver")):
            print(f"   {(e['ts']-t0)/1e3:8.2f} +{e['dur']/1e3:6.2f} t{e['tid']%1000} {e.get('cat')[:6]} {e['name'][:60]}")
    nxt=[e for e in gpu if e["ts"]>=c][:2]
    for e in nxt: print("   next GPU:", e["name"][:80], e.get("args",{}).get("bytes"), e["dur"])
