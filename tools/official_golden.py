"""Write golden fixtures from the official PyTorch AutoGAN code into tests/golden/.

Not part of the package and not run by CI: it needs PyTorch (CPU) and a
checkout of the official repository (TAMU-VITA/AutoGAN). Run it in a separate
environment, e.g.::

    python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch==2.13.0 numpy
    /work/torchvenv/bin/python tools/official_golden.py --official_repo=/work/official

It imports the official modules and runs their own training functions
(``functions.train``, ``functions.train_shared``, ``functions.train_controller``)
on small models (widths 4, 16 px images) with recorded noise, and saves
inputs, initial states and results as ``.npz`` files with PyTorch's tensor
names (see `autogan_tf.official.weights` for the mapping). ``tests/test_golden.py``
reads only these files. What the tool changes around the official code, none
of which changes a value:

* CUDA calls run on the CPU (``torch.cuda.FloatTensor`` -> ``torch.FloatTensor``,
  ``Tensor.cuda`` -> identity).
* Modules the training functions import but these fixtures never use (image
  saving, torchvision's grid, tqdm, the TensorFlow Inception code) are
  replaced by stubs; the Inception Score a controller step would compute is
  replaced by given rewards.
* The search cell adds in place to a ReLU output, which PyTorch >= 1.10
  rejects in the backward pass; the ReLU of the search blocks returns a copy
  of its output (same values).
* ``np.random.normal`` is wrapped to record the noise the functions draw.

Initial weights: Conv2d kernels Xavier-uniform, BatchNorm weights N(1, 0.02)
and biases 0 (the official ``--init_type xavier_uniform``); everything else
keeps PyTorch's defaults.
"""

from __future__ import annotations

import argparse
import json
import warnings
import logging
import os
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "tests", "golden")

WIDTH = 4  # gf_dim = df_dim
LATENT = 8
BOTTOM = 2  # 16 px images after three cells
D_BATCH = 2
G_BATCH = 3
N_CRITIC = 5
LR = 2e-4
BETAS = (0.0, 0.9)
EMA = 0.999
SEARCH_ARCHS = {  # one architecture per stage, covering every op kind
    0: [0, 1, 2, 1],
    1: [1, 2, 0, 1, 0, 1, 2, 1, 1],
    2: [0, 1, 1, 0, 1, 0, 2, 1, 1, 0, 1, 2, 1, 3],
}
CTRL_HIDDEN = 12
CTRL_STEPS = 3
CTRL_REWARDS = [2.0, 3.5, 1.25]
CTRL_ENTROPY = 0.05  # large enough for the entropy term's gradient to show
CTRL_LR = 3.5e-4
BASELINE_DECAY = 0.9


class _Writer:
    """Stands in for the tensorboardX writer; keeps every scalar."""

    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step=None):
        self.scalars.setdefault(tag, []).append(float(value))

    def add_image(self, *args, **kwargs):
        pass


class _History:
    """Stands in for the loss window of the search; keeps every pushed loss."""

    def __init__(self):
        self.values = []

    def push(self, x):
        self.values.append(float(x))

    def is_full(self):
        return False

    def get_var(self):
        return 0.0

    def clear(self):
        self.values = []


def _stub(name, **attrs):
    import importlib.machinery

    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def import_official(repo):
    """Import the official modules with the CPU and stub adjustments of the docstring."""
    import torch

    torch.cuda.FloatTensor = torch.FloatTensor
    torch.Tensor.cuda = lambda self, *args, **kwargs: self

    class _Tqdm:
        def __init__(self, iterable=None, *args, **kwargs):
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable)

        @staticmethod
        def write(*args, **kwargs):
            pass

    _stub("imageio", imsave=lambda *a, **k: None)
    _stub("torchvision")
    _stub("torchvision.utils", make_grid=lambda *a, **k: None)
    _stub("tqdm", tqdm=_Tqdm)
    _stub("dateutil")
    _stub("dateutil.tz", tzlocal=lambda: None)
    sys.path.insert(0, repo)
    import utils  # noqa: F401  (the official package, before its stubs)

    _stub("utils.fid_score", calculate_fid_given_paths=None)
    _stub("utils.inception_score", get_inception_score=None)
    import functions
    import models
    import models_search
    from models_search import building_blocks_search

    class _CopyReLU(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x).clone()

    class _NN:
        ReLU = _CopyReLU

        def __getattr__(self, name):
            return getattr(torch.nn, name)

    building_blocks_search.nn = _NN()
    return types.SimpleNamespace(functions=functions, models=models,
                                 models_search=models_search, torch=torch)


