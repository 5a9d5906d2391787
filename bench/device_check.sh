#!/bin/bash
# What was run on a lent NVIDIA H200 (bench/README.md, "On a GPU"), through the device tool.
#   here, first:        bash bench/device_check.sh prepare   (wheels into .whl/, breakhis-dev into .devdata/; both ignored)
#   there (carry .whl and .devdata):  bash bench/device_check.sh smoke|full    (FOLDS="default:0,1,2,3,4 ..." FOLD_S=150 to add folds)
# .whl/: fastai and its pure-Python dependencies, torchstain, grad-cam, ttach and a wheel of bcc_nb, for Python 3.12.
# .devdata/: breakhis-dev with its PNGs stored as lossless WebP, to fit the transfer limit; unpacked there to the same pixels.
part=${1:-full}; FOLDS=${FOLDS:-}; FOLD_S=${FOLD_S:-150}
if [ "$part" = prepare ]; then
  mkdir -p .whl && rm -f .whl/bcc_nb-*.whl
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl fastai==2.8.12 fastcore==2.2.41 \
    fastdownload==0.0.8 fastprogress==1.1.6 fasttransform==0.0.5 plum-dispatch==2.9.0 beartype==0.23.1 python-fasthtml==0.14.14 \
    starlette==1.10.0 itsdangerous==2.2.0 python-multipart==0.0.34 oauthlib==4.0.1 beautifulsoup4==4.15.0 soupsieve==4.1.4 \
    uvicorn==0.55.0 httptools==0.9.0 watchfiles==1.3.0 websockets==17.4 python-dotenv==1.2.2 httpx2==2.16.2 httpcore2==2.16.2 \
    torchstain==1.4.1 ttach==0.0.3 || exit 1
  pip wheel -q --no-deps grad-cam==1.5.7 . -w .whl || exit 1   # grad-cam publishes no wheel
  python3 - <<'PY'
from pathlib import Path; from PIL import Image; import shutil
src, dst = Path('../shared/data/breakhis-dev'), Path('.devdata/breakhis-dev')
for f in src.rglob('*'):
    if f.is_dir(): continue
    t = dst/f.relative_to(src); t.parent.mkdir(parents=True, exist_ok=True)
    if f.suffix == '.png': Image.open(f).save(t.with_suffix('.webp'), 'WEBP', lossless=True, quality=100, method=4)
    else: shutil.copy(f, t)
PY
  du -sh .whl .devdata; exit
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 BCC_NB_CACHE=/tmp/bcc_cache
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
python3 -c "import torch, torchvision, fastai, bcc_nb; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'fastai', fastai.__version__, 'bcc_nb', bcc_nb.__version__, torch.cuda.get_device_name())" || exit 1
[ -d /tmp/data/breakhis-dev ] || python3 - <<'PY'
# breakhis-dev back to PNG, each image checked to hold exactly the pixels of its WebP (lossless both ways)
from pathlib import Path; from PIL import Image; import numpy as np, shutil
from concurrent.futures import ProcessPoolExecutor
src, dst = Path('.devdata/breakhis-dev'), Path('/tmp/data/breakhis-dev')
def one(f):
    t = dst/f.relative_to(src)
    t.parent.mkdir(parents=True, exist_ok=True)
    if f.suffix != '.webp': shutil.copy(f, t); return 0
    im = Image.open(f).convert('RGB'); im.save(t.with_suffix('.png'))
    assert (np.asarray(Image.open(t.with_suffix('.png'))) == np.asarray(im)).all(), f
    return 1
with ProcessPoolExecutor(16) as ex: print('unpacked', sum(ex.map(one, [f for f in src.rglob('*') if f.is_file()], chunksize=8)), 'PNGs')
PY
if [ "$part" = smoke ]; then   # every section of the benchmark once, tiny, to catch what only CUDA runs
  timeout 120 bcc-bench --device cuda --sizes 64 --bs 8 --steps 1 --rounds 1 --n-images 16 --workers 0,2 --out /tmp/smoke 2>&1 | tail -n 25
else
  timeout 250 bcc-bench --device cuda --sizes 224 --bs 64 --steps 10 --rounds 3 --workers 0,4,8 --n-images 128 --out $OUT/cuda 2>&1 | tail -n 80
  # end to end: bcc-train on breakhis-dev copied 8 times under other case numbers (2,624 images), 224 px, batch 64, 3 epochs
  python3 - <<'PY'
from pathlib import Path; import os, re
src, dst = Path('/tmp/data/breakhis-dev'), Path('/tmp/e2e')
for k in range(8):   # each copy of a patient gets another year in its case number: 14 -> 3k, 15 -> 5k
    for f in src.rglob('*.png'):
        t = dst/re.sub(r'([_-])1([45])-', lambda m: f"{m[1]}{'3' if m[2] == '4' else '5'}{k}-", str(f.relative_to(src)))
        t.parent.mkdir(parents=True, exist_ok=True)
        if not t.exists(): os.link(f, t)
print('e2e images', sum(1 for _ in dst.rglob('*.png')))
PY
  ( time timeout 120 bcc-train /tmp/e2e --size 224 --bs 64 --epochs 3 --pretrained false --num-workers 8 --out /tmp/e2e_run --overwrite ) 2>&1 | tail -n 20
  cp /tmp/e2e_run/history.csv $OUT/e2e_history.csv 2>/dev/null; grep -h '"n_train\|n_valid\|images' /tmp/e2e_run/config.json /tmp/e2e_run/run.json 2>/dev/null | head
fi
if [ -n "$FOLDS" ]; then   # quality folds, several processes on the GPU, until FOLD_S seconds have passed
  timeout -k 5 $FOLD_S python3 bench/gpu_folds.py /tmp/data/breakhis-dev /tmp/qg $FOLDS --procs 7 --workers 0 --threads 2 2>&1 | grep -v Warning
  pkill -f gpu_folds; sleep 1
  cd /tmp/qg && find . -name metrics.json | sed 's,/metrics.json,,' > /tmp/done.txt; cat /tmp/done.txt
  tar czf $OUT/folds_$part.tgz $(for d in $(cat /tmp/done.txt); do echo $d/predictions.csv $d/metrics.json $d/config.json $d/history.csv $d/model.json; done) */run.json 2>&1 | tail -2
fi
ls -la $OUT
