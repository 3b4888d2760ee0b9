"""A float64 Phi-3 forward pass in numpy, written from transformers' modeling_phi3.py (Phi3ForCausalLM,
eager attention) and reading the same HF folder transformers would: config.json + model.safetensors.

It is the stand-in oracle until make_goldens.py (transformers itself) can run where PyTorch and
transformers are installed; its outputs go to golden/data/hf-numpy/, transformers' to golden/data/hf/.
Its rules are transformers': LongRoPE picks the long factors when the sequence is longer than
original_max_position_embeddings, attention_factor defaults to sqrt(1 + ln(max/orig) / ln(orig)),
partial_rotary_factor rotates the leading dims of each head (rotate_half over them), gate_up_proj holds
gate rows then up rows. Everything is float64 (transformers computes the rope angles in float32).

    node golden/hf/prepare.mjs /tmp/hf && python3 golden/hf/reference_np.py /tmp/hf golden/data/hf-numpy
"""
import json, math, os, struct, sys
import numpy as np

DT = {'F32': '<f4', 'F64': '<f8', 'F16': '<f2'}


def load_safetensors(path):
    raw = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        b, e = t['data_offsets']
        buf = raw[8 + n + b:8 + n + e]
        if t['dtype'] == 'BF16':
            a = (np.frombuffer(buf, '<u2').astype(np.uint32) << 16).view('<f4')
        else:
            a = np.frombuffer(buf, DT[t['dtype']])
        out[name] = a.astype(np.float64).reshape(t['shape'])
    return out


def rms_norm(x, w, eps):
    return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def forward(cfg, W, ids):
    T = len(ids)
    H, KV = cfg['num_attention_heads'], cfg['num_key_value_heads']
    hd = cfg['hidden_size'] // H
    rot = int(hd * cfg.get('partial_rotary_factor', 1.0))
    theta = cfg.get('rope_theta', 10000.0)
    inv = 1.0 / (theta ** (np.arange(0, rot, 2, dtype=np.float64) / rot))
    af = 1.0
    pos = np.arange(T, dtype=np.float64)
    rs = cfg.get('rope_scaling')
    if rs and rs.get('type', rs.get('rope_type')) == 'longrope':
        orig = cfg['original_max_position_embeddings']
        ext = np.array(rs['long_factor'] if T > orig else rs['short_factor'], dtype=np.float64)
        inv = 1.0 / (ext * theta ** (np.arange(0, rot, 2, dtype=np.float64) / rot))
        s = cfg['max_position_embeddings'] / orig
        af = rs.get('attention_factor') or (1.0 if s <= 1 else math.sqrt(1 + math.log(s) / math.log(orig)))
    elif rs and rs.get('type', rs.get('rope_type')) == 'linear':
        pos = pos / rs['factor']
    elif rs:
        raise SystemExit(f"rope_scaling {rs} is not covered")
    emb = np.concatenate([pos[:, None] * inv[None], pos[:, None] * inv[None]], -1)
    cos, sin = np.cos(emb) * af, np.sin(emb) * af  # [T, rot]
    eps = cfg['rms_norm_eps']
    x = W['model.embed_tokens.weight'][ids]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(cfg['num_hidden_layers']):
        p = f'model.layers.{l}.'
        h = rms_norm(x, W[p + 'input_layernorm.weight'], eps)
        qkv = h @ W[p + 'self_attn.qkv_proj.weight'].T
        q = qkv[:, :H * hd].reshape(T, H, hd).transpose(1, 0, 2)
        k = qkv[:, H * hd:(H + KV) * hd].reshape(T, KV, hd).transpose(1, 0, 2)
        v = qkv[:, (H + KV) * hd:].reshape(T, KV, hd).transpose(1, 0, 2)
        def rope(t):
            r, keep = t[..., :rot], t[..., rot:]
            return np.concatenate([r * cos + rotate_half(r) * sin, keep], -1)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, H // KV, 0), np.repeat(v, H // KV, 0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v  # [H, T, hd]
        x = x + a.transpose(1, 0, 2).reshape(T, H * hd) @ W[p + 'self_attn.o_proj.weight'].T
        h = rms_norm(x, W[p + 'post_attention_layernorm.weight'], eps)
        gu = h @ W[p + 'mlp.gate_up_proj.weight'].T
        g, u = np.split(gu, 2, -1)
        x = x + (u * (g / (1 + np.exp(-g)))) @ W[p + 'mlp.down_proj.weight'].T
    x = rms_norm(x, W['model.norm.weight'], eps)
    out = W['model.embed_tokens.weight'] if cfg.get('tie_word_embeddings') else W['lm_head.weight']
    return x @ out.T


if __name__ == '__main__':
    from golden_io import cases, write_golden
    for case, d, recipe, cfg in cases(sys.argv[1]):
        logits = forward(cfg, load_safetensors(os.path.join(d, 'model.safetensors')), recipe['tokens'])
        write_golden(sys.argv[2], case, recipe, logits, f'golden/hf/reference_np.py: numpy {np.__version__} float64 Phi-3 written from transformers modeling_phi3.py (not transformers itself)')