class _NoiseRecorder:
    """Wraps ``np.random.normal``: every draw is kept as float32 (what torch receives)."""

    def __init__(self):
        self.draws = []
        self._normal = np.random.normal

    def __enter__(self):
        def normal(*args, **kwargs):
            x = self._normal(*args, **kwargs)
            self.draws.append(np.asarray(x, np.float32))
            return x

        np.random.normal = normal
        return self

    def __exit__(self, *exc):
        np.random.normal = self._normal


def init_weights(torch, module):
    """Xavier-uniform Conv2d kernels, BatchNorm N(1, 0.02) / 0 (``--init_type xavier_uniform``)."""
    nn = torch.nn
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight.data, 1.0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight.data, 1.0, 0.02)
            nn.init.constant_(m.bias.data, 0.0)


def _args(**extra):
    base = dict(gf_dim=WIDTH, df_dim=WIDTH, latent_dim=LATENT, bottom_width=BOTTOM,
                d_spectral_norm=True, g_spectral_norm=False, n_critic=N_CRITIC,
                gen_batch_size=G_BATCH, dis_batch_size=D_BATCH, print_freq=10 ** 9,
                max_epoch=1, shared_epoch=1, dynamic_reset_threshold=1e-3,
                hid_size=CTRL_HIDDEN, ctrl_step=CTRL_STEPS, ctrl_sample_batch=1,
                entropy_coeff=CTRL_ENTROPY, baseline_decay=BASELINE_DECAY,
                rl_num_eval_img=1)
    base.update(extra)
    return argparse.Namespace(**base)


