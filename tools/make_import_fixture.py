"""Write the checkpoint-import fixtures of tests/test_import.py with the official PyTorch code.

    python tools/make_import_fixture.py --official_repo=/path/to/TAMU-VITA/AutoGAN \\
        --output_dir=tests/data

Runs in a separate environment holding PyTorch (never the package's own): the
package and its tests read the files it writes without PyTorch. It builds the
official generators (``models/autogan_cifar10_*.py`` of the official
repository) at a small width, gives every weight and batch-norm statistic a
random non-default value (so a wrong mapping of any tensor changes the
images), and writes:

* ``official_a_gf8_bw4_legacy.pth``: ``autogan_cifar10_a``, a full training
  checkpoint as the official ``train.py`` saves it (``gen_state_dict``,
  ``avg_gen_state_dict``, ``dis_state_dict``, epoch, ...; optimizer states
  left out to keep the file small), in PyTorch's legacy (non-zip) layout, the
  layout of the checkpoints the authors published;
* ``official_c_gf8_bw3_zip.pth``: ``autogan_cifar10_c`` (batch norm inside a
  cell) at bottom width 3, a bare generator state dict in the zip layout;
* ``official_outputs.npz``: a fixed ``z`` and, for each file, the official
  model's images for it in eval mode (float NHWC in [-1, 1], and uint8
  converted as the official ``validate`` does);
* ``torch_containers_{legacy,zip}.pth`` and ``torch_containers_expected.npz``:
  a few KB of what else a training checkpoint holds (an Adam state dict with
  int keys and tuples, a Parameter, float16/bfloat16/int8/bool tensors, a
  non-contiguous view, an empty tensor) and the values the reader must return.
"""

import argparse
import os
import sys
from argparse import Namespace

import numpy as np

LATENT_DIM = 128
GF_DIM = 8
DF_DIM = 8
NUM_Z = 6
# name -> (official model module, bottom_width, layout, what is saved)
FIXTURES = {
    "official_a_gf8_bw4_legacy": ("autogan_cifar10_a", 4, "legacy", "train_checkpoint"),
    "official_c_gf8_bw3_zip": ("autogan_cifar10_c", 3, "zip", "state_dict"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official_repo", required=True,
                   help="checkout of github.com/TAMU-VITA/AutoGAN (its models/ is imported)")
    p.add_argument("--output_dir", default=os.path.join("tests", "data"))
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def official_args(bottom_width):
    """The options the official models read (``cfg.parse_args`` fields they use)."""
    return Namespace(gf_dim=GF_DIM, df_dim=DF_DIM, latent_dim=LATENT_DIM,
                     bottom_width=bottom_width, g_spectral_norm=False, d_spectral_norm=True)


def randomize(module, generator):
    """Every parameter and batch-norm statistic random and away from its default."""
    import torch

    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(int(torch.randint(1, 1000, (), generator=generator)))
            elif name.endswith("running_var"):
                tensor.copy_(0.5 + 1.5 * torch.rand(tensor.shape, generator=generator))
            elif name.endswith("running_mean"):
                tensor.copy_(0.2 * torch.randn(tensor.shape, generator=generator))
            elif _is_norm(name):  # batch-norm affine parameters
                centre = 1.0 if name.endswith("weight") else 0.0
                tensor.copy_(centre + 0.2 * torch.randn(tensor.shape, generator=generator))
            elif tensor.dim() == 1:  # biases
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
            else:  # weights: uniform with PyTorch's default fan-in bound
                bound = 1.0 / tensor[0].numel() ** 0.5
                tensor.copy_(bound * (2 * torch.rand(tensor.shape, generator=generator) - 1))


def _is_norm(name):
    """Batch-norm parameters of the official generators: the output head and cell norms."""
    return name.startswith("to_rgb.0.") or ".n1." in name or ".n2." in name


def perturbed(state, generator, scale=0.05):
    """A copy of a state dict with float tensors moved a little (the raw vs EMA weights)."""
    import torch

    return {k: v + scale * torch.randn(v.shape, generator=generator) if v.is_floating_point()
            else v.clone() for k, v in state.items()}


def official_images(gen_net, z):
    """Eval-mode images, float NHWC and uint8 converted as the official ``validate``."""
    import torch

    gen_net.eval()
    with torch.no_grad():
        out = gen_net(torch.from_numpy(z))
        uint8 = out.mul(127.5).add(127.5).clamp(0.0, 255.0).permute(0, 2, 3, 1).to(torch.uint8)
    return out.permute(0, 2, 3, 1).numpy().astype(np.float32), uint8.numpy()


def make_fixture(name, spec, z, generator, output_dir):
    """Build, randomize, save one official model; return its images for ``z``."""
    import importlib

    import torch

    module_name, bottom_width, layout, content = spec
    official = importlib.import_module(f"models.{module_name}")
    args = official_args(bottom_width)
    gen_net = official.Generator(args=args)
    randomize(gen_net, generator)
    path = os.path.join(output_dir, f"{name}.pth")
    legacy = {"_use_new_zipfile_serialization": False} if layout == "legacy" else {}
    if content == "train_checkpoint":
        dis_net = official.Discriminator(args=args)
        raw = perturbed(gen_net.state_dict(), generator)
        obj = {"epoch": 7, "gen_model": module_name, "dis_model": module_name,
               "gen_state_dict": raw, "dis_state_dict": dis_net.state_dict(),
               "avg_gen_state_dict": gen_net.state_dict(), "best_fid": 123.4,
               "path_helper": {"prefix": "logs/fixture"}}
    else:
        obj = gen_net.state_dict()
    torch.save(obj, path, **legacy)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {module_name}, {layout})")
    return official_images(gen_net, z)


