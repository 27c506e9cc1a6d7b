import torch, torch.nn.functional as F, json
from torch.profiler import profile, ProfilerActivity
dev="cuda"
def kernels(fn):
    fn(); torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as p:
        fn(); torch.cuda.synchronize()
    return sorted({e.name[:120] for e in p.events() if e.device_type.name=="CUDA"})
out={}
for (b,h,n,d,c) in [(1,32,4096,128,True),(8,16,1024,64,False)]:
    q=torch.randn(b,h,n,d,device=dev,dtype=torch.bfloat16);k=torch.randn_like(q);v=torch.randn_like(q)
    out[f"prefill b{b}h{h}n{n}d{d}c{int(c)}"]=kernels(lambda: F.scaled_dot_product_attention(q,k,v,is_causal=c))
for (b,hq,hkv,L) in [(1,32,8,4096),(64,32,8,1024)]:
    q=torch.randn(b,hq,1,128,device=dev,dtype=torch.bfloat16);k=torch.randn(b,hkv,L,128,device=dev,dtype=torch.bfloat16);v=torch.randn_like(k)
    out[f"decode b{b}hq{hq}hkv{hkv}l{L}"]=kernels(lambda: F.scaled_dot_product_attention(q,k,v,enable_gqa=True))
print(json.dumps(out,indent=1)); print(torch.__version__, torch.backends.cudnn.version())
