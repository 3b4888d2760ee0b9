"""HF transformers float64 goldens for phi3-ts's `exact` numerics.

For each folder that golden/hf/prepare.mjs wrote (config.json + model.safetensors + recipe.json), load
Phi3ForCausalLM in float64 with eager attention, run the recipe's tokens in one forward pass and write
golden/data/hf/<id>.json: every position's logits (f32, base64) and argmax.

    node golden/hf/prepare.mjs /tmp/hf && python3 golden/hf/make_goldens.py /tmp/hf golden/data/hf
"""
import sys
import torch
import transformers
from transformers import Phi3Config, Phi3ForCausalLM

from golden_io import cases, write_golden

src, dst = sys.argv[1], sys.argv[2]
torch.set_grad_enabled(False)
for case, d, recipe, cfg in cases(src):
    config = Phi3Config(**cfg)
    config._attn_implementation = 'eager'
    try:
        model = Phi3ForCausalLM.from_pretrained(d, config=config, dtype=torch.float64, attn_implementation='eager')
    except TypeError:  # transformers < 4.56
        model = Phi3ForCausalLM.from_pretrained(d, config=config, torch_dtype=torch.float64, attn_implementation='eager')
    assert next(model.parameters()).dtype == torch.float64
    model.eval()
    logits = model(input_ids=torch.tensor([recipe['tokens']], dtype=torch.long)).logits[0].to(torch.float64).numpy()
    rot = model.model.rotary_emb
    info = f"rope_type {getattr(rot, 'rope_type', '?')}, attention_scaling {getattr(rot, 'attention_scaling', '?')}"
    write_golden(dst, case, recipe, logits, f'golden/hf/make_goldens.py: transformers {transformers.__version__} Phi3ForCausalLM, torch {torch.__version__}, float64, eager attention ({info})')