def containers(generator):
    """A small object with the containers and tensor kinds torch.save produces."""
    import torch

    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(layer.parameters(), 2e-4, (0.0, 0.9))
    layer(torch.randn(4, 3, generator=generator)).sum().backward()
    optimizer.step()
    base = torch.randn(4, 5, generator=generator)
    return {"optimizer": optimizer.state_dict(), "linear": layer.state_dict(),
            "parameter": torch.nn.Parameter(torch.ones(2)), "half": base[0].half(),
            "bfloat16": base[1].bfloat16(), "int8": torch.tensor([-3, 7], dtype=torch.int8),
            "bool": torch.tensor([True, False]), "view": base[1:, 1:4].t(),
            "empty": torch.zeros(0, 3), "epoch": 7, "betas": (0.0, 0.9), "name": "x"}


def flat_arrays(obj, prefix="containers"):
    """Every tensor of ``obj`` as ``{path: numpy array}`` (bfloat16 as float32)."""
    import torch

    if isinstance(obj, torch.Tensor):
        tensor = obj.detach()
        return {prefix: (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()}
    items = obj.items() if isinstance(obj, dict) else (
        enumerate(obj) if isinstance(obj, (list, tuple)) else ())
    out = {}
    for key, value in items:
        out.update(flat_arrays(value, f"{prefix}/{key}"))
    return out


def write_containers(generator, output_dir):
    import torch

    obj = containers(generator)
    torch.save(obj, os.path.join(output_dir, "torch_containers_zip.pth"))
    torch.save(obj, os.path.join(output_dir, "torch_containers_legacy.pth"),
               _use_new_zipfile_serialization=False)
    np.savez(os.path.join(output_dir, "torch_containers_expected.npz"), **flat_arrays(obj))


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.official_repo))
    import torch

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    z = np.random.RandomState(args.seed).normal(size=(NUM_Z, LATENT_DIM)).astype(np.float32)
    arrays = {"z": z}
    for name, spec in FIXTURES.items():
        images, uint8 = make_fixture(name, spec, z, generator, args.output_dir)
        arrays[f"{name}_images"] = images
        arrays[f"{name}_uint8"] = uint8
    write_containers(generator, args.output_dir)
    path = os.path.join(args.output_dir, "official_outputs.npz")
    np.savez_compressed(path, **arrays, torch_version=np.array(torch.__version__))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
