"""Fidelity to the official PyTorch AutoGAN: weight mapping, .pth reading, checkpoint import."""
