"""A floor for the quality benchmark: how far do colour statistics (or simple tissue measurements) get on unseen patients?

Each image becomes 12 numbers (mean and standard deviation of its R, G, B and H, S, V channels); a
logistic regression is cross-validated on the same patient-grouped folds as `bcc-quality`
(`patient_kfold`, seed 42). If a deep model scores below this on unseen patients, it has learned the
training patients rather than the tissue.

`--features tissue` adds hand-made measurements of the tissue to the 12 (`tissue_features`): how much haematoxylin
and eosin each field holds (colour deconvolution onto the standard H&E stain vectors), its nuclei (connected regions
of strong haematoxylin: how many per area, how large) and its texture (local binary patterns, band energies at four
scales). Use it with `--stain-normalize macenko`, so that the stain vectors are the ones the image was mapped onto. It
asks whether a CNN trained from scratch carries over more than such measurements.

    python bench/colour_baseline.py ../shared/data/breakhis-dev --folds 5
    python bench/colour_baseline.py ../shared/data/breakhis-dev --stain-normalize macenko --out /tmp/colour_floor
    python bench/colour_baseline.py ../shared/data/breakhis-dev --stain-normalize macenko --features tissue --out /tmp/tissue_floor

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
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bcc_nb.augment import MACENKO_REFERENCE, StainNormalize, resize_short
from bcc_nb.data import breakhis_manifest, patient_kfold


def colour_stats(im:Image.Image) -> np.ndarray:
    "Mean and standard deviation of each RGB and HSV channel of `im`, in [0, 1]."
    x = np.concatenate([np.asarray(im), np.asarray(im.convert('HSV'))], axis=-1).reshape(-1, 6) / 255.
    return np.concatenate([x.mean(0), x.std(0)])


def colour_features(path, stain=None) -> np.ndarray:
    "The 12 colour statistics of an image file (of the stain-normalised image, with `stain`)."
    im = Image.open(path).convert('RGB')
    return colour_stats(im if stain is None else stain(PILImage.create(im)))


def stain_amounts(rgb:np.ndarray, Io=240) -> np.ndarray:
    "Haematoxylin and eosin per pixel (H x W x 2): optical density deconvolved onto the standard H&E vectors Macenko maps onto."
    od = -np.log((rgb.reshape(-1, 3).astype(float) + 1) / Io)
    c = np.linalg.lstsq(np.array(MACENKO_REFERENCE['HERef']), od.T, rcond=None)[0].T
    return np.clip(c, 0, None).reshape(*rgb.shape[:2], 2)


def lbp_histogram(g:np.ndarray, r:int=1) -> np.ndarray:
    "Share of each rotation-invariant uniform local binary pattern (8 neighbours at distance `r`; 10 bins)."
    c = g[r:-r, r:-r]
    offs = [(-r, -r), (-r, 0), (-r, r), (0, r), (r, r), (r, 0), (r, -r), (0, -r)]
    bits = np.stack([g[r+dy:g.shape[0]-r+dy, r+dx:g.shape[1]-r+dx] >= c for dy, dx in offs])
    ones, turns = bits.sum(0), (bits != np.roll(bits, 1, axis=0)).sum(0)
    code = np.where(turns <= 2, ones, 9)
    return np.bincount(code.ravel(), minlength=10) / code.size


def tissue_features(rgb:np.ndarray) -> np.ndarray:
    "Stain amounts, nuclei and texture of an RGB field (uint8, H x W x 3), scaled so that its shorter side is 230 px."
    he = stain_amounts(rgb); h, e = he[..., 0], he[..., 1]
    q = lambda a: np.percentile(a, [10, 50, 90])
    amounts = [h.mean(), h.std(), *q(h), e.mean(), e.std(), *q(e), *[(h > t).mean() for t in (0.5, 1.0, 1.5)], (he.sum(-1) > 0.3).mean()]
    lab, n = ndimage.label(ndimage.binary_opening(h > 1.0, np.ones((3, 3))))
    areas = np.bincount(lab.ravel())[1:]; areas = areas[areas >= 5] if n else np.zeros(0)
    if not len(areas): areas = np.zeros(1)
    nuclei = [len(areas) / h.size * 1e4, areas.mean(), areas.std(), *np.percentile(areas, [50, 90]), areas[areas > 200].sum() / max(areas.sum(), 1)]
    g = rgb.astype(float) @ [0.299, 0.587, 0.114]
    bands = []
    for a in (g / 255, h):
        blur = [a] + [ndimage.gaussian_filter(a, s) for s in (1, 2, 4, 8)]
        bands += [np.abs(blur[i] - blur[i + 1]).mean() for i in range(4)]
    return np.concatenate([amounts, nuclei, lbp_histogram(g, 1), lbp_histogram(g, 2), bands])


def image_features(path, stain=None, kind='colour') -> np.ndarray:
    "The floor's numbers for one image: its colour statistics, and with `kind='tissue'` its stain amounts, nuclei and texture as well."
    if kind == 'colour': return colour_features(path, stain)
    im = resize_short(Image.open(path).convert('RGB'), 230)   # the field at the scale the defaults see it (1.8 patches of 128 px)
    if stain is not None: im = stain(PILImage.create(im))
    return np.concatenate([colour_stats(im), tissue_features(np.asarray(im))])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data'); p.add_argument('--folds', type=int, default=5); p.add_argument('--seed', type=int, default=42)
    p.add_argument('--stain-normalize', choices=['none', 'macenko'], default='none', help='statistics of the image as is, or mapped onto the standard H&E stain')
    p.add_argument('--features', choices=['colour', 'tissue'], default='colour', help='colour statistics only, or stain amounts, nuclei and texture as well')
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
    X = np.stack([image_features(f, stain, a.features) for f in df.path])
    y = (df.label == 'malignant').values.astype(int)
    oof, fold, fold_auc = np.zeros(len(df)), np.zeros(len(df), dtype=int), []
    for i, (tr, va) in enumerate(patient_kfold(df, a.folds, a.seed)):
        m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X[tr], y[tr])
        oof[va], fold[va] = m.predict_proba(X[va])[:, 1], i
        fold_auc.append(round(roc_auc_score(y[va], oof[va]), 3))
    res = dict(images=len(df), patients=int(df.case.nunique()), folds=a.folds,
               pooled_roc_auc=round(roc_auc_score(y, oof), 3), accuracy=round(float(((oof >= 0.5) == y).mean()), 3),
               fold_roc_auc=fold_auc, stain_normalize=a.stain_normalize, features=a.features, seed=a.seed)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        root = Path(a.data).resolve()
        df.assign(path=[str(Path(f).resolve().relative_to(root)) for f in df.path], fold=fold, true=df.label,
                  pred=np.where(oof >= 0.5, 'malignant', 'benign'), prob_benign=1 - oof, prob_malignant=oof
                  )[['path', 'label', 'subtype', 'case', 'magnification', 'fold', 'true', 'pred', 'prob_benign', 'prob_malignant']
                  ].to_csv(Path(a.out)/'predictions.csv', index=False)
    print(json.dumps(res))


if __name__ == '__main__': main()