def _state(prefix, module):
    return {f"{prefix}/{k}": v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _params(prefix, module):
    return {f"{prefix}/{k}": p.detach().numpy().copy() for k, p in module.named_parameters()}


def _adam(prefix, module, optimizer):
    """First and second moments of every parameter that has Adam state."""
    out = {}
    for name, p in module.named_parameters():
        state = optimizer.state.get(p)
        if state:
            out[f"{prefix}/m/{name}"] = state["exp_avg"].numpy().copy()
            out[f"{prefix}/v/{name}"] = state["exp_avg_sq"].numpy().copy()
            out[f"{prefix}/step/{name}"] = np.asarray(float(state["step"]), np.float32)
    return out


def _reals(torch, rng, count, side):
    """``count`` batches of D_BATCH images in [-1, 1], NCHW torch tensors."""
    return [torch.from_numpy(rng.uniform(-1, 1, (D_BATCH, 3, side, side)).astype(np.float32))
            for _ in range(count)]


def _nhwc(batches):
    return np.stack([b.numpy().transpose(0, 2, 3, 1) for b in batches])


def derived_iteration(off, kind, seed):
    """One generator iteration of ``functions.train``: 5 D steps, the G step, the EMA."""
    torch = off.torch
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    if kind == "autogan_cifar10_a":
        args = _args()
        g = off.models.autogan_cifar10_a.Generator(args)
        d = off.models.autogan_cifar10_a.Discriminator(args)
        arch = [1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3]
        layout = "derived"
    else:  # train_derived.py: the search supernet fixed to one architecture
        arch = SEARCH_ARCHS[2]
        args = _args(arch=arch)
        g = off.models_search.shared_gan.Generator(args)
        d = off.models_search.shared_gan.Discriminator(args)
        g.set_arch(arch, cur_stage=2)
        d.cur_stage = 2
        layout = "search"
    init_weights(torch, g)
    init_weights(torch, d)
    g_opt = torch.optim.Adam(g.parameters(), LR, BETAS)
    d_opt = torch.optim.Adam(d.parameters(), LR, BETAS)
    out = {**_state("init/G", g), **_state("init/D", d)}
    avg = off.functions.copy_params(g)
    reals = _reals(torch, rng, N_CRITIC, BOTTOM * 8)
    loader = [(r, torch.zeros(D_BATCH)) for r in reals]
    writer = _Writer()
    # Global steps 1..5: D steps at each, the G step (and EMA) after the fifth,
    # i.e. one whole generator iteration in our order.
    writer_dict = {"writer": writer, "train_global_steps": 1}
    with _NoiseRecorder() as noise:
        off.functions.train(args, g, d, g_opt, d_opt, avg, loader, 0, writer_dict)
    assert len(noise.draws) == N_CRITIC + 1, len(noise.draws)
    out.update({**_state("final/G", g), **_state("final/D", d), **_adam("adam/G", g, g_opt),
                **_adam("adam/D", d, d_opt)})
    out.update({f"ema/{name}": a.numpy().copy()
                for (name, _), a in zip(g.named_parameters(), avg)})
    out.update(reals=_nhwc(reals), z_d=np.stack(noise.draws[:N_CRITIC]),
               z_g=noise.draws[N_CRITIC], d_losses=np.asarray(writer.scalars["d_loss"], np.float32),
               g_loss=np.asarray(writer.scalars["g_loss"], np.float32))
    meta = dict(kind=kind, arch=arch, layout=layout, gf_dim=WIDTH, df_dim=WIDTH,
                latent_dim=LATENT, bottom_width=BOTTOM, d_batch=D_BATCH, g_batch=G_BATCH,
                n_critic=N_CRITIC, lr=LR, betas=BETAS, ema_decay=EMA, seed=seed)
    return out, meta


class _FixedController:
    """Stands in for the controller of train_shared: the given architectures in turn."""

    def __init__(self, torch, archs, stage):
        self.archs = [torch.tensor([a]) for a in archs]
        self.calls = 0
        self.cur_stage = stage

    def sample(self, *args, **kwargs):
        arch = self.archs[self.calls % len(self.archs)]
        self.calls += 1
        return (arch,)

    def eval(self):
        return self


def supernet_iteration(off, stage, seed):
    """One step of ``functions.train_shared`` at ``stage``: a D step, then the G step.

    The official loop runs a G step after D steps 0, 5, 10...; with one batch
    this is D step 0 and its G step, both with the given architecture.
    """
    torch = off.torch
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    args = _args()
    g = off.models_search.shared_gan.Generator(args)
    d = off.models_search.shared_gan.Discriminator(args)
    init_weights(torch, g)
    init_weights(torch, d)
    g_opt = torch.optim.Adam(g.parameters(), LR, BETAS)
    d_opt = torch.optim.Adam(d.parameters(), LR, BETAS)
    out = {**_state("init/G", g), **_state("init/D", d)}
    reals = _reals(torch, rng, 1, BOTTOM * 2 ** (stage + 1))
    g_hist, d_hist = _History(), _History()
    arch = SEARCH_ARCHS[stage]
    with _NoiseRecorder() as noise:
        reset = off.functions.train_shared(args, g, d, g_hist, d_hist,
                                           _FixedController(torch, [arch], stage), g_opt, d_opt,
                                           [(reals[0], torch.zeros(D_BATCH))])
    assert not reset and len(noise.draws) == 2
    out.update({**_state("final/G", g), **_state("final/D", d), **_adam("adam/G", g, g_opt),
                **_adam("adam/D", d, d_opt)})
    out.update(reals=_nhwc(reals), z_d=noise.draws[0][None], z_g=noise.draws[1],
               d_losses=np.asarray(d_hist.values, np.float32),
               g_loss=np.asarray(g_hist.values, np.float32))
    meta = dict(kind="supernet", stage=stage, arch=arch, layout="search", gf_dim=WIDTH,
                df_dim=WIDTH, latent_dim=LATENT, bottom_width=BOTTOM, d_batch=D_BATCH,
                g_batch=G_BATCH, lr=LR, betas=BETAS, seed=seed)
    return out, meta


MULTI_ARCHS = [  # stage 2; ops used, skipped and used again
    [0, 1, 2, 1, 1, 0, 2, 1, 1, 0, 1, 2, 1, 3],
    [1, 2, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1],
    [1, 0, 1, 1, 1, 2, 2, 1, 1, 0, 2, 1, 0, 2],
    [0, 1, 2, 1, 0, 1, 2, 0, 1, 0, 1, 2, 1, 3],
]


def supernet_iterations(off, seed):
    """Four steps of ``functions.train_shared`` with n_critic 1: D step, G step, each with
    the next of MULTI_ARCHS. PyTorch 2 gives ops a step did not use no gradient, so Adam
    skips them and keeps their own step count."""
    torch = off.torch
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    args = _args(n_critic=1)
    g = off.models_search.shared_gan.Generator(args)
    d = off.models_search.shared_gan.Discriminator(args)
    init_weights(torch, g)
    init_weights(torch, d)
    g_opt = torch.optim.Adam(g.parameters(), LR, BETAS)
    d_opt = torch.optim.Adam(d.parameters(), LR, BETAS)
    out = {**_state("init/G", g), **_state("init/D", d)}
    steps = len(MULTI_ARCHS)
    reals = _reals(torch, rng, steps, BOTTOM * 8)
    g_hist, d_hist = _History(), _History()
    with _NoiseRecorder() as noise:
        off.functions.train_shared(args, g, d, g_hist, d_hist,
                                   _FixedController(torch, MULTI_ARCHS, 2), g_opt, d_opt,
                                   [(r, torch.zeros(D_BATCH)) for r in reals])
    assert len(noise.draws) == 2 * steps
    out.update({**_state("final/G", g), **_state("final/D", d), **_adam("adam/G", g, g_opt),
                **_adam("adam/D", d, d_opt)})
    out.update(reals=_nhwc(reals), z_all=np.concatenate(noise.draws),
               d_losses=np.asarray(d_hist.values, np.float32),
               g_loss=np.asarray(g_hist.values, np.float32))
    meta = dict(kind="supernet_iterations", stage=2, archs=MULTI_ARCHS, layout="search",
                gf_dim=WIDTH, df_dim=WIDTH, latent_dim=LATENT, bottom_width=BOTTOM,
                d_batch=D_BATCH, g_batch=G_BATCH, lr=LR, betas=BETAS, seed=seed)
    return out, meta


def controller_steps(off, stage, seed):
    """``functions.train_controller`` for CTRL_STEPS steps with given rewards.

    Recorded per step: the sampled architecture, its log-probabilities and
    entropies, the loss, and every parameter's gradient (taken just before
    Adam's step).
    """
    torch = off.torch
    torch.manual_seed(seed)
    np.random.seed(seed)
    args = _args()
    ctrl = off.models_search.controller.Controller(args, stage)
    optimizer = torch.optim.Adam(ctrl.parameters(), CTRL_LR, BETAS)
    out = {**_state("init/C", ctrl)}
    prev_archs = prev_hiddens = None
    if stage:
        prefix = sum(4 + (i > 0) for i in range(stage))
        # Lists of tensors, as get_topk_arch_hidden hands them over.
        prev_archs = [torch.tensor([1] * prefix), torch.tensor([0] * prefix)]
        prev_hiddens = ([torch.randn(CTRL_HIDDEN) for _ in range(2)],
                        [torch.randn(CTRL_HIDDEN) for _ in range(2)])
        out["beam_archs"] = np.stack([a.numpy() for a in prev_archs])
        out["beam_h"], out["beam_c"] = (np.stack([x.numpy() for x in h]) for h in prev_hiddens)
    samples = []
    sample = ctrl.sample

    def recording_sample(*args, **kwargs):
        result = sample(*args, **kwargs)
        samples.append([t.detach().numpy().copy() for t in result])
        return result

    ctrl.sample = recording_sample
    grads = []
    step = optimizer.step

    def recording_step(*args, **kwargs):
        grads.append({name: p.grad.numpy().copy() for name, p in ctrl.named_parameters()
                      if p.grad is not None})
        return step(*args, **kwargs)

    optimizer.step = recording_step
    rewards = iter(CTRL_REWARDS)
    off.functions.get_is = lambda *args, **kwargs: next(rewards)

    class _Gen:
        def eval(self):
            return self

        def set_arch(self, *args):
            pass

    writer = _Writer()
    off.functions.train_controller(args, ctrl, optimizer, _Gen(), prev_hiddens, prev_archs,
                                   {"writer": writer, "controller_steps": 0})
    out.update(_state("final/C", ctrl))
    for i, (archs, log_probs, entropies) in enumerate(samples):
        out[f"step{i}/archs"] = archs
        out[f"step{i}/log_probs"] = log_probs
        out[f"step{i}/entropies"] = entropies
        for name, g in grads[i].items():
            out[f"step{i}/grad/{name}"] = g
    out["losses"] = np.asarray(writer.scalars["controller/loss"], np.float32)
    out["rewards"] = np.asarray(CTRL_REWARDS, np.float32)
    meta = dict(kind="controller", stage=stage, hidden=CTRL_HIDDEN, steps=CTRL_STEPS,
                entropy_coeff=CTRL_ENTROPY, baseline_decay=BASELINE_DECAY, lr=CTRL_LR,
                betas=BETAS, seed=seed)
    return out, meta


def save(out_dir, name, arrays, meta):
    """One .npz per fixture: every array flattened into one float32 vector plus an index.

    (Hundreds of small arrays as separate .npz members cost more in zip headers
    than in data.) ``tests/test_golden.py`` unpacks ``index`` = ``[[name,
    offset, shape], ...]``; integer arrays (architectures) are exact in float32.
    """
    index, chunks, offset = [], [], 0
    for key in sorted(arrays):
        value = np.asarray(arrays[key])
        if key.endswith("num_batches_tracked"):
            continue
        chunks.append(value.astype(np.float32).ravel())
        index.append([key, offset, list(value.shape)])
        offset += value.size
    path = os.path.join(out_dir, f"{name}.npz")
    np.savez_compressed(path, meta=np.asarray(json.dumps(meta)),
                        index=np.asarray(json.dumps(index)), data=np.concatenate(chunks))
    print(f"{path}: {os.path.getsize(path) / 1024:.0f} KiB, {len(index)} arrays, "
          f"{offset} numbers")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official_repo", required=True,
                        help="checkout of the official AutoGAN repository")
    parser.add_argument("--output_dir", default=DEFAULT_OUT)
    flags = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)
    warnings.filterwarnings("ignore", category=UserWarning)
    off = import_official(os.path.abspath(flags.official_repo))
    off.torch.set_num_threads(1)
    os.makedirs(flags.output_dir, exist_ok=True)
    save(flags.output_dir, "derived_autogan_cifar10_a",
         *derived_iteration(off, "autogan_cifar10_a", seed=1))
    save(flags.output_dir, "derived_search_arch", *derived_iteration(off, "search", seed=2))
    for stage in range(3):
        save(flags.output_dir, f"supernet_stage{stage}", *supernet_iteration(off, stage, 10 + stage))
    save(flags.output_dir, "supernet_iterations", *supernet_iterations(off, seed=13))
    for stage in (0, 2):
        save(flags.output_dir, f"controller_stage{stage}", *controller_steps(off, stage, 20 + stage))


if __name__ == "__main__":
    main()
