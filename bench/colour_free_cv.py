"""How much of what the models carry over to new patients is colour? Cross-validate a recipe on inputs without it.

Two input changes, each added as the last batch transform (training and scoring alike) of an otherwise unchanged recipe:

- `gray`: each image to grey levels (0.299 R + 0.587 G + 0.114 B, the same in all three channels), after the colour jitter;
- `std`: each image's channels standardised to mean 0 and standard deviation 1 over the image, which removes exactly the
  six global colour statistics (per-channel mean and spread) that `bench/colour_baseline.py` scores with, and keeps the
  colour contrast inside the image (haematoxylin against eosin).

    python bench/colour_free_cv.py ../shared/data/breakhis-dev --mode std --arch resnet18 --out bench/quality/resnet18_std
    python bench/paired_auc.py bench/quality/resnet18_std bench/quality/arch_resnet18

The folds are the quality benchmark's (5 patient-grouped folds, 128 px, 12 epochs, from scratch) and the folder is a
`bcc-cv` one (fold runs, pooled predictions.csv, patients.csv, report.html). The change is not a `TrainConfig` setting, so
it is not in the fold models' config.json or model.json: `bcc-predict` on a fold model would score it without the change.
These models are for this measurement only.
"""
import argparse, functools
import torch
from fastai.vision.all import Transform, TensorImage

import bcc_nb.train, bcc_nb.runs
from bcc_nb.config import TrainConfig, args_for, replace
from bcc_nb.crossval import cross_validate
from bench_folder import claim, cv_line   # beside this script


class Gray(Transform):
    "Each image to grey levels, in all three channels (after the colour jitter, before `Normalize`)."
    order = 98
    def encodes(self, x:TensorImage):
        w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
        return TensorImage((x*w).sum(1, keepdim=True).expand_as(x).contiguous())


class Std(Transform):
    "Each image's channels to mean 0 and standard deviation 1 over the image (after `Normalize`)."
    order = 100
    def encodes(self, x:TensorImage):
        m, s = x.mean((2, 3), keepdim=True), x.std((2, 3), keepdim=True)
        return TensorImage((x - m)/(s + 1e-3))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data', help='data with patient ids, e.g. ../shared/data/breakhis-dev')
    p.add_argument('--mode', choices=('gray', 'std'), required=True)
    p.add_argument('--arch', default='densenet201')
    p.add_argument('--out', required=True, help='a new folder, or one this script made with the same --mode (its finished folds are reused)')
    p.add_argument('--folds', type=int, default=5)
    p.add_argument('--seed', type=int, default=42, help='as bcc-cv --seed: another seed groups some patients into other folds')
    a = p.parse_args()
    extra, histo_tfms = {'gray': Gray, 'std': Std}[a.mode], bcc_nb.train.histo_tfms
    @functools.wraps(histo_tfms)   # its signature: bcc_nb passes a recipe only the settings a function names (`args_for`)
    def with_extra(*args, **kw):
        item_tfms, batch_tfms = histo_tfms(*args, **kw)
        return item_tfms, batch_tfms + [extra()]
    cfg = replace(TrainConfig(), size=128, epochs=12, pretrained=False, arch=a.arch, seed=a.seed)
    if args_for(cfg, with_extra) != args_for(cfg, histo_tfms):   # checked before anything is written
        raise SystemExit("The wrapper of histo_tfms does not take the recipe's view and augmentation settings; nothing was written.")
    out = claim(a.out, 'colour_free.json', dict(mode=a.mode, arch=a.arch, seed=a.seed), 'bench/colour_free_cv.py')
    # train_classifier builds its loaders with bcc_nb.train's; a fold trained but not yet scored is reloaded with bcc_nb.runs's
    bcc_nb.train.histo_tfms = bcc_nb.runs.histo_tfms = with_extra
    cv = cross_validate(a.data, cfg, out=out, folds=a.folds)
    print(cv_line(cv, out))


if __name__ == '__main__':
    main()
