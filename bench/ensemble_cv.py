"""Does averaging several recipes help on unseen patients? An ensemble of cross-validations' out-of-fold predictions.

Each image's P(malignant) is averaged over the recipes, all scored by models that never saw its patient; the
recipes must have grouped the patients into the same folds (the same seed; checked), so the ensemble is itself
a fair out-of-fold score. With `--other-folds` the runs may group them differently (replicates with other seeds):
every probability averaged for an image still comes from a model that never saw its patient, so the ensemble is
still an unseen-patient score; its per-fold AUCs are then over the first run's folds. Prints each recipe's and the ensemble's pooled and per-fold image ROC-AUC, and with
`--out` writes the ensemble's `predictions.csv`, which `bench/paired_auc.py` compares with any single recipe.

    python bench/ensemble_cv.py bench/quality/default bench/quality/resnet18_macenko bench/quality/resnet18_macenko_image
    python bench/ensemble_cv.py bench/quality/{default_rerun,macenko_seed_1_rerun,default_seed_2} --other-folds --out /tmp/ensemble_seeds
"""
import argparse
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score


def out_of_fold(cv:Path)->pd.DataFrame:
    "A cross-validation's pooled predictions, one row per image (indexed by file name), with the fold that scored it."
    if not (cv/'predictions.csv').exists(): raise SystemExit(f"{cv}: no predictions.csv. Run bcc-quality or bcc-cv first.")
    d = pd.read_csv(cv/'predictions.csv', dtype={'case': str})
    if 'fold' not in d:   # a cross-validation's own folder: the fold of each image from its fold runs
        folds = sorted(cv.glob('fold[0-9]*'), key=lambda f: int(f.name[4:]))
        if not folds: raise SystemExit(f"{cv}: its predictions.csv has no fold column and there are no fold0, fold1, ... folders.")
        fold = pd.concat(pd.read_csv(f/'predictions.csv').query("split == 'valid'").assign(fold=int(f.name[4:])) for f in folds)
        d['fold'] = d.md5.map(fold.set_index('md5').fold)
    return d.set_index(d.path.map(lambda p: Path(p).name))


def scores(d:pd.DataFrame, p:pd.Series)->str:
    y = d.true == 'malignant'
    folds = ' '.join(f"{roc_auc_score(y[d.fold == i], p[d.fold == i]):.3f}" for i in sorted(d.fold.unique()))
    return f"pooled {roc_auc_score(y, p):.3f}  accuracy {((p >= .5) == y).mean():.3f}  folds {folds}"


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('cvs', nargs='+', help='cross-validation folders (bcc-quality/bcc-cv outputs) on the same data and folds')
    a.add_argument('--out', help='write the ensemble predictions.csv into this folder')
    a.add_argument('--overwrite', action='store_true', help="replace the predictions.csv of an earlier ensemble in --out (never a run's)")
    a.add_argument('--other-folds', action='store_true', help='allow runs that grouped the patients into other folds (other seeds)')
    args = a.parse_args()
    if args.out:   # never over a cross-validation's own predictions, nor over any file without being asked
        out = Path(args.out)
        if any((out/f).exists() for f in ('run.json', 'config.json')) or list(out.glob('fold[0-9]*')) or any(out.resolve() == Path(c).resolve() for c in args.cvs):
            raise SystemExit(f"{out} is a bcc_nb run or cross-validation folder: its predictions.csv is that run's. Choose a new --out.")
        if (out/'predictions.csv').exists() and not args.overwrite:
            raise SystemExit(f"{out/'predictions.csv'} exists: choose a new --out, or pass --overwrite to replace it.")
    runs = {str(c): out_of_fold(Path(c)) for c in args.cvs}
    first, d = next(iter(runs.items()))
    for c, r in runs.items():
        if set(r.index) != set(d.index): raise SystemExit(f"{c} scored other images than {first}: an ensemble needs the same data.")
        if not args.other_folds and not (r.fold.loc[d.index] == d.fold).all(): raise SystemExit(f"{c} grouped the patients into other folds than {first} (another seed?): pass --other-folds to average them anyway.")
    p = pd.concat({c: r.prob_malignant.loc[d.index] for c, r in runs.items()}, axis=1)
    w = max(map(len, runs))
    for c in runs: print(f"{c:{w}s}  {scores(d, p[c])}")
    ens = p.mean(axis=1)
    print(f"{'mean of the ' + str(len(runs)):{w}s}  {scores(d, ens)}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        d.assign(prob_malignant=ens, prob_benign=1 - ens, pred=(ens >= .5).map({True: 'malignant', False: 'benign'})).to_csv(Path(args.out)/'predictions.csv', index=False)


if __name__ == '__main__': main()
