"""Is the number of training patients the limit? Cross-validate a recipe with each fold trained on a share of its patients.

The folds and the scored patients are the quality benchmark's (5 patient-grouped folds, 128 px, 12 epochs, from
scratch, today's defaults); only training changes: each fold keeps, per class, `round(frac * n)` of its n training
patients (at least one), drawn at random (seeded by `--draw` and the fold), and leaves the others' images out.
Paired against the same recipe on every training patient, the difference is what the left-out patients were worth.

    python bench/patients_cv.py ../shared/data/breakhis-dev --frac 0.5 --out bench/quality/patients_0.5
    python bench/paired_auc.py bench/quality/patients_0.5 bench/quality/default_rerun

The folder is a `bcc-cv` one (fold runs, pooled predictions.csv, patients.csv, report.html). Each fold's kept training
patients are listed in `kept_patients.json`. The share is in no fold's config.json: these models are for this
measurement only.
"""
import argparse, functools, json
import numpy as np, pandas as pd

import bcc_nb.datasets
from bcc_nb.config import TrainConfig, replace
from bcc_nb.crossval import cross_validate
from bcc_nb.runs import RunFolder
from bench_folder import claim, cv_line   # beside this script


def keep_patients(df:pd.DataFrame, label:str, frac:float, rng)->pd.DataFrame:
    "`df` (split) with the training images of all but `round(frac * n)` training patients per class (at least 1) left out."
    train = df[df.split == 'train'].groupby(label).case.unique()
    kept = {c for cases in train for c in rng.choice(sorted(cases), max(1, round(frac*len(cases))), replace=False)}
    return df[(df.split != 'train') | df.case.isin(kept)].reset_index(drop=True)


def with_share(split_images, frac:float, draw:int):
    "`split_images` that then keeps a share of the training patients (the same ones whenever a fold is split again)."
    @functools.wraps(split_images)
    def split(df, label='label', valid_pct=0.25, seed=42, folds=None, fold=0, where='the data'):
        return keep_patients(split_images(df, label, valid_pct, seed, folds, fold, where), label, frac, np.random.default_rng([draw, fold]))
    return split


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data', help='data with patient ids, e.g. ../shared/data/breakhis-dev')
    p.add_argument('--frac', type=float, required=True, help="share of each fold's training patients to train on, per class")
    p.add_argument('--out', required=True, help='a new folder, or one this script made with the same settings (its finished folds are reused)')
    p.add_argument('--folds', type=int, default=5)
    p.add_argument('--seed', type=int, default=42, help='as bcc-cv --seed: the folds, initial weights and batches')
    p.add_argument('--draw', type=int, default=0, help='which random share of the patients')
    p.add_argument('--arch', default='densenet201')
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--epochs', type=int, default=12)
    p.add_argument('--bs', type=int, default=TrainConfig().bs)
    a = p.parse_args()
    if not 0 < a.frac <= 1: raise SystemExit(f"--frac must be in (0, 1], not {a.frac}.")
    cfg = replace(TrainConfig(), size=a.size, epochs=a.epochs, bs=a.bs, pretrained=False, arch=a.arch, seed=a.seed)
    split_images = bcc_nb.datasets.split_images
    df = bcc_nb.datasets.read_image_set(a.data, valid_pct=0).manifest.drop(columns='split')   # the images are read and checked once
    kept = {f'fold{i}': sorted(map(str, d[d.split == 'train'].case.unique()))   # as each fold trains (or trained) on them
            for i in range(a.folds) for d in [with_share(split_images, a.frac, a.draw)(df, seed=a.seed, folds=a.folds, fold=i)]}
    bcc_nb.datasets.split_images = with_share(split_images, a.frac, a.draw)   # read_image_set's, as each fold is trained
    out = claim(a.out, 'patients_cv.json', dict(frac=a.frac, draw=a.draw, seed=a.seed, arch=a.arch, size=a.size, epochs=a.epochs, bs=a.bs), 'bench/patients_cv.py')
    (out/'kept_patients.json').write_text(json.dumps(kept, indent=1)); RunFolder(out).note_written(out/'kept_patients.json')
    cv = cross_validate(a.data, cfg, out=out, folds=a.folds)
    print(f"{cv_line(cv, out)}, training patients {[len(v) for v in kept.values()]}")


if __name__ == '__main__':
    main()
