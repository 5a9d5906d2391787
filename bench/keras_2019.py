"""The 2019 Keras notebook itself, run on the quality benchmark's patient-grouped folds: how well does the reference score patients it never saw?

    pip install keras   # Keras 3; it runs on the installed PyTorch (KERAS_BACKEND=torch), no TensorFlow needed
    python bench/keras_2019.py ../shared/data/breakhis-dev --out bench/quality/keras_2019 --folds 5

`reference_2019` in `bcc_nb.quality` is that recipe rebuilt with fastai; this is the recipe as the notebook wrote it, so
that the two can be compared on the same folds: Keras DenseNet201 (random weights, Keras's initialisation and batch-norm
momentum), each image read whole and squeezed to a square with `cv2.resize`, raw 0-255 pixels,
`ImageDataGenerator(zoom_range=2, rotation_range=90, horizontal_flip=True, vertical_flip=True)`, GAP -> Dropout 0.5 ->
BatchNorm -> Dense(2, softmax), binary cross-entropy, Adam 1e-4, batch 16, `ReduceLROnPlateau(val_accuracy, patience 5,
factor 0.2)`, and the epoch with the best validation accuracy on a random 20% of the *training* images (the
notebook's image split, inside the training patients: it never sees the scored patients). Each fold's scored patients
get the kept model's probabilities with and without the notebook's TTA (10 passes through the training augmentation).
Writes `predictions.csv` (`path`, `case`, `magnification`, `fold`, `true`, `prob_malignant`, `prob_malignant_tta`) in
the format `bench/paired_auc.py` reads, and `metrics.json`; a finished fold (`fold<k>.csv`) is reused.
"""
import argparse, json, os, sys, time
from pathlib import Path

os.environ.setdefault('KERAS_BACKEND', 'torch')
import numpy as np, pandas as pd
from PIL import Image
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from bcc_nb.data import breakhis_manifest, patient_kfold


def load(paths, size:int)->np.ndarray:
    "The notebook's loader: RGB, `cv2.resize` to size x size (the whole field squeezed), uint8."
    import cv2
    return np.stack([cv2.resize(np.asarray(Image.open(p).convert('RGB')), (size, size)) for p in paths])


def build_model(size:int, lr:float=1e-4):
    "The notebook's `build_model`: DenseNet201 body, GAP, Dropout 0.5, BatchNorm, Dense(2, softmax); Adam, binary cross-entropy."
    import keras
    from keras import layers
    m = keras.Sequential([keras.Input((size, size, 3)),
                          keras.applications.DenseNet201(weights=None, include_top=False, input_shape=(size, size, 3)),
                          layers.GlobalAveragePooling2D(), layers.Dropout(0.5), layers.BatchNormalization(),
                          layers.Dense(2, activation='softmax')])
    m.compile(loss='binary_crossentropy', optimizer=keras.optimizers.Adam(learning_rate=lr), metrics=['accuracy'])
    return m


def run_fold(X, y, tr, va, out:Path, k:int, epochs:int, bs:int, seed:int)->pd.DataFrame:
    "Train on `tr` as the notebook does and return the probabilities of malignancy for `va`."
    import keras
    from keras.src.legacy.preprocessing.image import ImageDataGenerator
    keras.utils.set_random_seed(seed + k)
    Y = keras.utils.to_categorical(y, 2)
    x_tr, x_val, y_tr, y_val = train_test_split(X[tr], Y[tr], test_size=0.2, random_state=11)
    gen = ImageDataGenerator(zoom_range=2, rotation_range=90, horizontal_flip=True, vertical_flip=True)
    model, ckpt = build_model(X.shape[1]), out/f'fold{k}.weights.h5'
    cbs = [keras.callbacks.ReduceLROnPlateau(monitor='val_accuracy', patience=5, verbose=1, factor=0.2, min_lr=1e-7),
           keras.callbacks.ModelCheckpoint(str(ckpt), monitor='val_accuracy', verbose=1, save_best_only=True,
                                           save_weights_only=True, mode='max')]
    h = model.fit(gen.flow(x_tr.astype('float32'), y_tr, batch_size=bs), steps_per_epoch=int(np.ceil(len(x_tr)/bs)),
                  epochs=epochs, validation_data=(x_val.astype('float32'), y_val), callbacks=cbs, verbose=2)
    model.load_weights(str(ckpt))
    xv = X[va].astype('float32')
    p = model.predict(xv, batch_size=bs, verbose=0)[:, 1]
    tta = np.mean([model.predict(gen.flow(xv, batch_size=bs, shuffle=False), verbose=0)[:, 1] for _ in range(10)], 0)
    json.dump({k2: [float(v) for v in vs] for k2, vs in h.history.items()}, open(out/f'fold{k}_history.json', 'w'))
    ckpt.unlink()
    return pd.DataFrame(dict(fold=k, prob_malignant=p, prob_malignant_tta=tta), index=va)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data'); p.add_argument('--out', default='bench/quality/keras_2019')
    p.add_argument('--folds', type=int, default=5); p.add_argument('--seed', type=int, default=42)
    p.add_argument('--size', type=int, default=128); p.add_argument('--epochs', type=int, default=12)
    p.add_argument('--bs', type=int, default=16); p.add_argument('--only', type=int, nargs='*', help='folds to run (default: all)')
    a = p.parse_args()
    out = Path(a.out)
    if (out/'run.json').exists() or ((out/'metrics.json').exists() and json.loads((out/'metrics.json').read_text()).get('recipe') != 'keras_2019'):
        sys.exit(f"{out} holds another run's results, which this script would overwrite: choose a new --out.")
    out.mkdir(parents=True, exist_ok=True)
    df = breakhis_manifest(a.data).reset_index(drop=True)
    X, y = load(df.path, a.size), (df.label == 'malignant').values.astype(int)
    parts = []
    for k, (tr, va) in enumerate(patient_kfold(df, a.folds, a.seed)):
        f = out/f'fold{k}.csv'
        if not f.exists():
            if a.only is not None and k not in a.only: continue
            t = time.time()
            run_fold(X, y, tr, va, out, k, a.epochs, a.bs, a.seed).to_csv(f.with_suffix('.tmp'))
            f.with_suffix('.tmp').replace(f)
            print(f'fold {k}: {time.time()-t:.0f} s', flush=True)
        parts.append(pd.read_csv(f, index_col=0))
    if len(parts) < a.folds: return
    r = pd.concat(parts).sort_index()
    pred = df[['path', 'case', 'magnification']].assign(true=df.label, **r[['fold', 'prob_malignant', 'prob_malignant_tta']])
    pred.to_csv(out/'predictions.csv', index=False)
    res = dict(recipe='keras_2019', images=len(df), patients=int(df.case.nunique()), folds=a.folds, size=a.size, epochs=a.epochs,
               **{f'pooled_roc_auc{s}': round(roc_auc_score(y, pred[f'prob_malignant{s}']), 3) for s in ('', '_tta')},
               **{f'fold_roc_auc{s}': [round(roc_auc_score(y[g.index], g[f'prob_malignant{s}']), 3) for _, g in pred.groupby('fold')]
                  for s in ('', '_tta')},
               accuracy=round(float(((pred.prob_malignant >= 0.5) == y).mean()), 3))
    json.dump(res, open(out/'metrics.json', 'w'), indent=1)
    print(json.dumps(res))


if __name__ == '__main__': main()
