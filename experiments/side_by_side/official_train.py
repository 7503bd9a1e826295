"""Train the official PyTorch ``autogan_cifar10_a`` with the official training function.

Runs in the separate PyTorch environment (never imported by the package or CI)::

    /work/torchvenv/bin/python experiments/side_by_side/official_train.py \
        --official_repo=/work/official --images=WORK/cifar10_train_uint8.npy \
        --out_dir=WORK/official_seed0 --seed=0

What it does, as the official ``train.py`` with ``exps/autogan_cifar10_a.sh``
does it (only the sizes and the length differ): Xavier-uniform initialisation,
Adam(2e-4, betas 0.0/0.9) for both nets, no LR decay, D batch ``--d_batch``,
G batch ``--g_batch``, n_critic 5, the EMA of G's parameters with decay 0.999
started at the initial weights, ``functions.train`` for every step (its own
D/G updates, noise from ``np.random.normal``, the G step whenever the global
step is a multiple of n_critic), seeds as ``train.py`` sets them.

Data: a ``uint8`` NHWC array of the training images (``run.py`` writes it
from the CIFAR-10 JPEGs), scaled to [-1, 1] like the official
``Normalize(0.5, 0.5)``, in a fresh random order every epoch (``torch.randperm``,
as the official ``DataLoader(shuffle=True)``; the last, short batch of an epoch
is kept as the official loader keeps it).

Output in ``--out_dir``: ``state.pt`` (everything needed to resume, written
atomically every ``--state_every`` generator iterations; rerunning the same
command resumes), ``G_raw_<iter>.npz`` / ``G_ema_<iter>.npz`` (the generator's
state dict, raw and with the EMA parameters, as NumPy arrays with PyTorch's
names) at each of ``--save_at``, ``log.jsonl`` (losses and speed) and
``done.json`` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from official_golden import import_official, init_weights  # noqa: E402


class EpochBatches:
    """D batches in a fresh ``torch.randperm`` order per epoch, resumable by (epoch order, position)."""

    def __init__(self, torch, images, batch):
        self.torch, self.images, self.batch = torch, images, batch
        self.order, self.pos = None, 0

    def next(self):
        torch = self.torch
        if self.order is None or self.pos >= len(self.order):
            self.order, self.pos = torch.randperm(len(self.images)).numpy(), 0
        idx = self.order[self.pos:self.pos + self.batch]
        self.pos += self.batch
        x = self.images[idx].astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
        return torch.from_numpy(x), torch.zeros(len(idx))

    def state(self):
        return {"order": self.order, "pos": self.pos}

    def load(self, state):
        self.order, self.pos = state["order"], state["pos"]


class _Writer:
    def __init__(self):
        self.last = {}

    def add_scalar(self, tag, value, step=None):
        self.last[tag] = float(value)


def _args(a):
    return argparse.Namespace(
        gf_dim=a.gf_dim, df_dim=a.df_dim, latent_dim=128, bottom_width=4,
        d_spectral_norm=True, g_spectral_norm=False, n_critic=a.n_critic,
        gen_batch_size=a.g_batch, dis_batch_size=a.d_batch, print_freq=10 ** 9, max_epoch=1)


def _numpy_state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _save_generator(off, g, avg, path_raw, path_ema):
    raw = _numpy_state(g)
    np.savez(path_raw, **raw)
    ema = dict(raw)
    for (name, _), a in zip(g.named_parameters(), avg):
        ema[name] = a.detach().numpy().copy()
    np.savez(path_ema, **ema)


def _atomic_torch_save(torch, obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official_repo", required=True)
    p.add_argument("--images", required=True, help="uint8 NHWC .npy of the training images")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iters", type=int, default=600, help="generator iterations")
    p.add_argument("--save_at", default="200,400,600")
    p.add_argument("--state_every", type=int, default=50)
    p.add_argument("--gf_dim", type=int, default=64)
    p.add_argument("--df_dim", type=int, default=64)
    p.add_argument("--g_batch", type=int, default=128)
    p.add_argument("--d_batch", type=int, default=64)
    p.add_argument("--n_critic", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args(argv)
    save_at = sorted(int(s) for s in a.save_at.split(","))

    import warnings
    warnings.filterwarnings("ignore")
    off = import_official(a.official_repo)
    torch = off.torch
    if a.threads:
        torch.set_num_threads(a.threads)
    os.makedirs(a.out_dir, exist_ok=True)
    if os.path.exists(os.path.join(a.out_dir, "done.json")):
        print(f"official seed {a.seed}: already done")
        return 0

    # As train.py: seeds first, then the nets, their initialisation and the optimizers.
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    args = _args(a)
    g = off.models.autogan_cifar10_a.Generator(args)
    d = off.models.autogan_cifar10_a.Discriminator(args)
    init_weights(torch, g)
    init_weights(torch, d)
    g_opt = torch.optim.Adam(g.parameters(), 2e-4, (0.0, 0.9))
    d_opt = torch.optim.Adam(d.parameters(), 2e-4, (0.0, 0.9))
    avg = off.functions.copy_params(g)
    images = np.load(a.images, mmap_mode="r")
    batches = EpochBatches(torch, images, a.d_batch)
    steps = 0  # the official global step: one per D step
    state_path = os.path.join(a.out_dir, "state.pt")
    if os.path.exists(state_path):
        s = torch.load(state_path, weights_only=False)
        g.load_state_dict(s["g"]), d.load_state_dict(s["d"])
        g_opt.load_state_dict(s["g_opt"]), d_opt.load_state_dict(s["d_opt"])
        for dst, src in zip(avg, s["avg"]):
            dst.copy_(src)
        batches.load(s["batches"])
        np.random.set_state(s["np_rng"])
        torch.set_rng_state(s["torch_rng"])
        steps = s["steps"]
        print(f"official seed {a.seed}: resumed at generator iteration {steps // a.n_critic}")

    writer = _Writer()
    log = open(os.path.join(a.out_dir, "log.jsonl"), "a", encoding="utf-8")
    total_d_steps = a.iters * a.n_critic
    t0, done_at_start = time.time(), steps
    while steps < total_d_steps:
        # One generator iteration of functions.train: the global step that is a
        # multiple of n_critic does a D step then the G step and the EMA, the
        # following n_critic - 1 steps are D steps only.
        chunk = [batches.next() for _ in range(a.n_critic)]
        writer_dict = {"writer": writer, "train_global_steps": steps}
        off.functions.train(args, g, d, g_opt, d_opt, avg, chunk, 0, writer_dict)
        steps = writer_dict["train_global_steps"]
        it = steps // a.n_critic
        if it % 10 == 0 or it in save_at:
            rate = (steps - done_at_start) / a.n_critic / (time.time() - t0)
            rec = {"iter": it, "d_loss": writer.last.get("d_loss"),
                   "g_loss": writer.last.get("g_loss"), "it_per_s": rate, "time": time.time()}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(f"official seed {a.seed}: iteration {it}/{a.iters}  d_loss {rec['d_loss']:.3f}  "
                  f"g_loss {rec['g_loss']:.3f}  {1 / rate:.2f} s/it", flush=True)
        if it in save_at:
            _save_generator(off, g, avg, os.path.join(a.out_dir, f"G_raw_{it}.npz"),
                            os.path.join(a.out_dir, f"G_ema_{it}.npz"))
        if it % a.state_every == 0 or steps >= total_d_steps:
            _atomic_torch_save(torch, {
                "g": g.state_dict(), "d": d.state_dict(), "g_opt": g_opt.state_dict(),
                "d_opt": d_opt.state_dict(), "avg": [x.clone() for x in avg],
                "batches": batches.state(), "np_rng": np.random.get_state(),
                "torch_rng": torch.get_rng_state(), "steps": steps}, state_path)
    with open(os.path.join(a.out_dir, "done.json"), "w", encoding="utf-8") as f:
        json.dump({"iters": a.iters, "seed": a.seed, "seconds": time.time() - t0}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
