"""Train the folds of several `bcc-quality` recipes side by side on one GPU, several processes at once.

    python bench/gpu_folds.py DATA OUT RECIPE:FOLDS ... [--procs 7] [--workers 0] [--threads 2]

`RECIPE:FOLDS` is a recipe of `bcc_nb.quality` (RECIPES or ABLATIONS) and the folds to train (`default:0,1,2,3,4`); jobs start in
the order given. Each fold is the one `bcc-quality DATA --out OUT --recipes RECIPE` trains (same folds, same settings: 5 folds,
128 px, 12 epochs, from scratch, DenseNet201 unless --folds, --size, --epochs or --arch say otherwise), into OUT/RECIPE/foldI, so
`bcc-quality` run afterwards with the same options pools the finished folds without training them again. A fold at 128 px is
little work for an H100/H200, so one process leaves the GPU mostly idle; seven processes trained the 5 folds of the defaults in
83 s on an H200 (bench/README.md). `--workers 0`: fastai's loaders cannot start worker processes inside a spawned process that
has touched CUDA ("Cannot pickle CUDA storage": the loaders hold tensors on the GPU by then), and each process here is one.
"""
import sys, time, argparse
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor, as_completed
import multiprocessing as mp

def settings(name):
    from bcc_nb.quality import RECIPES, ABLATIONS
    return {**RECIPES, **ABLATIONS}[name]

def train_fold(data, out, name, i, folds, common, workers, threads):
    import torch
    torch.set_num_threads(threads)
    from bcc_nb.config import TrainConfig, replace
    from bcc_nb.crossval import run_fold
    t = time.time()
    cfg = replace(TrainConfig(), **{**common, **settings(name)}, num_workers=workers)
    m = run_fold(data, cfg, Path(out)/name/f'fold{i}', folds, i)
    return name, i, m.get('roc_auc'), time.time() - t

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data'); p.add_argument('out'); p.add_argument('jobs', nargs='+', help='RECIPE:FOLDS, e.g. default:0,1,2,3,4')
    p.add_argument('--folds', type=int, default=5); p.add_argument('--size', type=int, default=128)
    p.add_argument('--epochs', type=int, default=12); p.add_argument('--arch', default='densenet201')
    p.add_argument('--procs', type=int, default=7, help='processes at once')
    p.add_argument('--workers', type=int, default=0, help='loader worker processes of each')
    p.add_argument('--threads', type=int, default=2, help='torch threads of each')
    a = p.parse_args()
    from bcc_nb.runs import RunFolder
    common = dict(size=a.size, epochs=a.epochs, pretrained='false', arch=a.arch)   # as bcc-quality passes them
    try: jobs = [(n, int(i)) for j in a.jobs for n, fs in [j.split(':')] for i in fs.split(',')]
    except ValueError: sys.exit(f"gpu_folds: a job is RECIPE:FOLDS, e.g. default:0,1,2,3,4; got {a.jobs}")
    if bad := [i for _, i in jobs if not 0 <= i < a.folds]: sys.exit(f"gpu_folds: folds {bad} do not exist with --folds {a.folds}.")
    for n in dict.fromkeys(n for n, _ in jobs):
        try: settings(n)
        except KeyError: sys.exit(f"gpu_folds: unknown recipe {n!r}: choose one of bcc_nb.quality's RECIPES or ABLATIONS.")
        f = Path(a.out)/n
        if RunFolder(f).state() == 'foreign':
            sys.exit(f"gpu_folds: {f} holds files bcc_nb did not write: choose another OUT; nothing was changed.")
        if not f.exists(): f.mkdir(parents=True); RunFolder(f).note_written()
    t0 = time.time()
    with ProcessPoolExecutor(a.procs, mp_context=mp.get_context('spawn')) as ex:
        futs = [ex.submit(train_fold, a.data, a.out, n, i, a.folds, common, a.workers, a.threads) for n, i in jobs]
        for f in as_completed(futs):
            n, i, auc, s = f.result()
            print(f'{time.time() - t0:6.0f}s  {n} fold {i}: ROC-AUC {auc:.3f} ({s:.0f} s)', flush=True)
