"""Trains phi3-ts's embedded demo model: a small Phi-3 (transformers' Phi3ForCausalLM) on the Brown corpus.

    node demo/prepare.mjs demo/.cache            # train.bin / val.bin, Phi-3 tokens
    python3 demo/train.py demo/.cache demo/.cache/hf
    node dist/src/cli/main.js convert demo/.cache/hf --vocab <phi-3 vocab.gguf> --type Q8_0 --out demo/phi3-demo-brown.gguf

Writes an HF folder (config.json, model.safetensors in float32) and train.json (the recipe, the loss
curve, the best held-out loss). The weights kept are those of the evaluation with the lowest held-out loss.
"""
import json, math, os, sys, time

import numpy as np
import torch
from transformers import Phi3Config, Phi3ForCausalLM

src, dst = sys.argv[1], sys.argv[2]
R = dict(
    seed=1234, hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=4,
    max_position_embeddings=2048, seq=256, batch=64, lr=2e-3, min_lr=1e-4, warmup=100, steps=int(os.environ.get('STEPS', 2400)), weight_decay=0.1,
    dropout=0.1, eval_every=50,
)
# one run per dropout rate given (DROPOUTS="0.1 0.2"); the run with the lowest held-out loss is kept
DROPOUTS = [float(d) for d in os.environ.get('DROPOUTS', str(R['dropout'])).split()]
dev = 'cuda' if torch.cuda.is_available() else 'cpu'
BOS = 1
train = torch.from_numpy(np.fromfile(os.path.join(src, 'train.bin'), dtype='<u2').astype(np.int64))
val = torch.from_numpy(np.fromfile(os.path.join(src, 'val.bin'), dtype='<u2').astype(np.int64))


def run(R):
    torch.manual_seed(R['seed'])
    np.random.seed(R['seed'])

    config = Phi3Config(
        vocab_size=32064, hidden_size=R['hidden_size'], intermediate_size=R['intermediate_size'], num_hidden_layers=R['num_hidden_layers'],
        num_attention_heads=R['num_attention_heads'], num_key_value_heads=R['num_key_value_heads'], max_position_embeddings=R['max_position_embeddings'],
        original_max_position_embeddings=R['max_position_embeddings'], rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=32000, pad_token_id=32000, resid_pdrop=R['dropout'], embd_pdrop=R['dropout'], attention_dropout=0.0,
        hidden_act='silu', initializer_range=0.02, sliding_window=None,
    )
    model = Phi3ForCausalLM(config).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': R['weight_decay']}, {'params': no_decay, 'weight_decay': 0.0}], lr=R['lr'], betas=(0.9, 0.95))

    
    def lr_at(step):
        if step < R['warmup']:
            return R['lr'] * (step + 1) / R['warmup']
        t = (step - R['warmup']) / max(1, R['steps'] - R['warmup'])
        return R['min_lr'] + 0.5 * (R['lr'] - R['min_lr']) * (1 + math.cos(math.pi * t))

    
    def batch():
        # every window starts with BOS, as phi3-ts's prompts and llama-perplexity's chunks do
        ix = torch.randint(0, len(train) - R['seq'] - 1, (R['batch'],))
        b = torch.stack([train[i:i + R['seq'] + 1] for i in ix])
        b[:, 0] = BOS
        return b.to(dev)

    
    @torch.no_grad()
    def evaluate():
        """mean next-token cross-entropy over the held-out tokens in windows of seq + 1 that start with BOS
        (all positions scored)"""
        model.eval()
        total, count = 0.0, 0
        for i in range(0, len(val) - 1, R['seq']):
            x = val[i:i + R['seq'] + 1].clone().to(dev)[None]
            if x.shape[1] < 2:
                break
            x[0, 0] = BOS
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == 'cuda'):
                logits = model(input_ids=x[:, :-1]).logits.float()
            total += torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction='sum').item()
            count += x.shape[1] - 1
        model.train()
        return total / count

    
    log, best, best_state = [], float('inf'), None
    t0 = time.time()
    model.train()
    for step in range(R['steps'] + 1):
        if step % R['eval_every'] == 0 or step == R['steps']:
            v = evaluate()
            log.append({'step': step, 'val_loss': round(v, 4), 'seconds': round(time.time() - t0, 1)})
            print(log[-1], flush=True)
            if v < best:
                best, best_state = v, {k: t.detach().clone() for k, t in model.state_dict().items()}
        if step == R['steps']:
            break
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        x = batch()
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == 'cuda'):
            logits = model(input_ids=x[:, :-1]).logits.float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0:
            log[-1].setdefault('train_loss', []).append(round(loss.item(), 4))
    model.load_state_dict(best_state)
    return model, n_params, best, log, time.time() - t0


runs = []
for d in DROPOUTS:
    r = dict(R, dropout=d)
    model, n_params, best, log, seconds = run(r)
    print({'dropout': d, 'best_val_loss': round(best, 4)}, flush=True)
    runs.append({'recipe': r, 'best_val_loss': round(best, 4), 'seconds': round(seconds, 1), 'log': log, 'model': model, 'n_params': n_params})
kept = min(runs, key=lambda x: x['best_val_loss'])
model, n_params, R, best = kept['model'], kept['n_params'], kept['recipe'], kept['best_val_loss']
model = model.float().cpu()
model.config.resid_pdrop = model.config.embd_pdrop = 0.0
os.makedirs(dst, exist_ok=True)
model.save_pretrained(dst, safe_serialization=True, max_shard_size=os.environ.get('SHARD', '15MB'))
info = {
    'recipe': R, 'parameters': n_params, 'train_tokens': len(train), 'val_tokens': len(val), 'device': torch.cuda.get_device_name() if dev == 'cuda' else 'cpu',
    'torch': torch.__version__, 'best_val_loss': best, 'best_val_ppl': round(math.exp(best), 2),
    'runs': [{k: v for k, v in x.items() if k not in ('model', 'n_params')} for x in runs],
}
json.dump(info, open(os.path.join(dst, 'train.json'), 'w'), indent=1)
print({k: v for k, v in info.items() if k != 'runs'})
