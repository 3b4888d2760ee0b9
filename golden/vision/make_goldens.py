"""Float64 goldens for Phi-3.5-vision, from each folder golden/vision/prepare.mjs wrote.

- The vision tower is transformers' CLIPVisionModel (CLIP ViT at the folder's dims: 336² images,
  14² patches, heads of 64, quick_gelu, as Microsoft's Phi-3-vision code configures it), in float64;
  features are hidden_states[-2] without the class token.
- The HD merge and projection are written here from the published model code (Microsoft's
  image_embedding_phi3_v.py, transformers' modeling_phi3_v.py): 2x2 patch merge, sub_GN at each row's
  end, glb_GN between sub-images and the global view (hd_transform_order sub_glb), then
  Linear -> GELU (erf) -> Linear.
- The text model is Phi3ForCausalLM in float64 (eager attention) on inputs_embeds: the token
  embeddings with the image's rows (token -1) replaced by the image embeddings.

Writes golden/data/vision/<id>.json: two crops' features, every image embedding, and logits at some
positions (f32 base64), with their max |value| for scale.

    node golden/vision/prepare.mjs /tmp/vision && python3 golden/vision/make_goldens.py /tmp/vision golden/data/vision
"""
import base64, json, os, sys

import numpy as np
import torch
import transformers
from safetensors.torch import load_file
from transformers import CLIPVisionConfig, CLIPVisionModel, Phi3Config, Phi3ForCausalLM

torch.set_grad_enabled(False)
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype='<f4').tobytes()).decode()


for case in sorted(os.listdir(src)):
    d = os.path.join(src, case)
    recipe = json.load(open(os.path.join(d, 'recipe.json')))
    cfg = json.load(open(os.path.join(d, 'config.json')))
    index = json.load(open(os.path.join(d, 'model.safetensors.index.json')))['weight_map']
    tensors = {}
    for shard in sorted(set(index.values())):
        tensors.update(load_file(os.path.join(d, shard)))
    vt = {k: v.to(torch.float64) for k, v in tensors.items() if k.startswith('model.vision_embed_tokens.')}

    # the vision tower
    pre = 'model.vision_embed_tokens.img_processor.'
    C = vt[pre + 'vision_model.embeddings.class_embedding'].shape[0]
    F = vt[pre + 'vision_model.encoder.layers.0.mlp.fc1.weight'].shape[0]
    L = len({k.split('.')[6] for k in vt if k.startswith(pre + 'vision_model.encoder.layers.')})
    vcfg = CLIPVisionConfig(hidden_size=C, intermediate_size=F, num_hidden_layers=L, num_attention_heads=C // 64, image_size=336, patch_size=14,
                            hidden_act='quick_gelu', layer_norm_eps=1e-5, attn_implementation='eager')
    clip = CLIPVisionModel(vcfg).to(torch.float64).eval()
    sd = {k[len(pre):]: v for k, v in vt.items() if k.startswith(pre)}
    if not any(k.startswith('vision_model.') for k in clip.state_dict()):  # transformers 5 names them from the vision model down
        sd = {k[len('vision_model.'):]: v for k, v in sd.items()}
    missing, unexpected = clip.load_state_dict(sd, strict=False)
    assert not unexpected and all('position_ids' in m for m in missing), (missing, unexpected)
    crops = load_file(os.path.join(d, 'inputs.safetensors'))['crops'].to(torch.float64)
    feats = clip(pixel_values=crops, output_hidden_states=True).hidden_states[-2][:, 1:]  # (n, 576, C)

    # HD merge (sub_glb) and projection
    def merge(f, hc, wc):
        n, l, c = f.shape
        H = int(l ** 0.5)
        x = f.reshape(n, H // 2, 2, H // 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(n, (H // 2) ** 2, 4 * c)  # (n, 144, 4C)
        x = x.reshape(1, hc, wc, H // 2, H // 2, 4 * c).permute(0, 1, 3, 2, 4, 5).reshape(hc * (H // 2), wc * (H // 2), 4 * c)
        return x

    def newline(x):
        rows, cols, c4 = x.shape
        return torch.cat([x, vt['model.vision_embed_tokens.sub_GN'].reshape(1, 1, c4).expand(rows, 1, c4)], dim=1).reshape(-1, c4)

    h, w = recipe['h'], recipe['w']
    glb = newline(merge(feats[0:1], 1, 1))
    sub = newline(merge(feats[1:1 + h * w], h, w))
    order = cfg.get('embd_layer', {}).get('hd_transform_order', 'sub_glb')
    sep = vt['model.vision_embed_tokens.glb_GN'].reshape(1, -1)
    merged = torch.cat([sub, sep, glb] if order == 'sub_glb' else [glb, sep, sub], dim=0)
    p = 'model.vision_embed_tokens.img_projection.'
    hid = torch.nn.functional.gelu(merged @ vt[p + '0.weight'].T + vt[p + '0.bias'])
    emb = hid @ vt[p + '2.weight'].T + vt[p + '2.bias']  # (tokens, dim)

    # the text model on the prompt's embeddings
    text_cfg = {k: v for k, v in cfg.items() if k not in ('img_processor', 'embd_layer', 'architectures', 'model_type', 'auto_map')}
    config = Phi3Config(**text_cfg)
    config._attn_implementation = 'eager'
    model = Phi3ForCausalLM(config).to(torch.float64).eval()
    tsd = {k: v.to(torch.float64) for k, v in tensors.items() if not k.startswith('model.vision_embed_tokens.')}
    missing, unexpected = model.load_state_dict(tsd, strict=False)
    assert not unexpected and all('rotary' in m or (m == 'lm_head.weight' and config.tie_word_embeddings) for m in missing), (missing, unexpected)
    if config.tie_word_embeddings:
        model.tie_weights()
    ids = torch.tensor(recipe['tokens'], dtype=torch.long)
    image = ids < 0
    assert int(image.sum()) == emb.shape[0], (int(image.sum()), emb.shape)
    x = model.model.embed_tokens(ids.clamp(min=0))
    x[image] = emb
    logits = model(inputs_embeds=x[None]).logits[0].numpy()
    first = int(torch.nonzero(image)[0])
    positions = sorted({0, first - 1, first, first + 100, first + emb.shape[0] - 1, *range(len(ids) - 6, len(ids))})

    out = {
        'generator': f'golden/vision/make_goldens.py: transformers {transformers.__version__} CLIPVisionModel + Phi3ForCausalLM, torch {torch.__version__}, float64, eager attention; HD merge and projection written from the published Phi-3-vision code',
        'recipe': {k: v for k, v in recipe.items() if k != 'tokens'},
        'tokens': recipe['tokens'],
        'features': {str(i): b64(feats[i].numpy()) for i in (0, 2)},
        'maxAbsFeature': float(feats.abs().max()),
        'embeddings': b64(emb.numpy()),
        'maxAbsEmbedding': float(emb.abs().max()),
        'nVocab': int(logits.shape[1]),
        'maxAbsLogit': float(np.abs(logits).max()),
        'logits': {str(t): b64(logits[t]) for t in positions},
    }
    json.dump(out, open(os.path.join(dst, case + '.json'), 'w'))
    print(case, 'features', tuple(feats.shape), 'embeddings', tuple(emb.shape), 'logits', logits.shape, 'max |logit|', round(out['maxAbsLogit'], 3))
