"""Shared by make_goldens.py (transformers) and reference_np.py (numpy): the prepared cases in, golden JSON out."""
import base64, json, os

import numpy as np


def cases(src):
    """(name, folder, recipe, config) for each folder prepare.mjs wrote; a -longctx recipe (forceLong) gets
    its long factors in the short slot, so that a short sequence runs on them (llama.cpp's rule)"""
    for case in sorted(os.listdir(src)):
        d = os.path.join(src, case)
        recipe = json.load(open(os.path.join(d, 'recipe.json')))
        cfg = json.load(open(os.path.join(d, 'config.json')))
        if recipe.get('forceLong'):
            cfg['rope_scaling']['short_factor'] = cfg['rope_scaling']['long_factor']
        yield case, d, recipe, cfg


def write_golden(dst, case, recipe, logits, generator):
    """golden/data/<dir>/<case>.json: every position's logits as f32 base64 and its argmax"""
    os.makedirs(dst, exist_ok=True)
    out = {
        'generator': generator,
        'recipe': {k: v for k, v in recipe.items() if k != 'tokens'},
        'nVocab': int(logits.shape[1]),
        'tokens': recipe['tokens'],
        'maxAbsLogit': float(np.abs(logits).max()),
        'positions': [{'argmax': int(np.argmax(r)), 'logits': base64.b64encode(r.astype('<f4').tobytes()).decode()} for r in logits],
    }
    json.dump(out, open(os.path.join(dst, case + '.json'), 'w'))
    print(case, logits.shape, 'max |logit|', round(out['maxAbsLogit'], 3))
