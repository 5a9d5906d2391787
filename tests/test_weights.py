"Loading backbone weights offline: the torch hub cache, local files, and a clear error without a network."
import urllib.error
import pytest, torch, torchvision
from safetensors.torch import save_file
from bcc_nb.model import load_backbone, hub_checkpoint, create_classifier

@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch_home'))
    return tmp_path/'torch_home'

@pytest.fixture
def offline(monkeypatch):
    "No network, whatever the machine: torch.hub's downloads fail at once, as they do here."
    def refuse(*a, **k): raise urllib.error.URLError('network is unreachable (test)')
    monkeypatch.setattr(torch.hub, 'urlopen', refuse)

def _same(a, b, skip=('classifier.',)):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith(skip) and 'num_batches_tracked' not in k)

def test_pretrained_true_offline_fails_fast_with_advice(torch_home, offline):
    with pytest.raises(RuntimeError) as e: load_backbone('densenet201', pretrained=True)
    msg = str(e.value)
    assert str(hub_checkpoint('densenet201')) in msg and 'pretrained=False' in msg and 'weights=PATH' in msg

def test_auto_without_cache_is_random_init_with_notice(torch_home, offline, capsys):
    m = load_backbone('densenet201', pretrained='auto')
    assert isinstance(m, torchvision.models.DenseNet)
    out = capsys.readouterr().out
    assert 'random weights' in out and 'densenet201-c1103571.pth' in out

def test_cached_hub_weights_are_used(torch_home, offline):
    "A checkpoint in the hub cache, in torchvision's old DenseNet key format, is found and loaded exactly."
    src = torchvision.models.densenet201()
    # the published file predates `num_batches_tracked` and names layers `norm.1`, `conv.1`, ...
    old_keys = {k.replace('norm1.', 'norm.1.').replace('conv1.', 'conv.1.').replace('norm2.', 'norm.2.').replace('conv2.', 'conv.2.')
                if 'denselayer' in k else k: v for k, v in src.state_dict().items() if 'num_batches_tracked' not in k}
    assert any('norm.1.' in k for k in old_keys)
    ckpt = hub_checkpoint('densenet201')
    ckpt.parent.mkdir(parents=True)
    torch.save(old_keys, ckpt)
    for pretrained in ('auto', True):
        assert _same(src, load_backbone('densenet201', pretrained=pretrained, verbose=False))

@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_local_weights_file(tmp_path, suffix):
    src = torchvision.models.densenet121()
    f = tmp_path/f'w{suffix}'
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    torch.save(sd, f) if suffix == '.pth' else save_file(sd, str(f))
    m = load_backbone('densenet121', weights=f, verbose=False)
    assert _same(src, m)
    model = create_classifier('densenet121', weights=f, verbose=False)
    assert torch.equal(model[0][0].conv0.weight, src.features.conv0.weight)

def test_weights_file_of_another_arch_is_refused(tmp_path):
    f = tmp_path/'r.pth'
    torch.save(torchvision.models.resnet18().state_dict(), f)
    with pytest.raises(ValueError, match='does not fit densenet121'): load_backbone('densenet121', weights=f)

def test_pickled_model_is_refused(tmp_path):
    f = tmp_path/'whole_model.pth'
    torch.save(torchvision.models.resnet18(), f)  # a pickle of the module, not a state dict
    with pytest.raises(ValueError, match='not a plain state dict'): load_backbone('resnet18', weights=f)

def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='Weights file not found'): load_backbone('resnet18', weights=tmp_path/'x.pth')

def test_timm_backbone_weights_file_and_auto(tmp_path, monkeypatch, capsys):
    timm = pytest.importorskip('timm')
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path/'hf'))  # an empty cache
    src = timm.create_model('resnet10t', num_classes=0, global_pool='')
    f = tmp_path/'r10t.safetensors'
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(f))
    model = create_classifier('resnet10t', weights=f, verbose=False)
    assert all(torch.equal(v, model[0][0].state_dict()[k]) for k, v in src.state_dict().items())
    assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 2)
    load_backbone('resnet10t', pretrained='auto')
    assert 'starting from random weights' in capsys.readouterr().out
