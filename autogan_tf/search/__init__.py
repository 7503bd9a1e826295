"""The AutoGAN architecture search: the loop (`loop`) and the parts it drives.

`loop` is the paper's algorithm, read as its steps (`loop.run_search`,
`loop.load_search`); beside it, one concept each: the shared GAN
(`shared_gan`), the controllers and the random sampler (`controller`), the
beam of a multi-level search (`beam`), the rewards (`rewards`), dynamic
resetting (`dynamic_reset`), the position and history (`state`), what is
reported (`log`) and training the found architectures (`derive`).
"""
