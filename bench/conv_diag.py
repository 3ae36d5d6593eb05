"""Diagnostic: one fwd+bwd step of CIFAR ResNet-18 w16 (batch 128) in fp32/bf16 x NCHW/channels_last, interleaved, with the
profiler's self CPU time of convolution_backward / convolution forward / batch_norm. Run: python -m bench.conv_diag"""
import time, torch, torch.nn.functional as F
from torch.profiler import profile, ProfilerActivity
from osr.models import build, model_meta
torch.manual_seed(0)
x8 = torch.randint(0, 256, (128, 3, 32, 32), dtype=torch.uint8); y = torch.randint(0, 6, (128,))
cfgs = {"fp32_nchw": (False, False), "fp32_cl": (True, False), "bf16_cl": (True, True), "bf16_nchw": (False, True)}
models = {}
for k, (cl, amp) in cfgs.items():
    m = build(**model_meta("resnet18", 6, 16, 3, (0.5,)*3, (0.5,)*3))
    models[k] = m.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
def step(k):
    cl, amp = cfgs[k]
    x = x8.float() / 255
    if cl: x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        loss = F.cross_entropy(models[k](x).float(), y)
    loss.backward()
for k in cfgs: step(k); step(k)
res = {k: [] for k in cfgs}
for r in range(4):
    for k in cfgs:
        with profile(activities=[ProfilerActivity.CPU]) as p:
            t = time.perf_counter(); step(k); step(k); dt = (time.perf_counter() - t) / 2
        ev = {e.key: e.self_cpu_time_total / 2e6 for e in p.key_averages()}
        res[k].append(dt)
        print(f"{k:10s} step {dt:.2f}s  conv_bwd {ev.get('aten::convolution_backward',0):.2f}s  conv_fwd {ev.get('aten::mkldnn_convolution',0)+ev.get('aten::_convolution',0)+ev.get('aten::thnn_conv2d',0)+ev.get('aten::_slow_conv2d_forward',0):.2f}s  bn {ev.get('aten::native_batch_norm',0):.2f}s", flush=True)
