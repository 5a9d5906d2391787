"""Does test-time augmentation help on unseen patients? Re-score a cross-validation's folds with and without it.

Each fold's model (`bcc-quality` / `bcc-cv` run folders) scores the images it never saw, once as `bcc-predict`
does and once averaged over the 8 dihedral views (`bcc-predict --tta`); the pooled out-of-fold ROC-AUC and the
per-fold AUCs of both are printed. The plain pass must reproduce the fold's own predictions.csv (checked).

    python bench/tta_cv.py bench/quality/default
    python bench/tta_cv.py bench/quality/default --grid dense --out /tmp/dense_grid

`--grid dense` compares a finer scoring grid instead of TTA: patches every half patch (a 5x3 grid on breakhis-dev's
fields instead of the 3x2 that just covers them), averaged as `bcc-predict` averages the covering grid. `--out` writes
the variant's out-of-fold `predictions.csv` (portable columns), which `bench/paired_auc.py` pairs with the folder's own.
"""
import argparse, json
from pathlib import Path

import numpy as np, pandas as pd, torch
from sklearn.metrics import roc_auc_score

import bcc_nb.predict
from bcc_nb.augment import patch_grid
from bcc_nb.predict import load_classifier


def dense_grid(im, size:int)->list:
    "A patch every half patch: a finer grid than the covering one `bcc-predict` scores."
    return patch_grid(im, size, step=size // 2)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('cv', help='a cross-validation folder with fold0, fold1, ... run folders')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--grid', choices=['tta', 'dense'], default='tta', help='the variant: 8-view TTA, or a patch every half patch')
    p.add_argument('--out', help="a new folder for the variant's out-of-fold predictions.csv")
    a = p.parse_args()
    if a.out and ((Path(a.out)/'predictions.csv').exists() or list(Path(a.out).glob('fold[0-9]*'))):   # never over a run's or another variant's
        raise SystemExit(f"{a.out} holds a predictions.csv or fold folders already: choose a new --out.")
    torch.set_num_threads(a.threads)
    folds = sorted(Path(a.cv).glob('fold[0-9]*'), key=lambda f: int(f.name[4:]))
    if not folds: raise SystemExit(f"{a.cv}: no fold0, fold1, ... folders. Run bcc-quality or bcc-cv first.")
    res, rows = {}, []
    for i, f in enumerate(folds):
        held = pd.read_csv(f/'predictions.csv').query("split == 'valid'")
        clf = load_classifier(f, device='cpu')
        for tta in (False, True):
            bcc_nb.predict.patch_grid = dense_grid if tta and a.grid == 'dense' else patch_grid
            d = clf.predict(list(held.path), tta=tta and a.grid == 'tta', bs=64)
            if not tta: assert np.allclose(d.prob_malignant, held.prob_malignant, atol=1e-4), f"{f}: the plain pass does not reproduce predictions.csv"
            rows.append(pd.DataFrame(dict(fold=i, tta=tta, y=(held.label == 'malignant').values.astype(int), prob=d.prob_malignant.values,
                                          **{k: held[k].values for k in ('path', 'label', 'subtype', 'case', 'magnification')})))
    bcc_nb.predict.patch_grid = patch_grid
    df = pd.concat(rows)
    if a.out:
        v = df[df.tta]
        Path(a.out).mkdir(parents=True, exist_ok=True)
        v.assign(path=v.path.str.replace(r'^.*?(BreaKHis_v1/)', r'\1', regex=True), true=v.label, pred=np.where(v.prob >= .5, 'malignant', 'benign'),
                 prob_benign=1 - v.prob, prob_malignant=v.prob)[['path', 'label', 'subtype', 'case', 'magnification', 'fold', 'true', 'pred',
                 'prob_benign', 'prob_malignant']].to_csv(Path(a.out)/'predictions.csv', index=False)
    for tta, d in df.groupby('tta'):
        res[a.grid if tta else 'plain'] = dict(pooled_roc_auc=round(roc_auc_score(d.y, d.prob), 3),
                                             accuracy=round(float(((d.prob >= .5) == d.y).mean()), 3),
                                             fold_roc_auc=[round(roc_auc_score(g.y, g.prob), 3) for _, g in d.groupby('fold')])
    print(json.dumps(dict(cv=str(a.cv), **res)))


if __name__ == '__main__': main()
