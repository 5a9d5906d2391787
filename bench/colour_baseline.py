"""A floor for the quality benchmark: how far do colour statistics alone get on unseen patients?

Each image becomes 12 numbers (mean and standard deviation of its R, G, B and H, S, V channels); a
logistic regression is cross-validated on the same patient-grouped folds as `bcc-quality`
(`patient_kfold`, seed 42). If a deep model scores below this on unseen patients, it has learned the
training patients rather than the tissue.

    python bench/colour_baseline.py ../shared/data/breakhis-dev --folds 5
    python bench/colour_baseline.py ../shared/data/breakhis-dev --stain-normalize macenko --out /tmp/colour_floor

With `--stain-normalize macenko` the statistics are taken from each image mapped onto the standard H&E stain, as
the defaults see it (`bcc_nb.augment.StainNormalize`), so the floor measures what normalised colour alone carries:
after normalisation the colour of a field is mostly how much haematoxylin (nuclei) and eosin (stroma) it holds.
`--out` writes the out-of-fold `predictions.csv` that `bench/paired_auc.py` compares with a cross-validation.
"""
import argparse, json
from pathlib import Path

import numpy as np
from PIL import Image
from fastai.vision.core import PILImage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bcc_nb.augment import StainNormalize
from bcc_nb.data import breakhis_manifest, patient_kfold


def colour_features(path, stain=None) -> np.ndarray:
    "Mean and standard deviation of each RGB and HSV channel, in [0, 1] (of the stain-normalised image, with `stain`)."
    im = Image.open(path).convert('RGB')
    if stain is not None: im = stain(PILImage.create(im))
    x = np.concatenate([np.asarray(im), np.asarray(im.convert('HSV'))], axis=-1).reshape(-1, 6) / 255.
    return np.concatenate([x.mean(0), x.std(0)])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data'); p.add_argument('--folds', type=int, default=5); p.add_argument('--seed', type=int, default=42)
    p.add_argument('--stain-normalize', choices=['none', 'macenko'], default='none', help='statistics of the image as is, or mapped onto the standard H&E stain')
    p.add_argument('--out', help='a new folder to write the out-of-fold predictions.csv to')
    p.add_argument('--overwrite', action='store_true', help="replace the predictions.csv of an earlier floor in --out (never a run's)")
    a = p.parse_args()
    if a.out:   # checked before any work: never over a run's or cross-validation's predictions, nor over a file without being asked
        out = Path(a.out)
        if any((out/f).exists() for f in ('run.json', 'config.json')) or list(out.glob('fold[0-9]*')):
            raise SystemExit(f"{out} is a bcc_nb run or cross-validation folder: its predictions.csv is that run's. Choose a new --out.")
        if (out/'predictions.csv').exists() and not a.overwrite:
            raise SystemExit(f"{out/'predictions.csv'} exists: choose a new --out, or pass --overwrite to replace it.")
    df = breakhis_manifest(a.data).reset_index(drop=True)
    stain = StainNormalize() if a.stain_normalize == 'macenko' else None
    X = np.stack([colour_features(f, stain) for f in df.path])
    y = (df.label == 'malignant').values.astype(int)
    oof, fold, fold_auc = np.zeros(len(df)), np.zeros(len(df), dtype=int), []
    for i, (tr, va) in enumerate(patient_kfold(df, a.folds, a.seed)):
        m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X[tr], y[tr])
        oof[va], fold[va] = m.predict_proba(X[va])[:, 1], i
        fold_auc.append(round(roc_auc_score(y[va], oof[va]), 3))
    res = dict(images=len(df), patients=int(df.case.nunique()), folds=a.folds,
               pooled_roc_auc=round(roc_auc_score(y, oof), 3), accuracy=round(float(((oof >= 0.5) == y).mean()), 3),
               fold_roc_auc=fold_auc, stain_normalize=a.stain_normalize, seed=a.seed)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        root = Path(a.data).resolve()
        df.assign(path=[str(Path(f).resolve().relative_to(root)) for f in df.path], fold=fold, true=df.label,
                  pred=np.where(oof >= 0.5, 'malignant', 'benign'), prob_benign=1 - oof, prob_malignant=oof
                  )[['path', 'label', 'subtype', 'case', 'magnification', 'fold', 'true', 'pred', 'prob_benign', 'prob_malignant']
                  ].to_csv(Path(a.out)/'predictions.csv', index=False)
    print(json.dumps(res))


if __name__ == '__main__': main()
