"""HF transformers float64 goldens for Phi-3.5-MoE (arch phimoe) folders written by `phi3 export-hf`.

transformers' PhimoeForCausalLM is not the graph llama.cpp (and so phi3-ts) runs on the same weights: it
normalises with LayerNorm where llama.cpp uses RMSNorm (with the same weight and bias), and it routes by
sparsemixer where llama.cpp takes the softmax's top-k renormalised. For each prepared folder this writes

  <dst>/hf-phimoe/<id>.json           transformers' own model, as it is (what the folder means to transformers)
  <dst>/hf-phimoe-llamacpp/<id>.json  the same loaded torch model with those two parts replaced by llama.cpp's

so the second checks the export (names, expert order, shapes, biases, rope mscale) and phi3-ts's phimoe
arithmetic against float64 torch, and the first measures how far the two graphs are apart. Loading must
report no missing, unexpected or mismatched keys.

    node golden/hf/prepare.mjs /tmp/hf-phimoe --moe && python3 golden/hf/make_phimoe_goldens.py /tmp/hf-phimoe golden/data
"""
import os
import sys
import torch
import transformers
from transformers import PhimoeConfig, PhimoeForCausalLM

from golden_io import cases, write_golden

src, dst = sys.argv[1], sys.argv[2]
torch.set_grad_enabled(False)


def rms_norm_with_bias(module):
    """llama.cpp's build_norm(LLM_NORM_RMS) followed by the bias: x / sqrt(mean(x^2) + eps) * w + b"""
    def forward(x):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + module.eps)
        return y * module.weight + module.bias
    return forward


def softmax_top_k(router):
    """llama.cpp's build_moe_ffn for phimoe: softmax over all experts, the top k, renormalised to sum 1"""
    def forward(hidden_states):
        logits = torch.nn.functional.linear(hidden_states, router.weight)
        p = torch.softmax(logits, dim=-1)
        w, idx = torch.topk(p, router.top_k, dim=-1)
        return logits, w / w.sum(dim=-1, keepdim=True), idx
    return forward


def load(d, cfg):
    # JSON writes 0.0 as 0: transformers 5's strict config fields want floats
    for k in ('attention_dropout', 'embd_pdrop', 'resid_pdrop', 'initializer_range', 'router_jitter_noise', 'input_jitter_noise', 'rms_norm_eps', 'rope_theta'):
        if isinstance(cfg.get(k), int):
            cfg[k] = float(cfg[k])
    config = PhimoeConfig(**cfg)
    config._attn_implementation = 'eager'
    # transformers 5's default experts kernel (torch grouped_mm) has no float64: the per-expert loop
    config._experts_implementation = 'eager'
    kw = dict(config=config, dtype=torch.float64, attn_implementation='eager', output_loading_info=True)
    try:
        model, info = PhimoeForCausalLM.from_pretrained(d, experts_implementation='eager', **kw)
    except (TypeError, ValueError):
        model, info = PhimoeForCausalLM.from_pretrained(d, **kw)
    bad = {k: v for k, v in info.items() if k in ('missing_keys', 'unexpected_keys', 'mismatched_keys') and len(v)}
    assert not bad, f'{d}: transformers loaded the folder with {bad}'
    assert next(model.parameters()).dtype == torch.float64
    return model.eval()


for case, d, recipe, cfg in cases(src):
    ids = torch.tensor([recipe['tokens']], dtype=torch.long)
    model = load(d, cfg)
    theirs = model(input_ids=ids).logits[0].numpy()
    write_golden(os.path.join(dst, 'hf-phimoe'), case, recipe, theirs, f"golden/hf/make_phimoe_goldens.py: transformers {transformers.__version__} PhimoeForCausalLM as it is (LayerNorm, sparsemixer), torch {torch.__version__}, float64, eager attention")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    routers = [layer.mlp.router for layer in model.model.layers]
    assert len(norms) == 2 * len(routers) + 1, f'{len(norms)} LayerNorms for {len(routers)} layers'
    for m in norms:
        m.forward = rms_norm_with_bias(m)
    for r in routers:
        r.forward = softmax_top_k(r)
    ours = model(input_ids=ids).logits[0].numpy()
    write_golden(os.path.join(dst, 'hf-phimoe-llamacpp'), case, recipe, ours, f"golden/hf/make_phimoe_goldens.py: transformers {transformers.__version__} PhimoeForCausalLM with llama.cpp's RMSNorm + bias and softmax top-k routing put in, torch {torch.__version__}, float64, eager attention")
    print(case, 'transformers vs llama.cpp graph: max |d| / scale', float(abs(theirs - ours).max() / abs(ours).max()))
