"""HF transformers float64 goldens for phi3-ts's `exact` numerics.

For each folder that golden/hf/prepare.mjs wrote (config.json + model.safetensors + recipe.json), load
Phi3ForCausalLM in float64 with eager attention, run the recipe's tokens in one forward pass and write
golden/data/hf/<id>.json: every position's logits (f32, base64) and argmax.

    node golden/hf/prepare.mjs /tmp/hf && python3 golden/hf/make_goldens.py /tmp/hf golden/data/hf
"""
import base64, json, os, sys
import numpy as np
import torch
import transformers
from transformers import Phi3Config, Phi3ForCausalLM

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
torch.set_grad_enabled(False)
for case in sorted(os.listdir(src)):
    d = os.path.join(src, case)
    recipe = json.load(open(os.path.join(d, 'recipe.json')))
    cfg = json.load(open(os.path.join(d, 'config.json')))
    if recipe.get('forceLong'):
        # llama.cpp's rule (long factors whenever the context is long) on a short sequence: run transformers
        # with the long factors in the short slot
        cfg['rope_scaling']['short_factor'] = cfg['rope_scaling']['long_factor']
    config = Phi3Config(**cfg)
    config._attn_implementation = 'eager'
    try:
        model = Phi3ForCausalLM.from_pretrained(d, config=config, dtype=torch.float64, attn_implementation='eager')
    except TypeError:  # transformers < 4.56
        model = Phi3ForCausalLM.from_pretrained(d, config=config, torch_dtype=torch.float64, attn_implementation='eager')
    assert next(model.parameters()).dtype == torch.float64
    model.eval()
    ids = torch.tensor([recipe['tokens']], dtype=torch.long)
    logits = model(input_ids=ids).logits[0].to(torch.float64).numpy()
    rot = model.model.rotary_emb
    print(case, 'rope config:', getattr(model.config, 'rope_parameters', None) and {k: v for k, v in model.config.rope_parameters.items() if 'factor' not in k or isinstance(v, float)})
    info = f"rope_type {getattr(rot, 'rope_type', '?')}, attention_scaling {getattr(rot, 'attention_scaling', '?')}"
    positions = [{'argmax': int(np.argmax(row)), 'logits': base64.b64encode(row.astype('<f4').tobytes()).decode()} for row in logits]
    out = {
        'generator': f'golden/hf/make_goldens.py: transformers {transformers.__version__} Phi3ForCausalLM, torch {torch.__version__}, float64, eager attention ({info})',
        'recipe': {k: v for k, v in recipe.items() if k != 'tokens'},
        'nVocab': int(logits.shape[1]),
        'tokens': recipe['tokens'],
        'maxAbsLogit': float(np.abs(logits).max()),
        'positions': positions,
    }
    json.dump(out, open(os.path.join(dst, case + '.json'), 'w'))
    print(case, logits.shape, info, 'max |logit|', out['maxAbsLogit'])
