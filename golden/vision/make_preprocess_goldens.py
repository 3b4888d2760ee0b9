"""Goldens for Phi-3-vision's image preprocessing, by the reference processor's steps (Microsoft's
image_processing_phi3_v.py for Phi-3.5-vision-instruct, written here from the published code): PIL
decode and convert('RGB'), HD_transform (transpose portrait, largest scale with scale*ceil(scale/ratio)
<= num_crops, PIL bilinear resize — what torchvision's resize does to a PIL image — then white
padding of the height to a multiple of 336, centred), ToTensor + CLIP Normalize in float32, the global
view by F.interpolate(bicubic) to 336², and the tiles by reshape/permute.

For each picture of <images> (its manifest.json: the file and the num_crops to run it with) writes golden/data/vision-preprocess/<name>-<n>.json:
image_sizes, the tile grid, and each crop's values at every 97th index (f32 base64) with their sum.
The JPEG's decoded pixels (PIL) are written too, every 13th byte, for the decoder check.

    node golden/vision/prepare-images.mjs /tmp/vimg && python3 golden/vision/make_preprocess_goldens.py /tmp/vimg golden/data/vision-preprocess
"""
import base64, json, math, os, sys

import numpy as np
import PIL
import torch
from PIL import Image

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073], dtype=torch.float32).view(3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711], dtype=torch.float32).view(3, 1, 1)
STRIDE = 97


def padding_336(b):
    width, height = b.size
    tar = int(np.ceil(height / 336) * 336)
    top = int((tar - height) / 2)
    out = Image.new('RGB', (width, tar), (255, 255, 255))
    out.paste(b, (0, top))
    return out


def hd_transform(img, hd_num):
    width, height = img.size
    trans = False
    if width < height:
        img = img.transpose(Image.TRANSPOSE)
        trans = True
        width, height = img.size
    ratio = width / height
    scale = 1
    while scale * np.ceil(scale / ratio) <= hd_num:
        scale += 1
    scale -= 1
    new_w = int(scale * 336)
    new_h = int(new_w / ratio)
    img = img.resize((new_w, new_h), Image.BILINEAR)  # torchvision.transforms.functional.resize on a PIL image
    img = padding_336(img)
    if trans:
        img = img.transpose(Image.TRANSPOSE)
    return img


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype='<f4').tobytes()).decode()


for entry in json.load(open(os.path.join(src, 'manifest.json'))):
    f = entry['file']
    name = os.path.splitext(f)[0]
    img = Image.open(os.path.join(src, f)).convert('RGB')
    if f.endswith('.jpg'):
        px = np.asarray(img, dtype=np.uint8).reshape(-1)
        json.dump({'name': name, 'decoder': f'PIL {PIL.__version__}', 'width': img.size[0], 'height': img.size[1], 'every13': base64.b64encode(px[::13].tobytes()).decode()}, open(os.path.join(dst, f'{name}-decoded.json'), 'w'))
    for n in entry['numCrops']:
        hd = hd_transform(img, n)
        x = torch.from_numpy(np.asarray(hd, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)  # ToTensor
        x = (x - MEAN) / STD  # Normalize
        H, W = x.shape[1], x.shape[2]
        glb = torch.nn.functional.interpolate(x.unsqueeze(0), size=(336, 336), mode='bicubic', align_corners=False)[0]
        tiles = x.reshape(1, 3, H // 336, 336, W // 336, 336).permute(0, 2, 4, 1, 3, 5).reshape(-1, 3, 336, 336)
        crops = torch.cat([glb.unsqueeze(0), tiles], dim=0).numpy().astype(np.float32)
        out = {
            'generator': f'golden/vision/make_preprocess_goldens.py: PIL {PIL.__version__}, torch {torch.__version__}',
            'image': f, 'numCrops': n, 'imageSize': [H, W], 'h': H // 336, 'w': W // 336, 'stride': STRIDE,
            'crops': [{'sampled': b64(c.reshape(-1)[::STRIDE]), 'sum': float(c.astype(np.float64).sum())} for c in crops],
        }
        json.dump(out, open(os.path.join(dst, f'{name}-{n}.json'), 'w'))
        print(f, n, 'image_sizes', [H, W], 'crops', len(crops))
